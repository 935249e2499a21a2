"""Control groups and lift: the report's SQL aggregates and a decision's assignment cost, each
against a baseline run in the same process on the same database.

1. ``Store.lift_aggregates`` over a flow with N customers (default 100,000: 10 % control, one
   recommendation each, about 2 outcomes each; SQLite), against the baseline the report avoids:
   reading every interaction of the window's customers into Python and aggregating there.
   The two must agree (checked).
2. ``DecisionService.decide`` on a tenant whose flow has a control group (share 0, so only the
   assignment is added; share 0.1 with ``mode: none`` and ``mode: random``) against the same
   flow without one: a small flow of 20 offers (about 70 µs), so the fixed cost of the
   assignment (one SHA-256 and the flow's setting) shows as clearly as it can.

Run: ``.venv/bin/python benchmarks/lift.py [--customers N]``
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nextbest import Host
from nextbest.service import DecisionService
from nextbest.store import InteractionIn, Store, open_store
from nextbest.store.interactions_sql import insert_recommendation

T0 = datetime(2026, 3, 1, tzinfo=UTC)
OFFERS = [f"offer-{i}" for i in range(20)]
FLOW = {
    "key": "f",
    "version": 2,
    "nodes": [
        {"type": "inventory", "id": "inv"},
        {"type": "score", "id": "sc", "config": {"method": "priority_weighted"}},
        {"type": "rank", "id": "rk", "config": {"maxCandidates": 3}},
    ],
}


def populate(store: Store, customers: int) -> None:
    """Recommendations (in one transaction, as a batch would write them) and outcomes."""
    rng = random.Random(1)
    store.create_tenant("t")
    with store._transaction() as cur:  # type: ignore[attr-defined]
        for i in range(customers):
            group = "control" if rng.random() < 0.1 else "treatment"
            items = [] if group == "control" else [(1, rng.choice(OFFERS), 1.0)]
            when = (T0 + timedelta(hours=rng.uniform(0, 24 * 20))).timestamp()
            meta = (None, None, "f", 1, when)
            insert_recommendation(cur, "t", f"r{i}", f"c{i}", items, meta, group)
    outcomes = (
        InteractionIn(
            customer_id=f"c{i}",
            outcome=rng.choice(("impression", "click", "conversion", "dismiss")),
            idempotency_key=f"k{i}-{j}",
            offer_id=rng.choice(OFFERS),
            value=round(rng.uniform(0, 50), 2),
            occurred_at=T0 + timedelta(hours=rng.uniform(0, 24 * 30)),
        )
        for i in range(customers)
        for j in range(rng.randint(0, 4))
    )
    store.record_interactions_bulk("t", outcomes)


def python_aggregates(store: Store, since: datetime, until: datetime) -> dict[str, tuple]:
    """The baseline: every row into Python (recommendations, then each customer's outcomes)."""
    with store._read() as cur:  # type: ignore[attr-defined]
        rows = cur.execute(
            "SELECT customer_id, created_at, assigned_group FROM recommendations "
            "WHERE tenant_id = 't' AND flow_key = 'f' AND created_at >= ? AND created_at < ?",
            (since.timestamp(), until.timestamp()),
        ).fetchall()
    first: dict[str, tuple[float, str]] = {}
    for customer, created, group in rows:
        if customer not in first or created < first[customer][0]:
            first[customer] = (created, group)
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for interaction in store.iter_interactions("t"):
        member = first.get(interaction.customer_id)
        if member is None:
            continue
        if not member[0] <= interaction.occurred_at.timestamp() < until.timestamp():
            continue
        key = f"{interaction.customer_id}\x1f{member[1]}"
        totals[key][1] = totals[key][1] or (
            interaction.classification == "positive" and interaction.kind == "response"
        )
        totals[key][2] += interaction.value
    out: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for customer, (_, group) in first.items():
        _, success, value = totals.get(f"{customer}\x1f{group}", [0, 0, 0.0])
        out[group][0] += 1
        out[group][1] += int(success)
        out[group][2] += value
    return {g: tuple(v) for g, v in out.items()}


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def report_figures(store: Store, customers: int) -> None:
    since, until = T0, T0 + timedelta(days=30)
    sql_s, aggregates = timed(lambda: store.lift_aggregates("t", "f", since, until))
    py_s, expected = timed(lambda: python_aggregates(store, since, until), repeat=1)
    for group, (n, k, total) in expected.items():  # type: ignore[union-attr]
        got = aggregates.groups[group]  # type: ignore[union-attr]
        assert (got.customers, got.successes) == (n, k), (group, got, n, k)
        assert abs(got.value_sum - total) < 1e-6 * max(1.0, abs(total))
    print(f"lift_aggregates, {customers:,} customers: {sql_s * 1000:.0f} ms")
    print(f"  baseline, every row into Python: {py_s * 1000:.0f} ms ({py_s / sql_s:.1f}x slower)")


def decision_figures(root: Path) -> None:
    """Time per decision of each setup: the best of interleaved rounds (the machine's load
    drifts; interleaving spreads it over every setup alike, the best round is the least
    disturbed)."""
    setups = {}
    for name, settings in (
        ("no control group", None),
        ("control group of share 0 (the assignment only)", {"share": 0.0}),
        ("control group, mode none", {"share": 0.1, "mode": "none"}),
        ("control group, mode random", {"share": 0.1, "mode": "random"}),
    ):
        store = open_store(f"sqlite:///{root / (name.replace(' ', '_') + '.db')}")
        store.upgrade()
        store.create_tenant("t")
        for i, offer in enumerate(OFFERS):
            store.put_offer("t", {"id": offer, "priority": 10 + i})
        flow = {**FLOW, "settings": {"controlGroup": settings}} if settings else FLOW
        store.publish_flow("t", "f", store.save_flow("t", "f", flow))
        service = DecisionService(Host(store=store), store)
        for i in range(200):  # warm up
            service.decide("t", {"customerId": f"w{i}"})
        setups[name] = (store, service)
    samples: dict[str, list[float]] = defaultdict(list)
    for _ in range(9):
        for name, (_, service) in setups.items():
            t0 = time.perf_counter()
            for i in range(1000):
                service.decide("t", {"customerId": f"c{i}"})
            samples[name].append((time.perf_counter() - t0) / 1000)
    base = min(samples["no control group"])
    for name, values in samples.items():
        seconds = min(values)
        print(f"decide, {name}: {seconds * 1e6:.0f} µs ({seconds / base:.2f}x)")
    for store, _ in setups.values():
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nextbest-lift-") as tmp:
        root = Path(tmp)
        store = open_store(f"sqlite:///{root / 'lift.db'}")
        store.upgrade()
        t0 = time.perf_counter()
        populate(store, args.customers)
        print(f"populated in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        report_figures(store, args.customers)
        store.close()
        decision_figures(root)


if __name__ == "__main__":
    main()
