"""Webhook delivery from the transactional outbox (the store holds the rows: ``nextbest.store``
``outbox_sql`` and ``webhooks_sql``).

- :mod:`.targets`: where a webhook may go (http(s) only; no loopback, private, link-local,
  multicast, reserved or cloud-metadata address unless private targets are allowed), checked
  when an endpoint is added and again, on the resolved address, at every send;
- :mod:`.signing`: Standard Webhooks headers (``webhook-id``, ``webhook-timestamp``,
  ``webhook-signature``) and the body envelope;
- :mod:`.sender`: one HTTP POST to the checked address (no redirects, bounded time and reads);
- :mod:`.schedule` and :mod:`.settings`: the retry schedule and the deliverer's settings;
- :mod:`.deliverer`: claims due deliveries, sends them, records results (in ``nextbest serve``
  or ``nextbest webhooks deliver``);
- :mod:`.endpoints`: adding endpoints and test events, with the checks above.
"""

from __future__ import annotations

from .deliverer import Deliverer
from .endpoints import add_endpoint, send_test_event
from .schedule import DEFAULT_SCHEDULE, RetrySchedule
from .settings import WebhookSettings
from .targets import TargetPolicy, UnsafeTargetError

__all__ = [
    "DEFAULT_SCHEDULE",
    "Deliverer",
    "RetrySchedule",
    "TargetPolicy",
    "UnsafeTargetError",
    "WebhookSettings",
    "add_endpoint",
    "send_test_event",
]
