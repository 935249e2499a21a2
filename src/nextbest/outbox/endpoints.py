"""Adding webhook endpoints (URL checked by the SSRF guard first) and sending test events."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from ..store import (
    EventsWritten,
    InvalidInputError,
    OutboxEvent,
    Store,
    WebhookEndpoint,
    WebhookEndpointNotFoundError,
)
from ..store.webhooks_sql import check_description, check_event_types, check_url_text
from .targets import TargetPolicy, UnsafeTargetError

#: The type of the events :func:`send_test_event` sends.
TEST_EVENT_TYPE = "webhook.test"


def add_endpoint(
    store: Store,
    policy: TargetPolicy,
    tenant_id: str,
    url: str,
    *,
    description: str | None = None,
    event_types: Sequence[str] | None = None,
) -> tuple[WebhookEndpoint, str]:
    """Add an endpoint after checking where its URL points (InvalidInputError naming ``url``
    when the guard refuses it); returns it with its secret (given out this once)."""
    check_url_text(url)
    check_description(description)
    check_event_types(event_types)
    try:
        policy.check(url)  # after the other fields' checks: it may ask the DNS
    except UnsafeTargetError as exc:
        raise InvalidInputError(f"url is refused: {exc}", field="url") from None
    return store.create_webhook_endpoint(
        tenant_id, url, description=description, event_types=event_types
    )


def send_test_event(store: Store, tenant_id: str, endpoint_id: str) -> tuple[str, EventsWritten]:
    """Put a ``webhook.test`` event in the outbox for this endpoint only; returns its id. It
    is delivered like any event (signed, retried, listed among the deliveries).

    Raises:
        WebhookEndpointNotFoundError: the tenant has no such endpoint.
    """
    if store.get_webhook_endpoint(tenant_id, endpoint_id) is None:
        raise WebhookEndpointNotFoundError(f"webhook endpoint {endpoint_id!r} not found")
    now = datetime.now(UTC)
    event_id = f"evt_test_{secrets.token_hex(12)}"
    payload = {"endpointId": endpoint_id, "message": "a test event sent from nextbest"}
    event = OutboxEvent(tenant_id, event_id, TEST_EVENT_TYPE, now, payload)
    return event_id, store.publish_events([event], endpoint_id=endpoint_id)


__all__ = ["TEST_EVENT_TYPE", "add_endpoint", "send_test_event"]
