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
come from all-time summaries, which cannot be cut at an earlier time); so is any asOf outside the
store's window of times (:mod:`~nextbest_clv.service.times`). A customer whose stored data
cannot give a record (unusable values, numbers that would not be finite) is an
:class:`~nextbest_clv.errors.UnscorableCustomerError` on a read and a listed failure in a batch.

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

The parts (each in its own module of this package), composed here:

- :class:`~nextbest_clv.service.settings_repository.SettingsRepository`: the tenants' stored
  settings, re-read after a few seconds;
- :class:`~nextbest_clv.service.record_cache.RecordCache`: layer 1, the single flights and the
  invalidation;
- :class:`~nextbest_clv.service.snapshots.SnapshotKeeper`: the snapshots;
- :class:`~nextbest_clv.service.single_compute.SingleCompute`: layers 2 and 3 for one customer;
- :class:`~nextbest_clv.service.tenant_batch.TenantBatch`: the batch;
- :func:`~nextbest_clv.service.distribution.distribution_report`: the distribution report;
- :class:`~nextbest_clv.service.model_records.ModelRecords`: the probabilistic model's fields.

The settings, the record cache and the snapshots share one lock, so a settings change drops
the tenant's stale snapshots and cached records atomically with the new settings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nextbest.store import Store
from nextbest_clv.service.alive_paths import customer_alive_path
from nextbest_clv.service.distribution import distribution_report
from nextbest_clv.service.model_records import MODEL_RECORDS_NAMESPACE, ModelRecords
from nextbest_clv.service.record_cache import RecordCache, when_key
from nextbest_clv.service.records import RECORDS_NAMESPACE, served_record
from nextbest_clv.service.settings import ClvSettings
from nextbest_clv.service.settings_repository import SettingsRepository
from nextbest_clv.service.single_compute import SingleCompute
from nextbest_clv.service.snapshots import SnapshotKeeper
from nextbest_clv.service.tenant_batch import BatchResult, PreviousAsker, TenantBatch
from nextbest_clv.service.tenant_data import require_tenant
from nextbest_clv.service.times import checked_epoch

__all__ = ["CUSTOMER_NAMESPACES", "ClvService"]

#: The plugin-document namespaces keyed by customer id: the stored records (RFM and model
#: fields). Forgetting a customer deletes its documents there (``register_customer_data``).
CUSTOMER_NAMESPACES: tuple[str, ...] = (RECORDS_NAMESPACE, MODEL_RECORDS_NAMESPACE)


