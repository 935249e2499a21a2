"""One customer's CLV record: the stored one while it answers the read, else computed.

For a read as of ``as_of`` (None: now): the stored record (plugin document in
:data:`~nextbest_clv.service.records.RECORDS_NAMESPACE`) is used only while it is current:
computed with the tenant's current model settings, from the customer summary as it is now
(same interaction count and last interaction time), and for the requested time: exactly that
asOf for an explicit asOf; for "now", an asOf at most ``recordMaxAgeSeconds`` old. Otherwise
the record is computed in O(log n) against the tenant's distribution snapshot
(``source: computed``). A "now" compute is stored; an explicit-asOf compute is stored only
when the customer has no stored record for the current summary and settings, so a historic
read does not replace the customer's current record. Either way the record gets the tenant's
probabilistic model fields (none for ``rfm``).

An explicit asOf before the customer's last interaction is an
:class:`~nextbest_clv.errors.AsOfBeforeLastInteractionError` (records come from all-time
summaries, which cannot be cut at an earlier time). A customer the batch would list as failed
(unusable summary values, a record whose numbers would not be finite, model fields that are not
finite) is an :class:`~nextbest_clv.errors.UnscorableCustomerError`; nothing is stored for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from nextbest.store import Store, to_epoch
from nextbest_clv.core.rfm import RfmInputError, score_one
from nextbest_clv.errors import (
    AsOfBeforeLastInteractionError,
    NoInteractionsError,
    UnscorableCustomerError,
)
from nextbest_clv.service.model_records import ModelRecords
from nextbest_clv.service.records import (
    RECORDS_NAMESPACE,
    Source,
    basis_of,
    is_current,
    iso_time,
    matches_basis,
    record_document,
)
from nextbest_clv.service.settings import ClvSettings, settings_fingerprint
from nextbest_clv.service.snapshots import SnapshotKeeper
from nextbest_clv.service.summary_rows import net_monetary, row_problem
from nextbest_clv.service.tenant_data import require_tenant

__all__ = ["SingleCompute", "check_as_of"]


class SingleCompute:
    """Single-customer records of every tenant of one store (see the module doc). Thread-safe.

    Args:
        store: the store (summaries, stored records).
        clock: epoch seconds now.
        snapshots: the tenants' distribution snapshots.
        models: the probabilistic fields of records.
    """

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float],
        snapshots: SnapshotKeeper,
        models: ModelRecords,
    ) -> None:
        self.store = store
        self.clock = clock
        self.snapshots = snapshots
        self.models = models
        self._lock = threading.Lock()
        #: number of computes done (for tests and metrics)
        self.computes = 0

    def load_or_compute(
        self, tenant_id: str, customer_id: str, settings: ClvSettings, as_of: float | None
    ) -> tuple[dict[str, Any], Source]:
        """The stored record while it answers the read (``cached``), else a computed one
        (``computed``), with the model fields.

        Raises:
            NoInteractionsError: the customer has no interactions (no record).
            TenantNotFoundError: the tenant does not exist.
            ClvInputError: ``as_of`` is before the customer's last interaction.
            UnscorableCustomerError: the customer's stored data cannot give a record.
        """
        summary = self._summary(tenant_id, customer_id)
        last_at = to_epoch(summary.last_at)
        check_as_of(customer_id, as_of, last_at)
        stored = self.store.get_document(RECORDS_NAMESPACE, tenant_id, customer_id)
        fp = settings_fingerprint(settings)
        if as_of is None:
            when, max_age = max(self.clock(), last_at), settings.record_max_age_seconds
        else:
            when, max_age = as_of, None
        basis = basis_of(summary.interactions, last_at, summary.total_value)
        if stored is not None and is_current(stored, basis, fp, as_of=when, max_age=max_age):
            document = self._with_model(tenant_id, customer_id, stored, settings, summary, as_of)
            return document, "cached"
        document = self._compute(tenant_id, customer_id, settings, as_of, summary, stored)
        return document, "computed"

    def compute(
        self, tenant_id: str, customer_id: str, settings: ClvSettings, as_of: float | None
    ) -> dict[str, Any]:
        """A computed record (stored per the module doc's rule), with the model fields."""
        summary = self._summary(tenant_id, customer_id)
        stored = None
        if as_of is not None:
            stored = self.store.get_document(RECORDS_NAMESPACE, tenant_id, customer_id)
        return self._compute(tenant_id, customer_id, settings, as_of, summary, stored)

    def _summary(self, tenant_id: str, customer_id: str) -> Any:
        summary = self.store.get_customer_summary(tenant_id, customer_id)
        if summary is None:
            require_tenant(self.store, tenant_id)  # a missing tenant is named as such
            raise NoInteractionsError(tenant_id, customer_id)
        return summary

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
        check_as_of(customer_id, as_of, last_at)
        # "Now" never precedes the last interaction (a clock a little behind the writer's).
        when = max(self.clock(), last_at) if as_of is None else as_of
        # The batch's rule for a summary row, so a customer the batch lists as failed is
        # refused here too (and left out of the snapshot's percentiles).
        problem = row_problem(first_at, last_at, summary.interactions, summary.total_value, when)
        if problem is not None:
            raise UnscorableCustomerError(tenant_id, customer_id, problem)
        snap = self.snapshots.get(tenant_id, settings, as_of)
        try:
            record = score_one(
                last_at,
                first_at,
                summary.interactions,
                float(net_monetary(summary.total_value)),
                when,
                snap.snapshot,
                settings,
            )
        except RfmInputError as exc:  # e.g. a monetary total too large to give finite numbers
            raise UnscorableCustomerError(tenant_id, customer_id, str(exc)) from exc
        basis = basis_of(summary.interactions, last_at, summary.total_value)
        document = record_document(customer_id, record, iso_time(when), basis, snap.fingerprint)
        keep = as_of is None or stored is None or not matches_basis(stored, basis, snap.fingerprint)
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


def check_as_of(customer_id: str, as_of: float | None, last_at: float) -> None:
    """Raise AsOfBeforeLastInteractionError when an explicit ``as_of`` precedes ``last_at``."""
    if as_of is not None and as_of < last_at:
        raise AsOfBeforeLastInteractionError(
            f"asOf {iso_time(as_of)} is before customer {customer_id!r}'s last interaction "
            f"({iso_time(last_at)}): records are computed from all-time summaries, so use "
            "an asOf at or after it",
            field="asOf",
        )
