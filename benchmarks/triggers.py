"""Trigger benchmark: evaluation inside a CLV batch, and respond -> firing latency.

Figures, each against a baseline run in the same process on the same database:

1. A batch compute over 1,000,000 customers (SQLite; ``compute_records`` through the host's CLV
   service, which tells the host what it stored) with one active trigger
   (``customer.clv.churn_probability >= 0.6 and customer.clv_score >= 20``), as a ratio to the
   same batch with no trigger (target <= 1.2x), with the number of firings: the first run
   (every current crossing fires) and a second run (the condition stays true: no firing).
2. respond -> firing latency (``DecisionService.record_outcome``, which returns after the CLV
   plugin recomputed the customer and the host committed the firing), p50/p99 over responds
   that each cross ``customer.clv.frequency >= 3``, against the same responds on a tenant
   without triggers.

The 1M database is built once (like benchmarks/clv.py) and reused with ``--database``.

Run: ``.venv/bin/python benchmarks/triggers.py [--customers N] [--database PATH]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clv import AS_OF, TENANT, populate
from nextbest_clv.service import service_for
from nextbest_clv.service.batch_compute import compute_records

from nextbest import Host
from nextbest.service import DecisionService
from nextbest.store import InteractionIn, Store, open_store
from nextbest.triggers import engine_for

TRIGGER = {
    "key": "churn-risk",
    "name": "Valuable and likely to churn",
    "when": "customer.clv.churn_probability >= 0.6 and customer.clv_score >= 20",
}


def batch_figures(store: Store) -> None:
    host = Host(store=store)
    service = service_for(host)
    engine = engine_for(host)
    assert engine is not None
    engine.clock = lambda: AS_OF  # the data's present: triggers act on the present only
    engine.delete(TENANT, TRIGGER["key"])

    def batch() -> float:
        t0 = time.perf_counter()
        compute_records(service, TENANT, as_of=AS_OF)
        return time.perf_counter() - t0

    batch()  # warm the page cache
    alone = min(batch(), batch())
    engine.put(TENANT, TRIGGER["key"], TRIGGER)
    first = batch()
    firings = store.trigger_events(TENANT, TRIGGER["key"], limit=1000)
    fired = len(store.trigger_states(TENANT, TRIGGER["key"]))
    second = batch()
    fired_after = len(store.trigger_states(TENANT, TRIGGER["key"]))
    if not fired:  # the figure would measure nothing
        raise SystemExit("the first batch fired nothing: the trigger was not evaluated")
    engine.delete(TENANT, TRIGGER["key"])
    print(f"batch alone (no trigger): {alone:.2f} s")
    print(
        f"batch + trigger, first run: {first:.2f} s = {first / alone:.2f}x, "
        f"{fired:,} firings (events listed: {len(firings.items)}+)"
    )
    print(
        f"batch + trigger, condition unchanged: {second:.2f} s = {second / alone:.2f}x, "
        f"{fired_after - fired:,} new firings (target <= 1.2x)"
    )


def latency_figures(responds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'latency.db'}", pepper=b"bench")
        store.upgrade()
        for tenant in ("plain", "watched"):
            store.create_tenant(tenant, settings={"acceptUnknownOffers": True})
        host = Host(store=store)
        decisions = DecisionService(host, store)
        engine = engine_for(host)
        assert engine is not None
        # The firing goes to a webhook endpoint: its outbox row is written in the firing's
        # transaction (nothing is delivered here; the endpoint is never called).
        endpoint, _ = store.create_webhook_endpoint("watched", "https://crm.example.com/hooks")
        engine.put(
            "watched",
            "third",
            {
                "key": "third",
                "name": "Third",
                "when": "customer.clv.frequency >= 3",
                "actions": {"webhook": endpoint.endpoint_id},
            },
        )
        now = time.time()
        timings: dict[str, list[float]] = {}
        for tenant in ("plain", "watched"):
            for i in range(responds):
                for k in (2, 1):  # two earlier purchases, recomputed as they are recorded
                    decisions.record_outcome(tenant, _outcome(f"c{i}", f"{i}-{k}", now - k * 86400))
            samples = []
            for i in range(responds):
                t0 = time.perf_counter()
                decisions.record_outcome(tenant, _outcome(f"c{i}", f"{i}-0", now))
                samples.append(time.perf_counter() - t0)
            timings[tenant] = samples
        fired = len(store.trigger_states("watched", "third"))
        outbox = store.delivery_counts("watched").get("pending", 0)
        store.close()
    plain, watched = timings["plain"], timings["watched"]

    def pct(samples: list[float], q: float) -> float:
        ordered = sorted(samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    print(f"respond without triggers: p50 {pct(plain, 0.5):.2f} ms, p99 {pct(plain, 0.99):.2f} ms")
    print(
        f"respond -> firing and outbox row committed (active trigger with a webhook): p50 "
        f"{pct(watched, 0.5):.2f} ms ({pct(watched, 0.5) / pct(plain, 0.5):.1f}x), p99 "
        f"{pct(watched, 0.99):.2f} ms ({pct(watched, 0.99) / pct(plain, 0.99):.1f}x); {fired} "
        f"firings and {outbox} outbox deliveries of {responds} responds (target p99 <= 1000 "
        f"ms); mean {statistics.mean(watched) * 1000:.2f} ms"
    )


def _outcome(customer: str, key: str, at: float) -> InteractionIn:
    return InteractionIn(
        customer_id=customer,
        outcome="conversion",
        idempotency_key=key,
        offer_id="shop",
        value=20.0,
        occurred_at=datetime.fromtimestamp(at, UTC),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--database", type=Path, default=None, help="reused between runs")
    parser.add_argument("--responds", type=int, default=300)
    args = parser.parse_args()
    print(f"load (uptime): {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        path = args.database or Path(tmp) / "triggers-bench.db"
        fresh = not path.exists()
        store = open_store(f"sqlite:///{path}", pepper=b"bench")
        store.upgrade()
        if fresh:
            store.create_tenant(TENANT)
            t0 = time.perf_counter()
            populate(store, args.customers)
            print(f"built {args.customers:,} customers in {time.perf_counter() - t0:.0f} s")
        batch_figures(store)
        store.close()
    latency_figures(args.responds)


if __name__ == "__main__":
    main()