class ClvService:
    """CLV records of every tenant in one store. Safe to share between threads.

    Args:
        store: the store (interactions, summaries, plugin documents).
        clock: epoch seconds now; the TTL caches use it too (tests pass a fake clock).
    """

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        # One lock for the settings, the record cache and the snapshots (see the module doc).
        lock = threading.Lock()
        self._settings = SettingsRepository(store, clock, lock, self._settings_changed)
        self._cache = RecordCache(clock, lock)
        self._snapshots = SnapshotKeeper(store, clock, lock)
        #: the probabilistic fields of records (tenants whose ``model`` is not ``rfm``)
        self.models = ModelRecords(store, clock)
        self._single = SingleCompute(store, clock, self._snapshots, self.models)
        #: Asked by a batch before it stores its records, with the tenant, the customers, the
        #: new records as columns and the asOf: which customers' stored records to keep in
        #: the result as ``previous`` (the plugin asks the host there).
        self.previous_askers: list[PreviousAsker] = []
        self._batch = TenantBatch(
            store, clock, self._settings, self._snapshots, self._cache, self.previous_askers
        )
        #: Called after every full batch compute (``batch_compute.compute_records``) with the
        #: tenant and the result (its records as columns): the plugin tells the host there.
        self.batch_listeners: list[Callable[[str, BatchResult], None]] = []

    @property
    def computes(self) -> int:
        """Number of single-customer computes done (for tests and metrics)."""
        return self._single.computes

    # -- settings -----------------------------------------------------------------------------
    def get_settings(self, tenant_id: str) -> ClvSettings:
        """The tenant's settings (defaults until changed)."""
        return self._settings.get(tenant_id)

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
        after = self._settings.update(tenant_id, changes, replace=replace)
        self.invalidate_tenant(tenant_id)
        return after

    def _settings_changed(
        self, tenant_id: str, settings: ClvSettings, fingerprint: str, model_changed: bool
    ) -> None:
        # Called by the settings repository with the shared lock held.
        self._snapshots.drop_stale_locked(tenant_id, fingerprint)
        self._cache.settings_changed_locked(tenant_id, settings, model_changed)

    # -- cache --------------------------------------------------------------------------------
    def invalidate(self, tenant_id: str, customer_id: str) -> None:
        """Forget the customer's cached records and detach the computes in progress for them
        (a later read starts its own); the next read checks the store and recomputes the
        record if the customer's interactions changed."""
        self._cache.invalidate(tenant_id, customer_id)

    def customers_changed(self, tenant_id: str, customer_ids: Iterable[str]) -> None:
        """The customers' recorded interactions were corrected or deleted: delete their stored
        records and forget their cached ones, so the next read computes them from the corrected
        summary. (A stored record stays current while the summary's interaction count and last
        time match, which a corrected value leaves unchanged.) The documents go first: a read
        racing this call either computes anew or is detached by the invalidation."""
        customers = sorted(set(customer_ids))
        for namespace in CUSTOMER_NAMESPACES:
            self.store.delete_documents(namespace, tenant_id, customers)
        for customer_id in customers:
            self.invalidate(tenant_id, customer_id)

    def invalidate_tenant(self, tenant_id: str) -> None:
        """Forget every cached record of the tenant and detach its computes in progress."""
        self._cache.invalidate_tenant(tenant_id)

    # -- single customer ----------------------------------------------------------------------
    def get(self, tenant_id: str, customer_id: str, as_of: float | None = None) -> dict[str, Any]:
        """The customer's record as of ``as_of`` (None: now): cached or stored while current
        for that time (``source: cached``, see the module doc), else computed
        (``source: computed``).

        Raises:
            NoInteractionsError: the customer has no interactions (no record).
            TenantNotFoundError: the tenant does not exist.
            ClvInputError: ``as_of`` is before the customer's last interaction, or outside
                the store's window of times.
            UnscorableCustomerError: the customer's stored data cannot give a record.
        """
        as_of = checked_epoch(as_of, "asOf")
        settings = self.get_settings(tenant_id)
        document, source = self._cache.get_or_compute(
            (tenant_id, customer_id),
            when_key(as_of),
            settings,
            lambda: self._single.load_or_compute(tenant_id, customer_id, settings, as_of),
        )
        return served_record(document, source)

    def recompute(
        self, tenant_id: str, customer_id: str, as_of: float | None = None
    ) -> dict[str, Any]:
        """Compute the customer's record as of ``as_of`` (None: now; ``source: computed``),
        store it (an explicit asOf only when no current record is stored, see the module doc)
        and cache it. Raises like :meth:`get`."""
        as_of = checked_epoch(as_of, "asOf")
        settings = self.get_settings(tenant_id)
        document = self._cache.recompute(
            (tenant_id, customer_id),
            when_key(as_of),
            settings,
            lambda: self._single.compute(tenant_id, customer_id, settings, as_of),
        )
        return served_record(document, "computed")

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
        unusable values, a record that would not be finite) are counted and listed as failures
        and left out of the percentiles; they never fail the batch.

        ``progress(done, total)`` is called while the records are written.

        Raises:
            ClvInputError: unknown segment, or ``as_of`` outside the store's window of times.
            TenantNotFoundError: the tenant does not exist.
        """
        return self._batch.compute(tenant_id, segment=segment, as_of=as_of, progress=progress)

    # -- reporting ----------------------------------------------------------------------------
    def distribution(self, tenant_id: str, as_of: float | None = None) -> dict[str, Any]:
        """Counts per segment, a score histogram (ten bins) and the segment thresholds of the
        tenant's customers as of ``as_of`` (default now), computed live, nothing stored; with a
        model active, the model's segments (:mod:`~nextbest_clv.service.distribution`).

        Raises:
            ClvInputError: ``as_of`` outside the store's window of times.
            TenantNotFoundError: the tenant does not exist.
        """
        as_of = checked_epoch(as_of, "asOf")
        self.require_tenant(tenant_id)
        settings = self.get_settings(tenant_id)
        when = self.clock() if as_of is None else as_of
        cols = self.store.customer_summary_columns(tenant_id)
        model = (
            None
            if settings.model == "rfm"
            else self.models.columns(tenant_id, settings, when, as_of=as_of)
        )
        return distribution_report(cols, settings, when, model)

    def alive_path(
        self, tenant_id: str, customer_id: str, as_of: float | None = None
    ) -> dict[str, Any]:
        """P(alive) along the customer's history as of ``as_of`` (None: now) under the
        tenant's fitted transaction model (see :mod:`nextbest_clv.service.alive_paths`).

        Raises:
            TenantNotFoundError, ClvInputError: as :meth:`get`.
            ModelFitError: the tenant's model is not a transaction model.
            ModelNotFittedError: it was never fitted.
            NoTransactionsError: the customer has no transactions.
        """
        as_of = checked_epoch(as_of, "asOf")
        self.require_tenant(tenant_id)
        settings = self.get_settings(tenant_id)
        when = self.clock() if as_of is None else as_of
        return customer_alive_path(self.store, tenant_id, customer_id, settings, when)

    def require_tenant(self, tenant_id: str) -> None:
        """Raise TenantNotFoundError when the tenant does not exist."""
        require_tenant(self.store, tenant_id)
