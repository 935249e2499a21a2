"""Shared builders for the simulation tests: a tenant with a synthetic customer base (the CLV
plugin loaded from its entry point), the retention demo flow and offers, a flow reading
``metrics.*`` and offer history, and a contact policy. A module of its own (not conftest) so
test files can import it unambiguously."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nextbest import DecisionService, Host
from nextbest.documents import load_document
from nextbest.store import InteractionIn, Store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
AS_OF = datetime(2026, 6, 30, 12, tzinfo=UTC)
AS_OF_TEXT = "2026-06-30T12:00:00Z"
OFFERS: list[dict[str, Any]] = load_document(EXAMPLES / "offers-retention.yaml")["offers"]
RETENTION: dict[str, Any] = load_document(EXAMPLES / "flows" / "retention.yaml")
CUSTOMERS = 48

#: Reads metrics.* and offer history (recency_check), so the bulk reads of both are exercised.
ENGAGED: dict[str, Any] = {
    "key": "engaged",
    "version": 2,
    "nodes": [
        {"type": "inventory", "id": "active", "config": {"scope": "all", "statuses": ["active"]}},
        {
            "type": "qualify",
            "id": "rules",
            "config": {
                "rules": [
                    {
                        "id": "upsell-needs-three-orders",
                        "ruleType": "metric_condition",
                        "scope": "category",
                        "scopeId": "upsell",
                        "config": {"metric": "metrics.conversions", "operator": "gte", "value": 3},
                    },
                    {
                        "id": "retention-needs-value",
                        "ruleType": "expression",
                        "scope": "category",
                        "scopeId": "retention",
                        "config": {"expression": "metrics.total_value >= 60"},
                    },
                    {
                        "id": "not-seen-lately",
                        "ruleType": "recency_check",
                        "stage": "match",
                        "multiplier": 0.4,
                        "config": {"minDays": 30},
                    },
                ]
            },
        },
        {"type": "score", "id": "score", "config": {"method": "propensity"}},
        {"type": "rank", "id": "top", "config": {"maxCandidates": 3}},
    ],
}

#: Contacts: at most 2 impressions this month (the seeded impressions trip it for some).
MONTHLY_CAP = {
    "name": "two-a-month",
    "ruleType": "frequency_cap",
    "config": {"max": 2, "period": "month", "counts": "impressions"},
    "scope": "global",
    "priority": 10,
    "status": "active",
}


def retention_v2() -> dict[str, Any]:
    """The retention flow with one offer shown and upsells for everyone (for --compare)."""
    flow = copy.deepcopy(RETENTION)
    for node in flow["nodes"]:
        if node["type"] == "rank":
            node["config"]["maxCandidates"] = 1
        if node["type"] == "qualify":
            node["config"]["rules"] = [
                r for r in node["config"]["rules"] if r["id"] != "upsell-only-if-growing"
            ]
    return flow


def seed_tenant(store: Store, tenant: str = "acme", customers: int = CUSTOMERS) -> list[str]:
    """Offers, the flows (retention published as v1, v2 saved; engaged published), and a
    synthetic history for ``customers`` customers (random, seeded). Returns the customer ids."""
    for offer in OFFERS:
        store.put_offer(tenant, offer)
    store.publish_flow(tenant, "retention", store.save_flow(tenant, "retention", RETENTION))
    store.save_flow(tenant, "retention", retention_v2())
    store.publish_flow(tenant, "engaged", store.save_flow(tenant, "engaged", ENGAGED))
    rng = random.Random(11)
    ids = [f"c{i:03d}" for i in range(customers)]
    rows = []
    for cid in ids:
        for n in range(rng.randint(1, 7)):
            rows.append(
                InteractionIn(
                    customer_id=cid,
                    outcome="conversion",
                    idempotency_key=f"{cid}-p{n}",
                    offer_id=rng.choice(["box-set", "new-releases", "premium-club"]),
                    value=round(rng.uniform(5, 90), 2),
                    occurred_at=AS_OF - timedelta(days=rng.uniform(1, 700)),
                )
            )
        for n in range(rng.choice([0, 0, 1, 3])):  # impressions this month
            rows.append(
                InteractionIn(
                    customer_id=cid,
                    outcome="impression",
                    idempotency_key=f"{cid}-i{n}",
                    offer_id="win-back",
                    occurred_at=AS_OF.replace(day=1) + timedelta(hours=n + 1),
                )
            )
    store.record_interactions_bulk(tenant, rows)
    return ids


def service(store: Store) -> DecisionService:
    """A decision service on a host with the entry-point plugins (CLV among them)."""
    return DecisionService(Host(store=store), store)
