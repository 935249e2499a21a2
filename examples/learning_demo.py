"""Step 6 of the demo: propensities learned from outcomes (the ``adaptive`` plugin).

Three offers whose catalog propensity is a guess (10 % each); their true response rates are 3 %,
10 % and 25 %. A flow ranks them by a Thompson-sampled propensity (exploration), each
recommendation's outcome is drawn from the truth and recorded with its ``recommendationId``,
and the learned propensities (posterior means) move from the catalog's guess to the truth; the
best offer ends up shown most.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from nextbest import Host
from nextbest.service import DecisionService
from nextbest.store import InteractionIn, Store

TENANT = "learn"
TRUTH = {"starter-kit": 0.03, "loyalty-bonus": 0.10, "free-shipping": 0.25}
ROUNDS = 600
STARTED = datetime(2026, 2, 2, 9, tzinfo=UTC)
FLOW = {
    "key": "learned-offers",
    "name": "Learned offers",
    "version": 2,
    "nodes": [
        {"type": "inventory", "id": "all", "config": {"scope": "all"}},
        {
            "type": "score",
            "id": "score",
            "config": {"method": "propensity", "adaptive": {"mode": "thompson"}},
        },
        {"type": "rank", "id": "top", "config": {"maxCandidates": 1}},
    ],
}


def _learned(service: DecisionService, at: datetime) -> dict[str, dict[str, Any]]:
    """Every offer's note (learned mean, impressions, positives) from an explained decision."""
    request = {"customerId": "peek", "channel": "web", "explain": True, "asOf": at.isoformat()}
    decided = service.decide(TENANT, {**request, "decisionFlowKey": FLOW["key"]})
    trace = decided.decision.trace
    assert trace is not None
    return {offer: notes["adaptive"] for offer, notes in trace.annotations.items()}


def _show(title: str, notes: dict[str, dict[str, Any]], shown: Counter[str]) -> None:
    print(f"  {title}")
    for offer in TRUTH:
        note = notes[offer]
        print(
            f"    {offer:<14} learned {note['mean']:.3f} (true {TRUTH[offer]:.2f})  "
            f"{note['impressions']:>3} shown, {note['positives']:>3} converted  "
            f"picked {shown[offer]:>3} times"
        )


def learning_demo(store: Store, host: Host) -> None:
    """Recommend, record the simulated outcomes, print the propensities as they move."""
    store.create_tenant(TENANT, "Learning demo")
    for offer_id in TRUTH:
        name = offer_id.replace("-", " ")
        store.put_offer(TENANT, {"id": offer_id, "name": name, "propensity": 0.10})
    store.publish_flow(TENANT, FLOW["key"], store.save_flow(TENANT, FLOW["key"], FLOW))
    service = DecisionService(host, store)
    rng = np.random.default_rng(6)
    shown: Counter[str] = Counter()
    truth = ", ".join(f"{o} {r:.0%}" for o, r in TRUTH.items())
    print(
        f"\nLearned propensities on flow {FLOW['key']!r} (Thompson sampling): catalog guess "
        f"10 % for each offer; true response rates {truth}"
    )
    _show("before any outcome:", _learned(service, STARTED), shown)
    for i in range(ROUNDS):
        at = STARTED + timedelta(minutes=10 * i)
        request = {"customerId": f"visitor-{i}", "channel": "web", "asOf": at.isoformat()}
        saved = service.recommend(TENANT, {**request, "decisionFlowKey": FLOW["key"]})
        (item,) = saved.decision.items
        shown[item.offer_id] += 1
        if rng.random() < TRUTH[item.offer_id]:
            outcome = InteractionIn(
                customer_id=f"visitor-{i}",
                outcome="conversion",
                idempotency_key=f"learn-{i}",
                recommendation_id=saved.recommendation_id,
                rank=1,
                occurred_at=at + timedelta(minutes=1),
            )
            service.record_outcome(TENANT, outcome)
        if i + 1 in (100, ROUNDS):
            _show(f"after {i + 1} recommendations:", _learned(service, at), shown)
