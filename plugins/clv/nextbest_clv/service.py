"""ClvService: CLV records per tenant and customer, computed, stored, cached and batched.

Layers, from fast to slow, for ``get``:

1. an in-process :class:`cachetools.TTLCache` per tenant (keys ``(tenant_id, customer_id)``,
   TTL = the tenant's ``cacheTtlSeconds``), always used under one lock;
2. the stored record, a plugin document in namespace :data:`RECORDS_NAMESPACE`, which is used
   only while it is current: computed with the tenant's current model settings and from the
   customer summary as it is now (same interaction count and last interaction time);
3. a single-customer compute in O(log n) against the tenant's :class:`DistributionSnapshot`,
   which is then stored and cached.

Concurrent first reads of one customer compute once (single flight). ``invalidate`` (called from
the ``outcome_recorded`` hook) drops the customer's cached record; its stored record then no
longer matches the summary and the next read recomputes it. Other processes keep serving their
cached copy for at most the TTL.

The snapshot is rebuilt from the store's summary columns when it is older than
``snapshotTtlSeconds``, when the model settings change, and by every batch compute (which
installs the snapshot it computed). A batch scores the whole tenant at once (numpy) and writes
its records in one store transaction, so a failure leaves the previous records intact.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
from cachetools import TTLCache

from nextbest.store import Store, TenantNotFoundError, to_epoch
from nextbest_clv.errors import ClvInputError, NoInteractionsError, NoStoreError
from nextbest_clv.model_records import ModelRecords
from nextbest_clv.records import (
    BatchDocuments,
    Source,
    is_current,
    iso_time,
    record_document,
    served_record,
)
from nextbest_clv.rfm import (
    SEGMENT_ORDER,
    DistributionSnapshot,
    RfmInputError,
    build_snapshot,
    score_batch,
    score_one,
)
from nextbest_clv.settings import ClvSettings, merge_settings, settings_fingerprint

__all__ = [
    "CONFIG_NAMESPACE",
    "RECORDS_NAMESPACE",
    "SEGMENTS",
    "BatchResult",
    "ClvService",
    "all_services",
    "attach",
    "service_for",
    "service_for_store",
]

#: Plugin-document namespace of the stored records (key: customer id).
RECORDS_NAMESPACE = "clv.records"
#: Plugin-document namespace of the tenant's settings and schedule state.
CONFIG_NAMESPACE = "clv"
SETTINGS_KEY = "settings"
SCHEDULE_STATE_KEY = "schedule-state"
#: Segment names, in report order.
SEGMENTS: tuple[str, ...] = tuple(s.value for s in SEGMENT_ORDER)
#: Settings are re-read from the store after this many seconds (writes through this process
#: are seen at once).
SETTINGS_TTL_SECONDS = 5.0
_CACHE_SIZE = 100_000
_MAX_LISTED_FAILURES = 100


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
        }


@dataclass(slots=True)
class _Snapshot:
    snapshot: DistributionSnapshot
    built_at: float
    fingerprint: str


@dataclass(slots=True)
class _Flight:
    future: Future[dict[str, Any]] = field(default_factory=Future)
    stale: bool = False


class ClvService:
    """CLV records of every tenant in one store. Safe to share between threads.

    Args:
        store: the store (interactions, summaries, plugin documents).
        clock: epoch seconds now; the TTL caches use it too (tests pass a fake clock).
    """

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._caches: dict[str, TTLCache[tuple[str, str], dict[str, Any]]] = {}
        self._flights: dict[tuple[str, str], _Flight] = {}
        self._settings: dict[str, tuple[float, ClvSettings]] = {}
        self._snapshots: dict[str, _Snapshot] = {}
        self._snapshot_locks: dict[str, threading.Lock] = {}
        #: number of single-customer computes done (for tests and metrics)
        self.computes = 0
        #: the probabilistic fields of records (tenants whose ``model`` is not ``rfm``)
        self.models = ModelRecords(store, clock)

    # -- settings -----------------------------------------------------------------------------
    def get_settings(self, tenant_id: str) -> ClvSettings:
        """The tenant's settings (defaults until changed)."""
        now = self.clock()
        with self._lock:
            cached = self._settings.get(tenant_id)
        if cached is not None and now - cached[0] < SETTINGS_TTL_SECONDS:
            return cached[1]
        doc = self.store.get_document(CONFIG_NAMESPACE, tenant_id, SETTINGS_KEY)
        settings = ClvSettings.model_validate(doc) if doc else ClvSettings()
        self._remember_settings(tenant_id, settings, now)
        return settings

    def update_settings(
        self, tenant_id: str, changes: Mapping[str, Any], *, replace: bool = False
    ) -> ClvSettings:
        """Apply ``changes`` (camelCase or snake_case keys) to the current settings, or to the
        defaults with ``replace``; validate, store, and invalidate the tenant's cached records
        (and its snapshot when the model changed).

        Raises:
            ClvSettingsError: naming each invalid field.
            TenantNotFoundError: the tenant does not exist.
        """
        self.require_tenant(tenant_id)
        before = self.get_settings(tenant_id)
        after = merge_settings(ClvSettings() if replace else before, changes)
        self.store.put_documents(CONFIG_NAMESPACE, tenant_id, {SETTINGS_KEY: after.to_json()})
        if after.schedule != before.schedule:
            state = {"since": self.clock(), "schedule": after.schedule}
            self.store.put_documents(CONFIG_NAMESPACE, tenant_id, {SCHEDULE_STATE_KEY: state})
        self._remember_settings(tenant_id, after, self.clock())
        self.invalidate_tenant(tenant_id)
        return after

    def _remember_settings(self, tenant_id: str, settings: ClvSettings, now: float) -> None:
        fp = settings_fingerprint(settings)
        with self._lock:
            previous = self._settings.get(tenant_id)
            self._settings[tenant_id] = (now, settings)
            snap = self._snapshots.get(tenant_id)
            if snap is not None and snap.fingerprint != fp:
                self._snapshots.pop(tenant_id, None)
            cache = self._caches.get(tenant_id)
            model_changed = previous is not None and settings_fingerprint(previous[1]) != fp
            if cache is not None and (model_changed or cache.ttl != settings.cache_ttl_seconds):
                del self._caches[tenant_id]

    # -- cache --------------------------------------------------------------------------------
    def _cache(self, tenant_id: str, ttl: float) -> TTLCache[tuple[str, str], dict[str, Any]]:
        # Called with self._lock held.
        cache = self._caches.get(tenant_id)
        if cache is None:
            cache = TTLCache(maxsize=_CACHE_SIZE, ttl=ttl, timer=self.clock)
            self._caches[tenant_id] = cache
        return cache

    def invalidate(self, tenant_id: str, customer_id: str) -> None:
        """Forget the customer's cached record; the next read checks the store and recomputes
        the record if the customer's interactions changed."""
        key = (tenant_id, customer_id)
        with self._lock:
            cache = self._caches.get(tenant_id)
            if cache is not None:
                cache.pop(key, None)
            flight = self._flights.get(key)
            if flight is not None:
                flight.stale = True  # a compute in progress may have read the old summary

    def invalidate_tenant(self, tenant_id: str) -> None:
        """Forget every cached record of the tenant."""
        with self._lock:
            self._caches.pop(tenant_id, None)
            for key, flight in self._flights.items():
                if key[0] == tenant_id:
                    flight.stale = True

    # -- single customer ----------------------------------------------------------------------
    def get(self, tenant_id: str, customer_id: str, as_of: float | None = None) -> dict[str, Any]:
        """The customer's record: cached or stored (``source: cached``), else computed as of
        ``as_of`` (default now) and stored (``source: computed``).

        Raises:
            NoInteractionsError: the customer has no interactions (no record).
            ClvInputError: ``as_of`` is before the customer's last interaction.
        """
        settings = self.get_settings(tenant_id)
        key = (tenant_id, customer_id)
        with self._lock:
            hit = self._cache(tenant_id, settings.cache_ttl_seconds).get(key)
            if hit is not None:
                return served_record(hit, "cached")
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            return served_record(flight.future.result(), "cached")
        try:
            document, source = self._load_or_compute(tenant_id, customer_id, settings, as_of)
        except BaseException as exc:
            with self._lock:
                self._flights.pop(key, None)
            flight.future.set_exception(exc)
            raise
        self._finish(key, flight, document, settings)
        return served_record(document, source)

    def recompute(
        self, tenant_id: str, customer_id: str, as_of: float | None = None
    ) -> dict[str, Any]:
        """Compute the customer's record now (``source: computed``), store and cache it."""
        settings = self.get_settings(tenant_id)
        key = (tenant_id, customer_id)
        flight = _Flight()
        with self._lock:
            previous = self._flights.get(key)
            if previous is not None:
                previous.stale = True
            self._flights[key] = flight
        try:
            document = self._compute(tenant_id, customer_id, settings, as_of)
        except BaseException as exc:
            with self._lock:
                if self._flights.get(key) is flight:
                    del self._flights[key]
            flight.future.set_exception(exc)
            raise
        self._finish(key, flight, document, settings)
        return served_record(document, "computed")

    def _finish(
        self,
        key: tuple[str, str],
        flight: _Flight,
        document: dict[str, Any],
        settings: ClvSettings,
    ) -> None:
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
            if not flight.stale:
                self._cache(key[0], settings.cache_ttl_seconds)[key] = document
        flight.future.set_result(document)

    def _load_or_compute(
        self, tenant_id: str, customer_id: str, settings: ClvSettings, as_of: float | None
    ) -> tuple[dict[str, Any], Source]:
        summary = self.store.get_customer_summary(tenant_id, customer_id)
        if summary is None:
            raise NoInteractionsError(tenant_id, customer_id)
        stored = self.store.get_document(RECORDS_NAMESPACE, tenant_id, customer_id)
        fp = settings_fingerprint(settings)
        last_at = to_epoch(summary.last_at)
        if stored is not None and is_current(stored, summary.interactions, last_at, fp):
            document = self._with_model(tenant_id, customer_id, stored, settings, summary, as_of)
            return document, "cached"
        return self._compute(tenant_id, customer_id, settings, as_of, summary), "computed"

    def _compute(
        self,
        tenant_id: str,
        customer_id: str,
        settings: ClvSettings,
        as_of: float | None,
        summary: Any = None,
    ) -> dict[str, Any]:
        if summary is None:
            summary = self.store.get_customer_summary(tenant_id, customer_id)
            if summary is None:
                raise NoInteractionsError(tenant_id, customer_id)
        last_at, first_at = to_epoch(summary.last_at), to_epoch(summary.first_at)
        if as_of is None:
            # "Now" never precedes the last interaction (a clock a little behind the writer's).
            as_of = max(self.clock(), last_at)
        elif as_of < last_at:
            raise ClvInputError(
                f"asOf {iso_time(as_of)} is before customer {customer_id!r}'s last interaction "
                f"({iso_time(last_at)}): records are computed from all-time summaries, so use "
                "an asOf at or after it"
            )
        snap = self._snapshot(tenant_id, settings)
        try:
            record = score_one(
                last_at,
                first_at,
                summary.interactions,
                summary.total_value,
                as_of,
                snap.snapshot,
                settings,
            )
        except RfmInputError as exc:
            raise ClvInputError(f"cannot compute CLV of {customer_id!r}: {exc}") from exc
        document = record_document(
            customer_id, record, iso_time(as_of), summary.interactions, last_at, snap.fingerprint
        )
        self.store.put_documents(RECORDS_NAMESPACE, tenant_id, {customer_id: document})
        with self._lock:
            self.computes += 1
        return self._with_model(tenant_id, customer_id, document, settings, summary, as_of)

    def _with_model(
        self,
        tenant_id: str,
        customer_id: str,
        document: dict[str, Any],
        settings: ClvSettings,
        summary: Any,
        as_of: float | None,
    ) -> dict[str, Any]:
        """The record with the tenant's probabilistic model fields (unchanged for ``rfm``)."""
        fields = self.models.fields_for(tenant_id, customer_id, summary, settings, as_of)
        return document if fields is None else {**document, **fields}

    # -- snapshot -----------------------------------------------------------------------------
    def _snapshot(self, tenant_id: str, settings: ClvSettings) -> _Snapshot:
        fp = settings_fingerprint(settings)
        with self._lock:
            snap = self._snapshots.get(tenant_id)
            build_lock = self._snapshot_locks.setdefault(tenant_id, threading.Lock())
        if self._fresh(snap, fp, settings):
            assert snap is not None
            return snap
        with build_lock:  # one rebuild per tenant at a time; the others wait and reuse it
            with self._lock:
                snap = self._snapshots.get(tenant_id)
            if self._fresh(snap, fp, settings):
                assert snap is not None
                return snap
            cols = self.store.customer_summary_columns(tenant_id)
            ok = _valid_rows(cols, None)
            if not ok.any():
                raise ClvInputError(
                    f"tenant {tenant_id!r} has no customers with usable interaction summaries"
                )
            last = cols.last_at[ok]
            as_of = max(self.clock(), float(last.max()))
            snapshot = build_snapshot(
                last, cols.interactions[ok], cols.total_value[ok], as_of, settings
            )
            snap = _Snapshot(snapshot, self.clock(), fp)
            with self._lock:
                self._snapshots[tenant_id] = snap
            return snap

    def _fresh(self, snap: _Snapshot | None, fp: str, settings: ClvSettings) -> bool:
        return (
            snap is not None
            and snap.fingerprint == fp
            and self.clock() - snap.built_at < settings.snapshot_ttl_seconds
        )

    # -- batch --------------------------------------------------------------------------------
    def compute_batch(
        self,
        tenant_id: str,
        *,
        segment: str | None = None,
        as_of: float | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> BatchResult:
        """Score every customer of the tenant as of ``as_of`` (default now) and store the
        records of all of them, or only of those whose new segment is ``segment``, in one
        transaction. Customers that cannot be scored (``asOf`` before their last interaction,
        unusable values) are counted as failures and left out of the percentiles.

        ``progress(done, total)`` is called while the records are written.

        Raises:
            ClvInputError: unknown segment.
            TenantNotFoundError: the tenant does not exist.
        """
        if segment is not None and segment not in SEGMENTS:
            raise ClvInputError(f"unknown segment {segment!r}: use one of {', '.join(SEGMENTS)}")
        self.require_tenant(tenant_id)
        started = time.perf_counter()
        settings = self.get_settings(tenant_id)
        as_of = self.clock() if as_of is None else float(as_of)
        cols = self.store.customer_summary_columns(tenant_id)
        ids = cols.customer_ids.tolist()
        ok = _valid_rows(cols, as_of)
        bad = np.flatnonzero(~ok)
        failures = [
            {"customerId": str(ids[i]), "reason": _failure_reason(cols, int(i), as_of)}
            for i in bad[:_MAX_LISTED_FAILURES]
        ]
        counts = dict.fromkeys(SEGMENTS, 0)
        computed = 0
        if ok.any():
            rows = np.flatnonzero(ok)
            good_ids = [ids[i] for i in rows] if len(bad) else ids
            last = cols.last_at[rows] if len(bad) else cols.last_at
            batch, snapshot = score_batch(
                last,
                cols.first_at[rows] if len(bad) else cols.first_at,
                cols.interactions[rows] if len(bad) else cols.interactions,
                cols.total_value[rows] if len(bad) else cols.total_value,
                as_of,
                settings,
            )
            if segment is None:
                selected = list(range(len(batch)))
            else:
                code = SEGMENTS.index(segment)
                selected = np.flatnonzero(batch.segment_code == code).tolist()
            fp = settings_fingerprint(settings)
            documents = BatchDocuments(
                good_ids, batch, selected, last, iso_time(as_of), fp, progress
            )
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
            with self._lock:
                self._snapshots[tenant_id] = _Snapshot(snapshot, self.clock(), fp)
        elif progress is not None:
            progress(0, 0)
        self.invalidate_tenant(tenant_id)
        return BatchResult(
            tenant_id=tenant_id,
            as_of=as_of,
            segment=segment,
            computed=computed,
            counts=counts,
            failed=len(bad),
            failures=failures,
            duration_seconds=time.perf_counter() - started,
        )

    # -- reporting ----------------------------------------------------------------------------
    def distribution(self, tenant_id: str, as_of: float | None = None) -> dict[str, Any]:
        """Counts per segment, a score histogram (ten bins) and the segment thresholds of the
        tenant's customers as of ``as_of`` (default now), computed live, nothing stored."""
        self.require_tenant(tenant_id)
        settings = self.get_settings(tenant_id)
        as_of = self.clock() if as_of is None else float(as_of)
        cols = self.store.customer_summary_columns(tenant_id)
        ok = _valid_rows(cols, as_of)
        counts = dict.fromkeys(SEGMENTS, 0)
        bins = np.zeros(10, dtype=np.int64)
        thresholds: dict[str, float | None] = {"high": None, "low": None}
        if ok.any():
            batch, snapshot = score_batch(
                cols.last_at[ok],
                cols.first_at[ok],
                cols.interactions[ok],
                cols.total_value[ok],
                as_of,
                settings,
            )
            counts = dict(batch.counts)
            bins = np.bincount(np.minimum(batch.clv_score // 10, 9), minlength=10)
            thresholds = {"high": snapshot.score_high, "low": snapshot.score_low}
        return {
            "asOf": iso_time(as_of),
            "customers": int(ok.sum()),
            "excluded": int((~ok).sum()),
            "counts": counts,
            "histogram": [
                {"from": 10 * b, "to": 100 if b == 9 else 10 * b + 9, "count": int(bins[b])}
                for b in range(10)
            ],
            "segmentThresholds": thresholds,
        }

    def require_tenant(self, tenant_id: str) -> None:
        """Raise TenantNotFoundError when the tenant does not exist."""
        if self.store.get_tenant(tenant_id) is None:
            raise TenantNotFoundError(
                f"tenant {tenant_id!r} does not exist: create it with `nextbest tenants create`"
            )


def _valid_rows(cols: Any, as_of: float | None) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Rows that can be scored: finite times in order (and not after ``as_of``), at least one
    interaction, a finite non-negative monetary total."""
    first, last, money = cols.first_at, cols.last_at, cols.total_value
    ok = (
        np.isfinite(first)
        & np.isfinite(last)
        & (np.abs(last) <= 9e9)
        & (first <= last)
        & (cols.interactions >= 1)
        & np.isfinite(money)
        & (money >= 0)
    )
    if as_of is not None:
        ok &= last <= as_of
    return np.asarray(ok, dtype=bool)


def _failure_reason(cols: Any, i: int, as_of: float) -> str:
    if cols.last_at[i] > as_of:
        return (
            f"last interaction {iso_time(float(cols.last_at[i]))} is after asOf {iso_time(as_of)}"
        )
    if cols.interactions[i] < 1:
        return "no interactions"
    return "unusable summary values (times out of order or monetary not a finite number >= 0)"


# -- one service per store ------------------------------------------------------------------------
_services: WeakKeyDictionary[Any, ClvService] = WeakKeyDictionary()
_services_lock = threading.Lock()


def service_for_store(store: Store) -> ClvService:
    """The process-wide service of ``store`` (one per store, so caches are shared by the
    decision context, the API and the scheduler)."""
    with _services_lock:
        service = _services.get(store)
        if service is None:
            service = _services[store] = ClvService(store)
        return service


def attach(host: Any) -> ClvService | None:
    """The service of a host's store; None when the host has no store."""
    store = getattr(host, "store", None)
    return None if store is None else service_for_store(store)


def service_for(host: Any) -> ClvService:
    """The service of ``host``'s store.

    Raises:
        NoStoreError: the host was created without a store.
    """
    service = attach(host)
    if service is None:
        raise NoStoreError(
            "this host has no store: create it with Host(store=open_store(url)) so CLV "
            "records can be computed from recorded interactions"
        )
    return service


def all_services() -> list[ClvService]:
    """Every live service (the outcome hook does not say which store recorded the outcome)."""
    with _services_lock:
        return list(_services.values())
