"""The records of the outbox and of webhook delivery: events as producers write them, webhook
endpoints, deliveries and the claims deliverers hold (see ``outbox_sql`` and ``webhooks_sql``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

DeliveryStatus = Literal["pending", "delivered", "failed"]
DELIVERY_STATUSES: tuple[str, ...] = get_args(DeliveryStatus)

#: Event ids and types travel in headers and signatures: printable ASCII without spaces.
EVENT_ID = re.compile(r"[A-Za-z0-9_.:~+=-]{1,200}")
EVENT_ID_RULE = "use 1-200 letters, digits or any of _ . : ~ + = -"
EVENT_TYPE = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)*")
EVENT_TYPE_RULE = (
    "use lower-case letters, digits and '_' in dot-separated parts (e.g. trigger.fired)"
)
MAX_EVENT_TYPE = 100
#: An endpoint's event filter holds at most this many types.
MAX_EVENT_TYPES = 100
MAX_URL_LENGTH = 2000
MAX_DESCRIPTION = 500


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """An event to deliver. ``event_id`` is the producer's deterministic id: writing the same
    id twice for a tenant is a no-op. ``payload`` is a JSON object. ``customer_id`` names the
    customer the event is about, if any: forgetting that customer deletes the event and its
    deliveries."""

    tenant_id: str
    event_id: str
    event_type: str
    occurred_at: datetime
    payload: dict[str, Any]
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class EventsWritten:
    """What :meth:`write_events` did: new events (duplicates are skipped) and delivery rows."""

    events: int
    deliveries: int


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """A tenant's webhook endpoint (never its secret). ``event_types`` None: every type."""

    tenant_id: str
    endpoint_id: str
    url: str
    description: str | None
    event_types: tuple[str, ...] | None
    created_at: datetime
    rotated_at: datetime | None
    previous_secret_until: datetime | None

    def accepts(self, event_type: str) -> bool:
        """Whether the endpoint's filter lets ``event_type`` through."""
        return self.event_types is None or event_type in self.event_types


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event's delivery to one endpoint and where it stands."""

    delivery_id: int
    tenant_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    last_latency_ms: float | None
    response_excerpt: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery a deliverer holds under a lease, with all it needs to send it: the event, the
    endpoint's URL and its signing secrets (the current one first; the previous one while its
    grace period lasts). ``attempt`` counts this attempt."""

    delivery_id: int
    lease_token: str
    tenant_id: str
    endpoint_id: str
    url: str
    secrets: tuple[str, ...]
    event_id: str
    event_type: str
    occurred_at: datetime
    payload_json: str
    attempt: int


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """The outcome of one attempt: ``delivered`` on a 2xx; else ``retry_at`` (None: no attempt
    left, the delivery fails). ``status_code`` is None when no answer came."""

    delivery_id: int
    lease_token: str
    delivered: bool
    retry_at: datetime | None
    status_code: int | None
    error: str | None
    latency_ms: float
    response_excerpt: str | None


__all__ = [
    "DELIVERY_STATUSES",
    "EVENT_ID",
    "EVENT_ID_RULE",
    "EVENT_TYPE",
    "EVENT_TYPE_RULE",
    "MAX_DESCRIPTION",
    "MAX_EVENT_TYPE",
    "MAX_EVENT_TYPES",
    "MAX_URL_LENGTH",
    "AttemptResult",
    "ClaimedDelivery",
    "Delivery",
    "DeliveryStatus",
    "EventsWritten",
    "OutboxEvent",
    "WebhookEndpoint",
]
