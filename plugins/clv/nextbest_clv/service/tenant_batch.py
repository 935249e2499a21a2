"""The RFM batch: every customer of a tenant scored at once (numpy), stored in one transaction.

A batch scores the whole tenant as of a time, installs the snapshot it scored with (as of that
explicit time, or as the tenant's "now" snapshot), writes its records in one store transaction
(so a failure leaves the previous records intact) and invalidates the tenant's cached records.
Customers that cannot be scored (unusable summary values, a record whose numbers would not be
finite: :mod:`~nextbest_clv.service.summary_rows`) are counted and listed as failures and left
out of the percentiles; they never fail the tenant's batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nextbest.store import Store
from nextbest_clv.core.rfm import RfmBatch
from nextbest_clv.errors import ClvInputError
from nextbest_clv.service.record_cache import RecordCache
from nextbest_clv.service.records import RECORDS_NAMESPACE, SEGMENTS, BatchDocuments, iso_time
from nextbest_clv.service.settings import settings_fingerprint
from nextbest_clv.service.settings_repository import SettingsRepository
from nextbest_clv.service.snapshots import SnapshotKeeper, TenantSnapshot
from nextbest_clv.service.summary_rows import score_rows
from nextbest_clv.service.tenant_data import require_tenant
from nextbest_clv.service.times import checked_epoch

__all__ = ["BatchResult", "PreviousAsker", "TenantBatch"]

_MAX_LISTED_FAILURES = 100
#: ``ask(tenant_id, customer_ids, columns, as_of)``: asked before a batch stores its records
#: (``columns``: the new records by field, aligned with ``customer_ids``); returns the customers
#: whose stored records the batch keeps in its result as ``previous``.
PreviousAsker = Callable[[str, list[str], dict[str, Any], float], Iterable[str]]


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What a batch compute did.

    ``computed``: records stored; ``counts``: stored records per segment (all four keys);
    ``failed``: customers that could not be scored (listed in ``failures``, at most 100, with
    the reason); ``duration_seconds``: wall time of read + score + write.
    """

    tenant_id: str
    as_of: float
    segment: str | None
    computed: int
    counts: dict[str, int]
    failed: int
    failures: list[dict[str, str]]
    duration_seconds: float
    #: The stored records as columns (record field -> values aligned with ``customer_ids``),
    #: for listeners of the batch (not part of the JSON).
    customer_ids: list[str] = field(default_factory=list, repr=False, compare=False)
    columns: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: The stored records before the batch of the customers the previous askers named.
    previous: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: The id of the CLV history snapshot a full batch stored (``batch_compute``), else None.
    snapshot: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The camelCase JSON of the result."""
        return {
            "tenantId": self.tenant_id,
            "asOf": iso_time(self.as_of),
            "segment": self.segment,
            "computed": self.computed,
            "counts": dict(self.counts),
            "failed": self.failed,
            "failures": list(self.failures),
            "durationSeconds": round(self.duration_seconds, 6),
            "snapshot": self.snapshot,
        }


class TenantBatch:
    """Batch computes of every tenant of one store (see the module doc).

    Args:
        store: the store (summary columns in, record documents out).
        clock: epoch seconds now.
        settings: the tenants' settings.
        snapshots: where a batch installs its snapshot.
        cache: the record cache a batch invalidates.
    """

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float],
        settings: SettingsRepository,
        snapshots: SnapshotKeeper,
        cache: RecordCache,
        previous_askers: list[PreviousAsker] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.snapshots = snapshots
        self.cache = cache
        self.previous_askers = [] if previous_askers is None else previous_askers

    def compute(
        self,
        tenant_id: str,
        *,
        segment: str | None = None,
        as_of: float | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> BatchResult:
        """Score every customer of the tenant as of ``as_of`` (default now) and store the
        records of all of them, or only of those whose new segment is ``segment``, in one
        transaction. ``progress(done, total)`` is called while the records are written.

        Raises:
            ClvInputError: unknown segment, or ``as_of`` outside the store's window of times.
            TenantNotFoundError: the tenant does not exist.
        """
        if segment is not None and segment not in SEGMENTS:
            raise ClvInputError(f"unknown segment {segment!r}: use one of {', '.join(SEGMENTS)}")
        require_tenant(self.store, tenant_id)
        as_of = checked_epoch(as_of, "asOf")
        started = time.perf_counter()
        settings = self.settings.get(tenant_id)
        requested = as_of
        as_of = self.clock() if as_of is None else as_of
        cols = self.store.customer_summary_columns(tenant_id)
        scored = score_rows(cols, as_of, settings)
        counts = dict.fromkeys(SEGMENTS, 0)
        computed = 0
        stored_ids: list[str] = []
        columns: dict[str, Any] = {}
        previous: dict[str, Any] = {}
        batch, snapshot = scored.batch, scored.snapshot
        if batch is not None and snapshot is not None:
            ids = cols.customer_ids.tolist()
            every = scored.every_row
            good_ids = ids if every else [ids[i] for i in scored.rows]
            last = cols.last_at if every else cols.last_at[scored.rows]
            totals = cols.total_value if every else cols.total_value[scored.rows]
            if segment is None:
                selected = list(range(len(batch)))
            else:
                code = SEGMENTS.index(segment)
                selected = np.flatnonzero(batch.segment_code == code).tolist()
            fp = settings_fingerprint(settings)
            documents = BatchDocuments(
                good_ids, batch, selected, last, totals, iso_time(as_of), fp, progress
            )
            stored_ids, columns = _columns(good_ids, batch, None if segment is None else selected)
            previous = self._previous(tenant_id, stored_ids, columns, as_of)
            # Pre-encoded JSON: a per-row template is several times faster than json.dumps.
            self.store.put_documents_json(
                RECORDS_NAMESPACE,
                tenant_id,
                documents.key_list(),
                documents.json_texts(),
                replace=segment is None,
            )
            computed = len(selected)
            if segment is None:
                counts = dict(batch.counts)
            else:
                counts[segment] = computed
            # A batch as of an explicit time is that time's snapshot; as of "now", the current one.
            self.snapshots.install(tenant_id, requested, TenantSnapshot(snapshot, self.clock(), fp))
        elif progress is not None:
            progress(0, 0)
        self.cache.invalidate_tenant(tenant_id)
        return BatchResult(
            tenant_id=tenant_id,
            as_of=as_of,
            segment=segment,
            computed=computed,
            counts=counts,
            failed=len(scored.failed),
            failures=scored.failures(_MAX_LISTED_FAILURES),
            duration_seconds=time.perf_counter() - started,
            customer_ids=stored_ids,
            columns=columns,
            previous=previous,
        )

    def _previous(
        self, tenant_id: str, ids: list[str], columns: dict[str, Any], as_of: float
    ) -> dict[str, Any]:
        """The stored records (before this batch) of the customers the askers name."""
        wanted: set[str] = set()
        for ask in list(self.previous_askers):
            wanted.update(ask(tenant_id, ids, columns, as_of))
        if not wanted:
            return {}
        return self.store.get_documents(RECORDS_NAMESPACE, tenant_id, sorted(wanted))


def _columns(
    ids: list[str], batch: RfmBatch, selected: list[int] | None
) -> tuple[list[str], dict[str, Any]]:
    """The stored records as columns by record field (all rows, or the ``selected`` ones)."""
    columns: dict[str, Any] = {
        "clvScore": batch.clv_score,
        "predictedRevenue": batch.predicted_revenue,
        "churnProbability": batch.churn_probability,
        "rfmRecency": batch.recency_days,
        "rfmFrequency": batch.frequency,
        "rfmMonetary": batch.monetary,
        "segment": batch.segments(),
    }
    if selected is None:
        return ids, columns
    rows = np.asarray(selected, dtype=np.int64)
    return [ids[i] for i in selected], {k: np.asarray(v)[rows] for k, v in columns.items()}
