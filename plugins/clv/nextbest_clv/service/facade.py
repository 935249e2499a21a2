"""ClvService: CLV records per tenant and customer, computed, stored, cached and batched.

A read asks for a customer's record as of a time: "now" (``as_of`` None) or an explicit asOf.
Layers, from fast to slow, for ``get``:

1. an in-process :class:`cachetools.TTLCache` per tenant (keys ``(tenant_id, customer_id)``,
   TTL = the tenant's ``cacheTtlSeconds``), always used under one lock; an entry holds the
   customer's records per requested asOf ("now" or an explicit time), each served for at most
   the TTL after it was cached;
2. the stored record, a plugin document in namespace :data:`RECORDS_NAMESPACE`, which is used
   only while it is current: computed with the tenant's current model settings, from the
   customer summary as it is now (same interaction count and last interaction time), and for
   the requested time: exactly that asOf for an explicit asOf; for "now", an asOf at most
   ``recordMaxAgeSeconds`` old (so a customer who stops buying ages without waiting for a
   batch);
3. a single-customer compute in O(log n) against the tenant's :class:`DistributionSnapshot`
   (``source: computed``). A "now" compute is stored; an explicit-asOf compute is stored only
   when the customer has no stored record for the current summary and settings, so a
   historic read does not replace the customer's current record.

An explicit asOf before the customer's last interaction is a :class:`ClvInputError` (records
come from all-time summaries, which cannot be cut at an earlier time).

Concurrent first reads of one customer and asOf compute once (single flight). ``invalidate``
(called from the ``outcome_recorded`` hook) drops the customer's cached records and detaches
the flights in progress for them: a read that starts after the invalidation never joins a
compute that started before it (and may have read the old summary); such a compute's result
is not cached. Its stored record no longer matches the summary, so the next read recomputes
it. Other processes keep serving their cached copy for at most the TTL.

Snapshots: for "now" reads, the tenant's snapshot is built as of the time it is built and
rebuilt when it is older than ``snapshotTtlSeconds`` or the model settings change, so within
that window its percentiles may still hold a customer's previous R/F/M and its score
thresholds those of the build time (an approximation that a batch or the TTL corrects). For an
explicit asOf, the snapshot is built as of exactly that time from the customers whose last
interaction is at or before it (a few are kept, least recently used dropped), so a single
compute equals the batch as of the same time, in any process. A batch scores the whole tenant
at once (numpy), installs its snapshot, and writes its records in one store transaction, so a
failure leaves the previous records intact.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
from cachetools import TTLCache

from nextbest.store import Store, TenantNotFoundError, to_epoch
from nextbest_clv.core.rfm import (
    SEGMENT_ORDER,
    DistributionSnapshot,
    RfmInputError,
    build_snapshot,
    score_batch,
    score_one,
)
from nextbest_clv.errors import (
    AsOfBeforeLastInteractionError,
    ClvInputError,
    NoInteractionsError,
    NoStoreError,
)
from nextbest_clv.service.model_records import ModelRecords
from nextbest_clv.service.records import (
    BatchDocuments,
    Source,
    epoch_us,
    is_current,
    iso_time,
    matches_basis,
    record_document,
    served_record,
)
from nextbest_clv.service.settings import ClvSettings, merge_settings, settings_fingerprint

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
#: Explicit-asOf records cached per customer (beside the "now" record).
_AS_OF_PER_CUSTOMER = 8
#: Snapshots built as of an explicit asOf kept per service (each holds sorted R/F/M arrays).
_AS_OF_SNAPSHOTS = 4

#: A requested time in cache and flight keys: None for "now", else whole epoch microseconds.
_When = int | None


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


#: A cache entry: requested time -> (time cached, document).
_Entry = dict[_When, tuple[float, dict[str, Any]]]


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
        self._caches: dict[str, TTLCache[tuple[str, str], _Entry]] = {}
        # The current generation of flights per customer: invalidate() detaches the whole map
        # entry, so reads that start afterwards start new flights.
        self._flights: dict[tuple[str, str], dict[_When, _Flight]] = {}
        self._settings: dict[str, tuple[float, ClvSettings]] = {}
        self._snapshots: dict[str, _Snapshot] = {}
        self._as_of_snapshots: OrderedDict[tuple[str, int], _Snapshot] = OrderedDict()
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
            for key in [k for k, v in self._as_of_snapshots.items() if k[0] == tenant_id]:
                if self._as_of_snapshots[key].fingerprint != fp:
                    del self._as_of_snapshots[key]
            cache = self._caches.get(tenant_id)
            model_changed = previous is not None and settings_fingerprint(previous[1]) != fp
            if cache is not None and (model_changed or cache.ttl != settings.cache_ttl_seconds):
                del self._caches[tenant_id]

    # -- cache --------------------------------------------------------------------------------
    def _cache(self, tenant_id: str, ttl: float) -> TTLCache[tuple[str, str], _Entry]:
        # Called with self._lock held.
        cache = self._caches.get(tenant_id)
        if cache is None:
            cache = TTLCache(maxsize=_CACHE_SIZE, ttl=ttl, timer=self.clock)
            self._caches[tenant_id] = cache
        return cache

    def _cached(
        self, key: tuple[str, str], when: _When, settings: ClvSettings
    ) -> dict[str, Any] | None:
        # Called with self._lock held.
        entry = self._cache(key[0], settings.cache_ttl_seconds).get(key)
        if entry is None or when not in entry:
            return None
        cached_at, document = entry[when]
        if self.clock() - cached_at >= settings.cache_ttl_seconds:
            return None
        return document

    def _remember(
        self, key: tuple[str, str], when: _When, document: dict[str, Any], settings: ClvSettings
    ) -> None:
        # Called with self._lock held. Entries are replaced, never mutated (copy on write).
        cache = self._cache(key[0], settings.cache_ttl_seconds)
        entry = dict(cache.get(key) or {})
        entry.pop(when, None)
        entry[when] = (self.clock(), document)
        explicit = [w for w in entry if w is not None]
        for old in explicit[: max(0, len(explicit) - _AS_OF_PER_CUSTOMER)]:
            del entry[old]  # the oldest explicit-asOf records first (insertion order)
        cache[key] = entry

    def invalidate(self, tenant_id: str, customer_id: str) -> None:
        """Forget the customer's cached records and detach the computes in progress for them
        (a later read starts its own); the next read checks the store and recomputes the
        record if the customer's interactions changed."""
        key = (tenant_id, customer_id)
        with self._lock:
            cache = self._caches.get(tenant_id)
            if cache is not None:
                cache.pop(key, None)
            for flight in self._flights.pop(key, {}).values():
                flight.stale = True  # it may have read the old summary: do not cache it

    def invalidate_tenant(self, tenant_id: str) -> None:
        """Forget every cached record of the tenant and detach its computes in progress."""
        with self._lock:
            self._caches.pop(tenant_id, None)
            for key in [k for k in self._flights if k[0] == tenant_id]:
                for flight in self._flights.pop(key).values():
                    flight.stale = True

    # -- single customer ----------------------------------------------------------------------
    def get(self, tenant_id: str, customer_id: str, as_of: float | None = None) -> dict[str, Any]:
        """The customer's record as of ``as_of`` (None: now): cached or stored while current
        for that time (``source: cached``, see the module doc), else computed
        (``source: computed``).

        Raises:
            NoInteractionsError: the customer has no interactions (no record).
            TenantNotFoundError: the tenant does not exist.
            ClvInputError: ``as_of`` is before the customer's last interaction.
        """
        settings = self.get_settings(tenant_id)
        key = (tenant_id, customer_id)
        when = None if as_of is None else epoch_us(as_of)
        with self._lock:
            hit = self._cached(key, when, settings)
            if hit is not None:
                return served_record(hit, "cached")
            flights = self._flights.setdefault(key, {})
            flight = flights.get(when)
            leader = flight is None
            if flight is None:
                flight = flights[when] = _Flight()
        if not leader:
            return served_record(flight.future.result(), "cached")
        try:
            document, source = self._load_or_compute(tenant_id, customer_id, settings, as_of)
        except BaseException as exc:
            self._drop_flight(key, when, flight)
            flight.future.set_exception(exc)
            raise
        self._finish(key, when, flight, document, settings)
        return served_record(document, source)

    def recompute(
        self, tenant_id: str, customer_id: str, as_of: float | None = None
    ) -> dict[str, Any]:
        """Compute the customer's record as of ``as_of`` (None: now; ``source: computed``),
        store it (an explicit asOf only when no current record is stored, see the module doc)
        and cache it."""
        settings = self.get_settings(tenant_id)
        key = (tenant_id, customer_id)
        when = None if as_of is None else epoch_us(as_of)
        flight = _Flight()
        with self._lock:
            flights = self._flights.setdefault(key, {})
            previous = flights.get(when)
            if previous is not None:
                previous.stale = True
            flights[when] = flight
        try:
            summary = self._summary(tenant_id, customer_id)
            stored = None
            if as_of is not None:
                stored = self.store.get_document(RECORDS_NAMESPACE, tenant_id, customer_id)
            document = self._compute(tenant_id, customer_id, settings, as_of, summary, stored)
        except BaseException as exc:
            self._drop_flight(key, when, flight)
            flight.future.set_exception(exc)
            raise
        self._finish(key, when, flight, document, settings)
        return served_record(document, "computed")

    def _drop_flight(self, key: tuple[str, str], when: _When, flight: _Flight) -> None:
        with self._lock:
            flights = self._flights.get(key)
            if flights is not None and flights.get(when) is flight:
                del flights[when]
                if not flights:
                    del self._flights[key]

    def _finish(
        self,
        key: tuple[str, str],
        when: _When,
        flight: _Flight,
        document: dict[str, Any],
        settings: ClvSettings,
    ) -> None:
        self._drop_flight(key, when, flight)
        with self._lock:
            if not flight.stale:
                self._remember(key, when, document, settings)
        flight.future.set_result(document)

    def _summary(self, tenant_id: str, customer_id: str) -> Any:
        summary = self.store.get_customer_summary(tenant_id, customer_id)
        if summary is None:
            self.require_tenant(tenant_id)  # a missing tenant is named as such
            raise NoInteractionsError(tenant_id, customer_id)
        return summary

    def _load_or_compute(
        self, tenant_id: str, customer_id: str, settings: ClvSettings, as_of: float | None
    ) -> tuple[dict[str, Any], Source]:
        summary = self._summary(tenant_id, customer_id)
        last_at = to_epoch(summary.last_at)
        _check_as_of(customer_id, as_of, last_at)
        stored = self.store.get_document(RECORDS_NAMESPACE, tenant_id, customer_id)
        fp = settings_fingerprint(settings)
        if as_of is None:
            when, max_age = max(self.clock(), last_at), settings.record_max_age_seconds
        else:
            when, max_age = as_of, None
        if stored is not None and is_current(
            stored, summary.interactions, last_at, fp, as_of=when, max_age=max_age
        ):
            document = self._with_model(tenant_id, customer_id, stored, settings, summary, as_of)
            return document, "cached"
        document = self._compute(tenant_id, customer_id, settings, as_of, summary, stored)
        return document, "computed"

    def _compute(
        self,
        tenant_id: str,
        customer_id: str,
        settings: ClvSettings,
        as_of: float | None,
        summary: Any,
        stored: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        """Compute, store per the module doc's rule (``stored``: the stored document, read only
        for an explicit ``as_of``), and add the model fields."""
        last_at, first_at = to_epoch(summary.last_at), to_epoch(summary.first_at)
        _check_as_of(customer_id, as_of, last_at)
        # "Now" never precedes the last interaction (a clock a little behind the writer's).
        when = max(self.clock(), last_at) if as_of is None else as_of
        snap = self._snapshot(tenant_id, settings, as_of)
        try:
            record = score_one(
                last_at,
                first_at,
                summary.interactions,
                summary.total_value,
                when,
                snap.snapshot,
                settings,
            )
        except RfmInputError as exc:
            raise ClvInputError(f"cannot compute CLV of {customer_id!r}: {exc}") from exc
        document = record_document(
            customer_id, record, iso_time(when), summary.interactions, last_at, snap.fingerprint
        )
        keep = (
            as_of is None
            or stored is None
            or not matches_basis(stored, summary.interactions, last_at, snap.fingerprint)
        )
        if keep:
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
    def _snapshot(
        self, tenant_id: str, settings: ClvSettings, as_of: float | None = None
    ) -> _Snapshot:
        """The tenant's snapshot for "now" (``as_of`` None) or as of exactly ``as_of``."""
        fp = settings_fingerprint(settings)
        key = None if as_of is None else (tenant_id, epoch_us(as_of))
        with self._lock:
            snap = self._stored_snapshot(tenant_id, key)
            build_lock = self._snapshot_locks.setdefault(tenant_id, threading.Lock())
        if self._fresh(snap, fp, settings):
            assert snap is not None
            return snap
        with build_lock:  # one rebuild per tenant at a time; the others wait and reuse it
            with self._lock:
                snap = self._stored_snapshot(tenant_id, key)
            if self._fresh(snap, fp, settings):
                assert snap is not None
                return snap
            cols = self.store.customer_summary_columns(tenant_id)
            ok = _valid_rows(cols, as_of)
            if not ok.any():
                when = "" if as_of is None else f" as of {iso_time(as_of)}"
                raise ClvInputError(
                    f"tenant {tenant_id!r} has no customers with usable interaction summaries{when}"
                )
            last = cols.last_at[ok]
            at = max(self.clock(), float(last.max())) if as_of is None else as_of
            snapshot = build_snapshot(
                last, cols.interactions[ok], cols.total_value[ok], at, settings
            )
            snap = _Snapshot(snapshot, self.clock(), fp)
            self._install_snapshot(tenant_id, as_of, snap)
            return snap

    def _stored_snapshot(self, tenant_id: str, key: tuple[str, int] | None) -> _Snapshot | None:
        # Called with self._lock held.
        if key is None:
            return self._snapshots.get(tenant_id)
        snap = self._as_of_snapshots.get(key)
        if snap is not None:
            self._as_of_snapshots.move_to_end(key)
        return snap

    def _install_snapshot(self, tenant_id: str, as_of: float | None, snap: _Snapshot) -> None:
        with self._lock:
            if as_of is None:
                self._snapshots[tenant_id] = snap
                return
            key = (tenant_id, epoch_us(as_of))
            self._as_of_snapshots[key] = snap
            self._as_of_snapshots.move_to_end(key)
            while len(self._as_of_snapshots) > _AS_OF_SNAPSHOTS:
                self._as_of_snapshots.popitem(last=False)

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
        requested = as_of
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
            # A batch as of an explicit time is that time's snapshot; as of "now", the current one.
            self._install_snapshot(tenant_id, requested, _Snapshot(snapshot, self.clock(), fp))
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


def _check_as_of(customer_id: str, as_of: float | None, last_at: float) -> None:
    if as_of is not None and as_of < last_at:
        raise AsOfBeforeLastInteractionError(
            f"asOf {iso_time(as_of)} is before customer {customer_id!r}'s last interaction "
            f"({iso_time(last_at)}): records are computed from all-time summaries, so use "
            "an asOf at or after it"
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
