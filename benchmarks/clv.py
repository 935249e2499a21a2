"""End-to-end benchmark of the CLV service on SQLite with 1,000,000 synthetic customers.

Figures, each as a ratio against a baseline run in the same process on the same database:

1. Batch compute (``ClvService.compute_batch``): read every customer summary (one columnar
   query), score them (numpy) and write 1M record documents in one transaction; against a
   naive per-customer Python loop doing the same work: read the customer's summary, compute its
   three mid-rank percentiles by scanning the tenant's values, then (after the score
   percentiles) write its record in its own transaction. The naive loop runs on a subsample
   and is extrapolated per phase; its scores on the subsample are checked equal to the batch's.
2. Single-customer cold compute (``ClvService.recompute``: summary read, O(log n) score against
   the in-memory snapshot, record write), median and p95 over random customers; against a full
   scan (read all summary columns and score the whole tenant to get one customer's record).

Targets from the issue: batch end-to-end <= 10 s; single compute <= 1 ms.

The database is built once (about 1.3M interactions through ``record_interactions_bulk``,
which takes a minute or two) and reused by later runs with the same ``--database``.

Run: ``.venv/bin/python benchmarks/clv.py [--customers N] [--database PATH]``
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from nextbest_clv.core.rfm import SEGMENT_ORDER, score_batch
from nextbest_clv.service import RECORDS_NAMESPACE, ClvService

from nextbest.store import InteractionIn, Store, open_store

TENANT = "bench"
DAY = 86_400.0
AS_OF = 1_751_328_000.0  # 2025-07-01T00:00:00Z


def populate(store: Store, n: int, seed: int = 7) -> None:
    """n customers: one interaction each, 30% with an earlier second one; gamma spend."""
    rng = np.random.default_rng(seed)
    last = AS_OF - np.round(rng.exponential(45.0, n).clip(0, 730) * DAY)
    first = last - np.round(rng.uniform(1, 1095, n) * DAY)
    two = rng.random(n) < 0.3
    spend = np.round(rng.gamma(1.5, 60.0, n), 2)
    spend[rng.random(n) < 0.2] = 0.0

    def rows() -> Iterator[InteractionIn]:
        for i in range(n):
            cid = f"c{i:07d}"
            if two[i]:
                yield InteractionIn(
                    customer_id=cid,
                    outcome="impression",
                    idempotency_key=f"f{i}",
                    occurred_at=datetime.fromtimestamp(float(first[i]), UTC),
                )
            yield InteractionIn(
                customer_id=cid,
                outcome="conversion",
                idempotency_key=f"l{i}",
                value=float(spend[i]),
                occurred_at=datetime.fromtimestamp(float(last[i]), UTC),
            )

    store.record_interactions_bulk(TENANT, rows(), chunk_size=100_000)


def naive_phases(
    store: Store, service: ClvService, ids: list[str], read_k: int, scan_k: int
) -> tuple[float, float, float, dict[str, int]]:
    """Per-customer seconds of the naive loop's three phases, and its scores on a sample."""
    n = len(ids)
    rng = np.random.default_rng(11)
    settings = service.get_settings(TENANT)
    # Phase 1: one summary read per customer.
    sample = [ids[i] for i in rng.choice(n, read_k, replace=False)]
    t0 = time.perf_counter()
    for cid in sample:
        store.get_customer_summary(TENANT, cid)
    read_each = (time.perf_counter() - t0) / read_k
    # Phase 2: percentiles by scanning the tenant's values (plain Python lists).
    cols = store.customer_summary_columns(TENANT)
    recency = ((AS_OF - cols.last_at) // DAY).astype(int).tolist()
    freq = cols.interactions.tolist()
    money = cols.total_value.tolist()
    scores: dict[str, int] = {}
    scan_rows = rng.choice(n, scan_k, replace=False).tolist()
    t0 = time.perf_counter()
    for i in scan_rows:
        r, f, m = recency[i], freq[i], money[i]
        r2 = sum(1 for x in recency if x > r) + sum(1 for x in recency if x >= r)
        f2 = sum(1 for x in freq if x < f) + sum(1 for x in freq if x <= f)
        m2 = sum(1 for x in money if x < m) + sum(1 for x in money if x <= m)
        raw = 100.0 * (
            settings.recency_weight * (r2 / (2 * n))
            + settings.frequency_weight * (f2 / (2 * n))
            + settings.monetary_weight * (m2 / (2 * n))
        )
        scores[str(cols.customer_ids[i])] = int(np.floor(raw + 0.5 + 1e-9))
    scan_each = (time.perf_counter() - t0) / scan_k
    # Phase 3: one record write (its own transaction) per customer.
    t0 = time.perf_counter()
    for cid in sample:
        doc = {"customerId": cid, "clvScore": 50, "segment": "medium"}
        store.put_documents("bench.naive", TENANT, {cid: doc})
    write_each = (time.perf_counter() - t0) / read_k
    store.delete_documents("bench.naive", TENANT)
    return read_each, scan_each, write_each, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--database", type=Path, default=None, help="reused between runs")
    parser.add_argument("--naive-reads", type=int, default=2_000)
    parser.add_argument("--naive-scans", type=int, default=10)
    parser.add_argument("--singles", type=int, default=500)
    args = parser.parse_args()
    n = args.customers
    path = args.database or Path(tempfile.gettempdir()) / f"nextbest-bench-clv-{n}.db"
    store = open_store(f"sqlite:///{path}", pepper=b"benchmark")
    store.upgrade()
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    if store.get_tenant(TENANT) is None:
        store.create_tenant(TENANT)
        t0 = time.perf_counter()
        populate(store, n)
        print(f"setup: {n:,} customers stored in {time.perf_counter() - t0:.1f} s ({path})")
    service = ClvService(store)

    # 1. Batch end-to-end (best of 2: the first run also warms the page cache).
    runs = []
    for _ in range(2):
        result = service.compute_batch(TENANT, as_of=AS_OF)
        runs.append(result.duration_seconds)
    batch_s = min(runs)
    assert result.computed == n, result
    print(f"\nbatch compute, {n:,} customers (read + score + write, one transaction):")
    print(f"  {batch_s:.2f} s  ({n / batch_s:,.0f} customers/s)  target <= 10 s")
    print(f"  segments: {result.counts}")

    ids = store.customer_summary_columns(TENANT).customer_ids.tolist()
    read_each, scan_each, write_each, naive_scores = naive_phases(
        store, service, ids, args.naive_reads, args.naive_scans
    )
    stored = store.get_documents(RECORDS_NAMESPACE, TENANT, naive_scores)
    mismatched = [c for c, s in naive_scores.items() if stored[c]["clvScore"] != s]
    assert not mismatched, f"naive scores differ from the batch for {mismatched}"
    naive_s = n * (read_each + scan_each + write_each)
    print(
        f"  naive per-customer loop (extrapolated from {args.naive_reads} reads/writes and "
        f"{args.naive_scans} scans): {naive_s:,.0f} s = {naive_s / 86_400:.1f} days"
    )
    print(
        f"    per customer: read {read_each * 1e6:.0f} µs, percentile scan "
        f"{scan_each * 1e3:.0f} ms, write {write_each * 1e6:.0f} µs"
    )
    print(f"  ratio naive / batch: {naive_s / batch_s:,.0f}x")
    print(
        f"  without the O(n) scans (read + write only): {n * (read_each + write_each):.0f} s, "
        f"ratio {n * (read_each + write_each) / batch_s:.1f}x"
    )

    # 2. Single-customer cold compute against the snapshot the batch installed.
    rng = np.random.default_rng(5)
    sample = [ids[i] for i in rng.choice(n, args.singles, replace=False)]
    times = []
    for cid in sample:
        service.invalidate(TENANT, cid)
        t0 = time.perf_counter()
        service.recompute(TENANT, cid, as_of=AS_OF)
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    p95 = sorted(times)[int(0.95 * len(times)) - 1]
    print(f"\nsingle-customer cold compute at {n:,} customers ({args.singles} customers):")
    print(
        f"  recompute (summary read + O(log n) score + record write): median "
        f"{median * 1e3:.3f} ms, p95 {p95 * 1e3:.3f} ms  target <= 1 ms"
    )
    t0 = time.perf_counter()
    cols = store.customer_summary_columns(TENANT)
    batch, _ = score_batch(
        cols.last_at,
        cols.first_at,
        cols.interactions,
        cols.total_value,
        AS_OF,
        service.get_settings(TENANT),
    )
    row = ids.index(sample[0])
    full_scan_s = time.perf_counter() - t0
    assert SEGMENT_ORDER[int(batch.segment_code[row])].value == stored_segment(store, sample[0])
    print(f"  full scan (read all columns + score the tenant): {full_scan_s * 1e3:.0f} ms")
    print(f"  ratio full scan / single: {full_scan_s / median:,.0f}x")
    store.close()


def stored_segment(store: Store, customer_id: str) -> str:
    doc = store.get_document(RECORDS_NAMESPACE, TENANT, customer_id)
    assert doc is not None
    return str(doc["segment"])


if __name__ == "__main__":
    main()
