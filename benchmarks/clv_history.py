"""What the CLV history costs a batch compute, on SQLite with synthetic customers.

Baseline, run in the same process on the same database: the RFM batch alone
(``ClvService.compute_batch``: read the summaries, score, write every record in one
transaction). Figures, each as a ratio to it:

1. the full batch (``batch_compute.compute_records``): the same batch plus the listeners, the
   history snapshot (summary and compressed customer parts) and the scoring of due snapshots;
   and the snapshot alone (``record_snapshot`` on the batch's columns), the steadier figure on
   a busy machine;
2. a segment migration between the two newest snapshots (``history_compare.migration``);
3. scoring a snapshot against the actual spend in its horizon (``score_snapshot``).

Also the stored size of a snapshot's customer parts per customer. Customers and spend as in
``benchmarks/clv.py`` (one or two interactions each, gamma spend).

Run: ``.venv/bin/python benchmarks/clv_history.py [--customers N] [--database PATH]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# benchmarks/ is the script's directory, so its first entry on sys.path: the CLV benchmark's data
from clv import AS_OF, DAY, TENANT, populate
from nextbest_clv.service import ClvService
from nextbest_clv.service.batch_compute import compute_records
from nextbest_clv.service.history import CUSTOMERS_NAMESPACE, latest_snapshots, record_snapshot
from nextbest_clv.service.history_compare import migration, score_snapshot

from nextbest.store import open_store


def best_of(runs: int, work: Callable[[], Any]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--database", type=Path, default=None, help="reused between runs")
    parser.add_argument("--rounds", type=int, default=4, help="alternate runs of each")
    args = parser.parse_args()
    n = args.customers
    path = args.database or Path(tempfile.gettempdir()) / f"nextbest-bench-history-{n}.db"
    store = open_store(f"sqlite:///{path}", pepper=b"benchmark")
    store.upgrade()
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print(f"load average {os.getloadavg()[0]:.2f}")
    if store.get_tenant(TENANT) is None:
        store.create_tenant(TENANT)
        t0 = time.perf_counter()
        populate(store, n)
        print(f"setup: {n:,} customers stored in {time.perf_counter() - t0:.1f} s ({path})")
    service = ClvService(store)
    as_of = AS_OF + DAY

    # Alternately, best of each: the machine is shared, so neighbours' load hits both alike.
    batch_times, full_times = [], []
    for _ in range(args.rounds):
        batch_times.append(best_of(1, lambda: service.compute_batch(TENANT, as_of=as_of)))
        full_times.append(best_of(1, lambda: compute_records(service, TENANT, as_of=as_of)))
    batch_s, full_s = min(batch_times), min(full_times)
    print(f"baseline, RFM batch alone: {batch_s:.2f} s for {n:,} customers (best of {args.rounds})")
    print(f"1. full batch with the history snapshot: {full_s:.2f} s (best of {args.rounds})")
    print(f"   ratio full / batch: {full_s / batch_s:.2f}x")

    settings = service.get_settings(TENANT)
    result = service.compute_batch(TENANT, as_of=as_of)

    def snapshot_alone() -> None:
        record_snapshot(
            store,
            TENANT,
            settings,
            as_of=as_of,
            taken_at=time.time(),
            customer_ids=result.customer_ids,
            columns=result.columns,
            failed=result.failed,
            fit=None,
        )

    alone_s = best_of(args.rounds, snapshot_alone)
    print(f"   the snapshot alone (record_snapshot): {alone_s:.2f} s (best of {args.rounds})")
    print(f"   ratio snapshot / batch: {alone_s / batch_s:.2f}x")

    newest = latest_snapshots(store, TENANT, 2)
    parts = store.get_documents(CUSTOMERS_NAMESPACE, TENANT)
    mine = [doc for key, doc in parts.items() if key.startswith(newest[0]["id"])]
    size = sum(len(json.dumps(doc)) for doc in mine)
    summary_size = len(json.dumps(newest[0]))
    print(
        f"   stored: summary {summary_size:,} bytes; customers {size:,} bytes in {len(mine)} "
        f"part(s), {size / n:.1f} bytes per customer"
    )

    migration_s = best_of(2, lambda: migration(store, TENANT))
    print(f"2. migration between the two newest snapshots: {migration_s:.2f} s")
    print(f"   ratio migration / batch: {migration_s / batch_s:.2f}x")

    end = as_of + 10 * 365.25 * DAY  # every horizon has passed
    score_s = best_of(2, lambda: score_snapshot(store, TENANT, settings, newest[0], end))
    print(f"3. scoring a snapshot against actuals: {score_s:.2f} s")
    print(f"   ratio scoring / batch: {score_s / batch_s:.2f}x")


if __name__ == "__main__":
    main()
