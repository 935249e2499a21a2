"""The Triggers & deliveries page: the tenant's triggers, their latest firings and the webhook
outbox's delivery status (counts per status and the latest deliveries)."""

from __future__ import annotations

from ..plugin_api import PageRequest
from ..report_blocks import Block, Column, Stat, Stats, Table
from ..store import from_epoch
from ..store.outbox_types import DELIVERY_STATUSES

MAX_TRIGGERS = 200
FIRINGS_PER_TRIGGER = 20
LATEST_FIRINGS = 50
LATEST_DELIVERIES = 50
STATUSES = DELIVERY_STATUSES


def render_triggers(request: PageRequest) -> list[Block]:
    """The Triggers & deliveries page."""
    store = request.host.store
    assert store is not None
    tenant = request.tenant_id
    triggers = store.list_triggers(tenant, limit=MAX_TRIGGERS).items
    firings = []
    for trigger in triggers:
        firings += store.trigger_events(tenant, trigger.key, limit=FIRINGS_PER_TRIGGER).items
    firings.sort(key=lambda e: (e.fired_at, e.event_id), reverse=True)
    counts = store.delivery_counts(tenant)
    deliveries = store.list_deliveries(tenant, limit=LATEST_DELIVERIES).items
    statuses = list(STATUSES) + sorted(set(counts) - set(STATUSES))
    return [
        Stats(
            [Stat("Triggers", len(triggers), "count")]
            + [Stat(f"Deliveries {s}", counts.get(s, 0), "count") for s in statuses],
            title="Triggers and webhook deliveries",
        ),
        Table(
            "triggers",
            "Triggers",
            [
                Column("key", "Trigger"),
                Column("status", "Status"),
                Column("flow", "Flow"),
                Column("updated", "Updated", "UTC"),
            ],
            [[t.key, t.status, t.document.get("flow"), t.updated_at] for t in triggers],
        ),
        Table(
            "firings",
            f"Latest firings (at most {LATEST_FIRINGS})",
            [
                Column("at", "Fired", "UTC"),
                Column("trigger", "Trigger"),
                Column("customer", "Customer"),
                Column("generation", "Firing no.", numeric=True),
            ],
            [
                [from_epoch(e.fired_at), e.trigger_key, e.customer_id, e.generation]
                for e in firings[:LATEST_FIRINGS]
            ],
        ),
        Table(
            "deliveries",
            f"Latest webhook deliveries (at most {LATEST_DELIVERIES})",
            [
                Column("id", "Delivery", numeric=True),
                Column("event", "Event type"),
                Column("endpoint", "Endpoint"),
                Column("status", "Status"),
                Column("attempts", "Attempts", numeric=True),
                Column("code", "Last HTTP status", numeric=True),
                Column("updated", "Updated", "UTC"),
            ],
            [
                [
                    d.delivery_id,
                    d.event_type,
                    d.endpoint_id,
                    d.status,
                    d.attempts,
                    d.last_status_code,
                    d.updated_at,
                ]
                for d in deliveries
            ],
        ),
    ]


__all__ = ["render_triggers"]
