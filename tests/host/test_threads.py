"""Concurrent decisions on one Host and one compiled flow give exactly the serial results."""

from __future__ import annotations

import sys
import threading
from typing import Any

from hostkit import compute, flow, inventory, qualify, rank, request, rule, score

from nextbest import Decision, Host

THREADS = 8
PER_THREAD = 200

DOC = flow(
    inventory(),
    qualify(
        rule("adult", "attribute_condition", {"attribute": "age", "operator": "gte", "value": 18}),
        rule(
            "cards",
            "expression",
            {"expression": "metrics.orders >= 2"},
            scope="category",
            scopeId="cards",
        ),
        rule("recent", "recency_check", {"minDays": 5}, multiplier=0.7),
        rule(
            "gold",
            "segment_required",
            {"requiredSegments": ["gold"]},
            stage="match",
            multiplier=0.6,
        ),
    ),
    compute(("value", "businessValue * (1 + metrics.orders / 10)"), ("tier", "attributes.tier")),
    score(formulas={"impact": "value"}, strategyOverrides=[{"channel": "app", "profile": "p"}]),
    rank(maxCandidates=4),
    compute(("label", "concat(name, ' #', rank, ' ', round(score, 4))"), node_id="out"),
    profiles={"p": {"conversion": 0.6, "recency": 0.1, "margin": 0.2, "fairness": 0.1}},
)
OFFERS = [
    {
        "id": f"o{i:02d}",
        "category": "cards" if i % 3 == 0 else "loans",
        "priority": 10 + (i * 7) % 90,
        "businessValue": 20 + (i * 37) % 400,
        "propensity": round(0.05 + (i * 13 % 90) / 100, 2),
        "channels": ["web"] if i % 2 else ["app", "web"],
    }
    for i in range(30)
]


def make_request(n: int) -> dict[str, Any]:
    history = {
        f"o{(n + k) % 30:02d}": {"lastSeenAt": f"2026-03-0{1 + k}T00:00:00Z"} for k in range(3)
    }
    return request(
        customerId=f"c{n}",
        channel="app" if n % 3 else "web",
        attributes={"age": 15 + n % 40, "tier": ["a", "b", None][n % 3]},
        segments=["gold"] if n % 2 else [],
        metrics={"orders": n % 5},
        offerHistory=history,
        explain=n % 4 != 0,
    )


def summary(decision: Decision) -> Any:
    trace = decision.to_dict().get("trace")
    if trace is not None:
        trace.pop("timings")
    return [item.to_dict() for item in decision.items], trace


def test_threads_match_serial_results(host: Host) -> None:
    compiled, offers = host.load_flow(DOC), host.load_offers(OFFERS)
    requests = [make_request(n) for n in range(PER_THREAD)]
    serial = [summary(host.decide("t", r, flow=compiled, offers=offers)) for r in requests]
    assert any(items for items, _ in serial) and any(not items for items, _ in serial)
    results: dict[int, list[Any]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def work(worker: int) -> None:
        try:
            barrier.wait()
            # each thread walks the requests from a different start, so different requests
            # run at the same moment
            order = [(worker * 25 + k) % PER_THREAD for k in range(PER_THREAD)]
            got = [None] * PER_THREAD
            for n in order:
                got[n] = summary(host.decide("t", requests[n], flow=compiled, offers=offers))
            results[worker] = got
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(THREADS)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, so shared state would show
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert len(results) == THREADS
    for worker in range(THREADS):
        assert results[worker] == serial, f"thread {worker} differs from the serial run"
