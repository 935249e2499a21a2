"""Standard Webhooks signing (https://www.standardwebhooks.com/) and the body envelope.

Every request carries ``webhook-id`` (the event id: the same on every retry and redelivery,
so receivers dedupe by it), ``webhook-timestamp`` (seconds since the epoch, at sending) and
``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` for each of the
endpoint's secrets, space-separated (two during a rotation's grace period). The HMAC comes from
the ``standardwebhooks`` package, the specification's reference implementation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

from ..store import ClaimedDelivery


def signature_header(secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one ``v1,<signature>`` per secret, space-separated."""
    when = datetime.fromtimestamp(timestamp, UTC)
    return " ".join(Webhook(secret).sign(message_id, when, body) for secret in secrets)


def envelope(delivery: ClaimedDelivery) -> bytes:
    """The request body: ``{"id", "type", "timestamp", "tenantId", "data"}`` as UTF-8 JSON,
    the same bytes for every attempt of an event (``data`` is the stored payload as is)."""
    head = json.dumps(
        {
            "id": delivery.event_id,
            "type": delivery.event_type,
            "timestamp": delivery.occurred_at.isoformat().replace("+00:00", "Z"),
            "tenantId": delivery.tenant_id,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return f'{head[:-1]},"data":{delivery.payload_json}}}'.encode()


def headers(
    delivery: ClaimedDelivery, body: bytes, timestamp: int, user_agent: str
) -> dict[str, str]:
    """Every header of a delivery's request (signed over ``body``)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": user_agent,
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(delivery.secrets, delivery.event_id, timestamp, body),
    }


__all__ = ["envelope", "headers", "signature_header"]
