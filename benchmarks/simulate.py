"""Simulation benchmark: the demo retention flow over a synthetic tenant.

Figures (SQLite, one process, the CLV plugin loaded from its entry point):

1. customers/s of ``nextbest simulate`` (``run_simulation``) over every customer of a tenant of
   20,000 customers (benchmarks/clv.py's ``populate``), everything included: the bulk reads,
   the CLV records computed as of the time (``context_columns``), the decisions, the tallies
   (target >= 5,000/s on one core);
2. the ratio of that time to the same number of ``Host.decide`` calls with pre-built context
   (the same requests and CLV values, built before the clock starts; target <= 1.5x), run
   alternately with the simulation in the same process.

Run: ``.venv/bin/python benchmarks/simulate.py [--customers N] [--rounds R]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clv import AS_OF, TENANT, populate

from nextbest import DecisionService, Host
from nextbest.documents import load_document
from nextbest.models.request import DecisionRequest
from nextbest.simulate import parse_options, run_simulation
from nextbest.simulate.population import load_population
from nextbest.store import open_store

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"load (uptime): {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    with tempfile.TemporaryDirectory() as tmp, open_store(f"sqlite:///{tmp}/sim.db") as store:
        store.upgrade()
        store.create_tenant(TENANT)
        populate(store, args.customers)
        for offer in load_document(EXAMPLES / "offers-retention.yaml")["offers"]:
            store.put_offer(TENANT, offer)
        flow_doc = load_document(EXAMPLES / "flows" / "retention.yaml")
        store.publish_flow(TENANT, "retention", store.save_flow(TENANT, "retention", flow_doc))
        host = Host(store=store)
        service = DecisionService(host, store)
        as_of = datetime.fromtimestamp(AS_OF, UTC)
        options = parse_options({"flow": "retention", "asOf": as_of.isoformat()}, now=as_of)

        # The baseline's inputs, built before any clock starts: each customer's request and
        # its CLV values, as the simulation reads them.
        flow, _ = service.published_flow(TENANT, "retention")
        catalog = service.catalog(TENANT)
        names = {n for n in flow.customer_names if not n.startswith("metrics.")}
        names.add("customer.clv.segment")
        population = load_population(host, store, TENANT, names, as_of)
        columns = list(population.context.items())
        prepared = [
            (
                DecisionRequest(customer_id=cid, as_of=as_of),
                {name: col[i] for name, col in columns},
            )
            for i, cid in enumerate(population.customer_ids)
        ]
        n = len(prepared)

        def decide_all() -> float:
            t0 = time.perf_counter()
            for request, context in prepared:
                host.decide(TENANT, request, flow=flow, offers=catalog, context=context)
            return time.perf_counter() - t0

        def simulate() -> float:
            t0 = time.perf_counter()
            result = run_simulation(service, TENANT, options)
            elapsed = time.perf_counter() - t0
            assert result["customers"] == n, result["customers"]
            return elapsed

        simulate()  # warm: compiled flow, imports
        best_sim = best_dec = float("inf")
        for _ in range(args.rounds):  # alternately, so both see the same load
            best_sim = min(best_sim, simulate())
            best_dec = min(best_dec, decide_all())
        print(f"customers: {n:,}; retention flow (examples/flows/retention.yaml)")
        print(
            f"simulate (bulk reads + CLV records as of {as_of.date()} + decisions + tallies): "
            f"{best_sim:.2f} s = {n / best_sim:,.0f} customers/s (target >= 5,000)"
        )
        print(f"Host.decide with pre-built context: {best_dec:.2f} s = {n / best_dec:,.0f}/s")
        print(f"ratio simulate / decide: {best_sim / best_dec:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
