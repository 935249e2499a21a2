"""The probabilistic part of CLV records: computed from the tenant's stored fit, stored, reused.

When a tenant's ``model`` setting is ``bgnbd``, ``paretonbd``, ``mbgnbd``, ``bgbb`` (fields of
:mod:`nextbest_clv.service.bgbb_fits`) or ``sbg``, each CLV record gets the fields of
:mod:`nextbest_clv.core.probabilistic` (``probabilityAlive``,
``expectedPurchases90d``, ``expectedRevenue12m``, ``clv``, ``expectedNextPurchaseAt`` (null for
``sbg``), ``model``) and its
``churnProbability`` becomes the model's 1 - P(alive in 90 days), ``predictedRevenue`` the
model's ``clv`` (rounded to cents) and ``segment`` the model segment
(:mod:`nextbest_clv.core.model_segments`: ``at_risk`` below ``atRiskProbabilityAlive``, else
a tier of ``clv`` against the thresholds of :meth:`ModelRecords.tiers`, the same for a batch
and a single read). They are stored as plugin
documents in :data:`MODEL_RECORDS_NAMESPACE` (key: customer id), each marked with the fit it
came from (``<model>/v<version>``), a fingerprint of the model settings, the customer's
summary (interaction count, last interaction time) and the asOf it was computed for
(``computedAt``). A stored document is used only while the fit, settings and summary still
match and its asOf fits the read, with the same rule as the RFM record
(:func:`nextbest_clv.service.records.is_current`): exactly the requested asOf, or for a read "as of
now" at most ``recordMaxAgeSeconds`` old; otherwise the customer's fields are computed again
from their interactions (and stored, except for an explicit asOf when the stored document
still matches the summary: a historic read does not replace the current fields). A batch as of
a time stores fields only for customers whose last interaction is at or before it.

A customer without a transaction (or, for ``sbg``, without a subscription) has the model
fields set to null and keeps the RFM ``churnProbability``, ``predictedRevenue`` and
``segment``.

One customer never fails the tenant: a customer with an event the store's rules refuse
(:func:`~nextbest_clv.service.tenant_data.unusable_events`) or whose fields are not finite
numbers (extreme fit parameters, extreme values) is skipped by a batch, counted and listed in
``failures`` with the reason; a single read of it raises
:class:`~nextbest_clv.errors.UnscorableCustomerError`. No NaN or infinity is ever stored.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nextbest.store import Store, to_epoch
from nextbest_clv.core.estimators import SpendModel, transaction_model_from_params
from nextbest_clv.core.model_segments import (
    ModelTiers,
    build_tiers,
    clv_percentile,
    model_segment_codes,
)
from nextbest_clv.core.models import DataError, ShiftedBetaGeometricModel, summarize_transactions
from nextbest_clv.core.probabilistic import ModelFields, subscription_fields, transaction_fields
from nextbest_clv.core.rfm import SEGMENT_ORDER
from nextbest_clv.core.subscriptions import DAY_SECONDS, Subscriptions
from nextbest_clv.errors import ModelFitError, UnscorableCustomerError
from nextbest_clv.service.bgbb_fits import bgbb_record_fields
from nextbest_clv.service.fits import require_fit
from nextbest_clv.service.records import (
    MODEL_FIELDS,
    basis_of,
    is_current,
    iso_time,
    matches_basis,
)
from nextbest_clv.service.settings import ClvSettings
from nextbest_clv.service.tenant_data import (
    Transactions,
    customer_subscription,
    customer_transactions,
    epoch_day,
    load_subscriptions,
    load_transactions,
)
from nextbest_clv.service.times import checked_epoch

__all__ = [
    "MODEL_RECORDS_NAMESPACE",
    "MODEL_RECORD_FIELDS",
    "ModelBatchResult",
    "ModelColumns",
    "ModelRecords",
]

MODEL_RECORDS_NAMESPACE = "clv.model-records"
#: Fields a probabilistic model adds to the served record, in order.
MODEL_RECORD_FIELDS: tuple[str, ...] = MODEL_FIELDS
_FIT_TTL_SECONDS = 5.0
#: A median wait for the next purchase beyond 100 years is shown as null (never).
_NEVER_DAYS = 36_525.0
_PROB_SETTINGS = (
    "model",
    "transaction_outcomes",
    "subscription_start_outcomes",
    "subscription_end_outcomes",
    "bgbb_period_days",
    "clv_months",
    "discount_rate_monthly",
    "at_risk_probability_alive",
    "segment_high_percentile",
    "segment_low_percentile",
)
#: Cached tier thresholds kept per tenant (explicit asOf reads add entries).
_MAX_CACHED_TIERS = 64


_MAX_LISTED_FAILURES = 100
#: RFM record fields a model's figures replace in the served record (see docs/clv.md).
_REPLACED_FIELDS = ("churnProbability", "predictedRevenue", "segment")


@dataclass(frozen=True, slots=True)
class ModelBatchResult:
    """What a batch of model fields did: customers with fields, customers without data (null
    fields), customers that failed (no document; at most 100 listed with the reason), the fit
    used, duration."""

    tenant_id: str
    model: str
    fit: str
    computed: int
    without_data: int
    duration_seconds: float
    failed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    #: The fields computed, as columns (record field -> values aligned with
    #: ``customer_ids``), for the batch's listeners (not part of the JSON).
    customer_ids: list[str] = field(default_factory=list, repr=False, compare=False)
    columns: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: The customers without a model record (failed or refused): no model fields at all.
    failed_ids: frozenset[str] = field(default_factory=frozenset, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """camelCase JSON."""
        return {
            "model": self.model,
            "fit": self.fit,
            "computed": self.computed,
            "withoutData": self.without_data,
            "failed": self.failed,
            "failures": list(self.failures),
            "durationSeconds": round(self.duration_seconds, 6),
        }


@dataclass(frozen=True)
class ModelColumns:
    """The model fields of a tenant's customers as of a time, before anything is stored.

    ``ids`` and ``fields`` are parallel (``fields`` None when no customer has data); ``ok``
    marks the customers whose fields are all finite; ``failed`` maps every customer that has
    no fields to the reason (unusable events, fields that are not finite).
    """

    model: str
    fit: dict[str, Any]
    ids: NDArray[np.str_]
    fields: ModelFields | None
    ok: NDArray[np.bool_]
    failed: dict[str, str]
    tiers: ModelTiers | None = None

    def segments(self) -> NDArray[np.object_]:
        """The model segment per customer of ``ids`` (None where the fields are not finite)."""
        out = np.full(len(self.ids), None, dtype=object)
        if self.fields is None or self.tiers is None:
            return out
        codes = model_segment_codes(self.fields.probability_alive, self.fields.clv, self.tiers)
        names = np.array([s.value for s in SEGMENT_ORDER], dtype=object)
        good = (codes >= 0) & self.ok
        out[good] = names[codes[good]]
        return out


def _fingerprint(settings: ClvSettings) -> str:
    values = {name: getattr(settings, name) for name in _PROB_SETTINGS}
    return hashlib.blake2b(json.dumps(values).encode(), digest_size=6).hexdigest()


def _fit_id(fit: dict[str, Any]) -> str:
    return f"{fit['model']}/v{fit['version']}"


def _null_fields(model: str) -> dict[str, Any]:
    return {**dict.fromkeys(MODEL_RECORD_FIELDS[:-1]), "model": model}


class ModelRecords:
    """Probabilistic fields of CLV records for every tenant of one store (thread-safe)."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._fits: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        # (tenant, fit id, settings fingerprint, explicit asOf or None) -> (built at, tiers)
        self._tiers: dict[tuple[str, str, str, float | None], tuple[float, ModelTiers]] = {}

    def fit(self, tenant_id: str, model: str) -> dict[str, Any]:
        """The tenant's latest fit of ``model`` (re-read after a few seconds).

        Raises:
            ModelNotFittedError: never fitted.
        """
        now = self.clock()
        key = (tenant_id, model)
        with self._lock:
            cached = self._fits.get(key)
        if cached is not None and now - cached[0] < _FIT_TTL_SECONDS:
            return cached[1]
        doc = require_fit(self.store, tenant_id, model)
        with self._lock:
            self._fits[key] = (now, doc)
        return doc

    def forget(self, tenant_id: str) -> None:
        """Drop the tenant's cached fits (after a new fit)."""
        with self._lock:
            for key in [k for k in self._fits if k[0] == tenant_id]:
                del self._fits[key]
            for tkey in [k for k in self._tiers if k[0] == tenant_id]:
                del self._tiers[tkey]

    def tiers(
        self, tenant_id: str, settings: ClvSettings, when: float, as_of: float | None
    ) -> ModelTiers:
        """The thresholds of the tenant's model segments (:mod:`~nextbest_clv.core.
        model_segments`): those of the latest batch, or of every customer's fields as of
        ``when``, reused for ``snapshotTtlSeconds`` like the RFM snapshot (for an explicit
        ``as_of``: those as of that time)."""
        fit = self.fit(tenant_id, settings.model)
        key = (tenant_id, _fit_id(fit), _fingerprint(settings), as_of)
        now = self.clock()
        with self._lock:
            cached = self._tiers.get(key)
        if cached is not None and (
            as_of is not None or now - cached[0] < settings.snapshot_ttl_seconds
        ):
            return cached[1]
        return self.columns(tenant_id, settings, when, as_of=as_of).tiers  # type: ignore[return-value]

    def _keep_tiers(
        self,
        tenant_id: str,
        fit: dict[str, Any],
        settings: ClvSettings,
        as_of: float | None,
        tiers: ModelTiers,
    ) -> None:
        key = (tenant_id, _fit_id(fit), _fingerprint(settings), as_of)
        with self._lock:
            if len(self._tiers) >= _MAX_CACHED_TIERS:
                self._tiers.clear()
            self._tiers[key] = (self.clock(), tiers)

    # -- one customer -------------------------------------------------------------------------
    def fields_for(
        self,
        tenant_id: str,
        customer_id: str,
        summary: Any,
        settings: ClvSettings,
        as_of: float | None,
    ) -> dict[str, Any] | None:
        """The customer's model fields (None when the tenant's model is ``rfm``): the stored
        ones while current, else computed from the customer's interactions and stored."""
        if settings.model == "rfm":
            return None
        fit = self.fit(tenant_id, settings.model)
        last_at = to_epoch(summary.last_at)
        fp = _fingerprint(settings)
        if as_of is None:
            when, max_age = max(self.clock(), last_at), settings.record_max_age_seconds
        else:
            when, max_age = as_of, None
        found = self.store.get_document(MODEL_RECORDS_NAMESPACE, tenant_id, customer_id)
        # Ours: a document marked with this fit (anything else is replaced when computed).
        stored = found if isinstance(found, dict) and found.get("fit") == _fit_id(fit) else None
        basis = basis_of(summary.interactions, last_at, summary.total_value)
        if stored is not None and is_current(stored, basis, fp, as_of=when, max_age=max_age):
            return _public(stored)
        keep = as_of is None or stored is None or not matches_basis(stored, basis, fp)
        mark = {"fit": _fit_id(fit), "settings": fp, "basis": basis}
        if settings.model == "sbg":
            subs, rejected = customer_subscription(
                self.store,
                tenant_id,
                customer_id,
                settings.subscription_start_outcomes,
                settings.subscription_end_outcomes,
                when,
            )
            fields = self._subscription_fields(fit, subs, when, settings)
            ids = subs.customer_ids
        else:
            data = customer_transactions(
                self.store, tenant_id, customer_id, settings.transaction_outcomes, when
            )
            rejected = dict(data.rejected)
            ids, fields = self._transaction_fields(fit, data, when, settings)
        if customer_id in rejected:
            raise UnscorableCustomerError(tenant_id, customer_id, rejected[customer_id])
        if fields is not None and ids.size and not fields.finite()[0]:
            raise UnscorableCustomerError(tenant_id, customer_id, _not_finite(fit, fields, 0))
        doc: dict[str, Any] = {}
        if fields is not None and ids.size:
            placed = _Placed.of(fields, self.tiers(tenant_id, settings, when, as_of))
            doc = _record(fields, 0, settings.model, when, placed)
        doc = {**_null_fields(settings.model), **doc, "computedAt": iso_time(when), **mark}
        if keep:
            self.store.put_documents(MODEL_RECORDS_NAMESPACE, tenant_id, {customer_id: doc})
        return _public(doc)

    # -- batch --------------------------------------------------------------------------------
    def columns(
        self, tenant_id: str, settings: ClvSettings, when: float, *, as_of: float | None = None
    ) -> ModelColumns:
        """The model fields of every customer of the tenant as of ``when`` (epoch seconds), from
        the tenant's latest fit, nothing stored (see :class:`ModelColumns`), with the segment
        thresholds of these customers (kept for single reads; ``as_of``: the read's explicit
        asOf, None for "now").

        Raises:
            ModelNotFittedError: the tenant's model was never fitted.
            ModelFitError: the model is ``rfm`` (nothing to compute).
        """
        if settings.model == "rfm":
            raise ModelFitError(
                f"tenant {tenant_id!r} uses the rfm model: there are no model fields to compute"
            )
        fit = self.fit(tenant_id, settings.model)
        if settings.model == "sbg":
            subs, rejected = load_subscriptions(
                self.store,
                tenant_id,
                settings.subscription_start_outcomes,
                settings.subscription_end_outcomes,
                when,
            )
            ids, fields = subs.customer_ids, self._subscription_fields(fit, subs, when, settings)
        else:
            data = load_transactions(self.store, tenant_id, settings.transaction_outcomes, end=when)
            rejected = dict(data.rejected)
            ids, fields = self._transaction_fields(fit, data, when, settings)
        ok = fields.finite() if fields is not None else np.zeros(0, dtype=bool)
        failed = dict(rejected)
        for i in np.flatnonzero(~ok).tolist():
            assert fields is not None
            failed[str(ids[i])] = _not_finite(fit, fields, i)
        tiers = build_tiers(
            fields.probability_alive[ok] if fields is not None else [],
            fields.clv[ok] if fields is not None else [],
            at_risk_probability_alive=settings.at_risk_probability_alive,
            high_percentile=settings.segment_high_percentile,
            low_percentile=settings.segment_low_percentile,
        )
        self._keep_tiers(tenant_id, fit, settings, as_of, tiers)
        return ModelColumns(settings.model, fit, ids, fields, ok, failed, tiers)

    def compute_batch(
        self, tenant_id: str, settings: ClvSettings, as_of: float | None = None
    ) -> ModelBatchResult:
        """Compute and store the model fields of every customer of the tenant as of ``as_of``
        (default now) in one transaction (replacing the namespace's documents). Customers whose
        last interaction is after ``as_of`` get no document (their summary cannot be cut at
        ``as_of``; a later read computes their fields); nor do customers that fail (listed in
        the result with the reason, see the module doc).

        Raises:
            ModelNotFittedError: the tenant's model was never fitted.
            ModelFitError: the model is ``rfm`` (nothing to compute).
            ClvInputError: ``as_of`` outside the store's window of times.
        """
        as_of = checked_epoch(as_of, "asOf")
        started = time.perf_counter()
        when = self.clock() if as_of is None else as_of
        columns = self.columns(tenant_id, settings, when, as_of=as_of)
        fit, fields, failed = columns.fit, columns.fields, columns.failed
        if as_of is not None:  # a batch's thresholds also answer later reads "as of now"
            assert columns.tiers is not None
            self._keep_tiers(tenant_id, fit, settings, None, columns.tiers)
        cols = self.store.customer_summary_columns(tenant_id)
        position = {cid: i for i, cid in enumerate(columns.ids.tolist())}
        mark = {"fit": _fit_id(fit), "settings": _fingerprint(settings)}
        computed_at = iso_time(when)
        assert columns.tiers is not None
        placed = _Placed.of(fields, columns.tiers) if fields is not None else None
        last_us = np.rint(cols.last_at * 1e6).astype(np.int64).tolist()
        interactions = cols.interactions.tolist()
        totals = cols.total_value.tolist()
        documents: dict[str, dict[str, Any]] = {}
        last_at = cols.last_at.tolist()
        failures: list[dict[str, str]] = []
        for row, cid in enumerate(cols.customer_ids.tolist()):
            if not last_at[row] <= when:  # after asOf (or a NaN a store let through)
                continue
            customer = str(cid)
            if customer in failed:
                failures.append({"customerId": customer, "reason": failed[customer]})
                continue
            i = position.get(customer)
            values = (
                _record(fields, i, settings.model, when, placed)
                if i is not None and fields is not None and placed is not None
                else _null_fields(settings.model)
            )
            documents[customer] = {
                **values,
                "computedAt": computed_at,
                **mark,
                "basis": [interactions[row], last_us[row], float(totals[row])],
            }
        self.store.put_documents(MODEL_RECORDS_NAMESPACE, tenant_id, documents, replace=True)
        computed = sum(1 for d in documents.values() if d["probabilityAlive"] is not None)
        model_columns: dict[str, Any] = {}
        model_ids: list[str] = []
        if fields is not None:  # the customers with a record of finite fields only
            ok = np.asarray(columns.ok, dtype=bool)
            model_ids = columns.ids[ok].tolist()
            model_columns = {
                "probabilityAlive": fields.probability_alive[ok],
                "expectedPurchases90d": fields.expected_purchases_90d[ok],
                "expectedRevenue12m": fields.expected_revenue_12m[ok],
                "clv": fields.clv[ok],
                "churnProbability": fields.churn_probability[ok],
                "predictedRevenue": model_revenue(fields.clv[ok]),
                "segment": columns.segments()[ok],
                "clvPercentile": clv_percentile(fields.clv[ok], columns.tiers),
            }
        return ModelBatchResult(
            tenant_id=tenant_id,
            model=settings.model,
            fit=mark["fit"],
            computed=computed,
            without_data=len(documents) - computed,
            duration_seconds=time.perf_counter() - started,
            failed=len(failures),
            failures=failures[:_MAX_LISTED_FAILURES],
            customer_ids=model_ids,
            columns=model_columns,
            failed_ids=frozenset(failed),
        )

    # -- numeric glue -------------------------------------------------------------------------
    @staticmethod
    def _transaction_fields(
        fit: dict[str, Any], data: Transactions, when: float, settings: ClvSettings
    ) -> tuple[np.ndarray[Any, Any], ModelFields | None]:
        if len(data) == 0:
            return np.zeros(0, dtype=str), None
        if fit["model"] == "bgbb":
            return bgbb_record_fields(fit, data, when, settings)
        end_day = epoch_day(when)
        try:
            summary = summarize_transactions(
                data.customer_ids,
                data.days,
                data.values,
                observation_end=end_day,
                time_unit="weeks",
            )
        except DataError as exc:
            raise ModelFitError(f"cannot summarise the transactions: {exc}") from exc
        model = transaction_model_from_params(fit["model"], fit["params"])
        spend = SpendModel.from_json(fit["spend"])
        with np.errstate(all="ignore"):  # a NaN or inf is one customer's failure (finite())
            fields = transaction_fields(
                model,
                spend,
                summary.frequency,
                summary.recency,
                summary.T,
                summary.monetary_value,
                clv_months=settings.clv_months,
                discount_rate_monthly=settings.discount_rate_monthly,
            )
        return np.asarray(summary.customer_ids).astype(str), fields

    @staticmethod
    def _subscription_fields(
        fit: dict[str, Any], subs: Subscriptions, when: float, settings: ClvSettings
    ) -> ModelFields | None:
        if len(subs) == 0:
            return None
        model = ShiftedBetaGeometricModel.from_params(**fit["params"])
        with np.errstate(all="ignore"):  # a NaN or inf is one customer's failure (finite())
            return subscription_fields(
                model,
                subs,
                when,
                period_days=float(fit["periodDays"]),
                clv_months=settings.clv_months,
                discount_rate_monthly=settings.discount_rate_monthly,
            )


def model_revenue(clv: Any) -> Any:
    """The record's ``predictedRevenue`` under a model: its ``clv`` rounded to cents."""
    return np.round(np.asarray(clv, dtype=np.float64), 2)


@dataclass(frozen=True)
class _Placed:
    """Per customer (aligned with the fields), what the model's tiers give the record:
    ``predictedRevenue``, ``segment`` (None: no model segment) and ``clvPercentile``."""

    revenue: list[float]
    segment: list[str | None]
    percentile: list[float | None]

    @classmethod
    def of(cls, fields: ModelFields, tiers: ModelTiers) -> _Placed:
        """Vectorised over every customer of ``fields``."""
        names = np.array([s.value for s in SEGMENT_ORDER] + [None], dtype=object)
        codes = model_segment_codes(fields.probability_alive, fields.clv, tiers)
        percentile = clv_percentile(fields.clv, tiers)
        return cls(
            revenue=model_revenue(fields.clv).tolist(),
            segment=names[codes].tolist(),  # code -1 (not finite) -> the trailing None
            percentile=[p if np.isfinite(p) else None for p in percentile.tolist()],
        )


def _record(
    fields: ModelFields, i: int, model: str, when: float, placed: _Placed
) -> dict[str, Any]:
    """Customer ``i``'s stored fields: the model's, ``expectedNextPurchaseAt`` (``when``
    plus the median wait if alive; null for subscriptions and for a wait over
    :data:`_NEVER_DAYS`, a customer who practically never buys), and the record fields the
    model replaces or adds from its tiers (``placed``)."""
    days = fields.next_purchase_days
    wait = None if days is None else float(days[i])
    at = None if wait is None or wait > _NEVER_DAYS else iso_time(when + wait * DAY_SECONDS)
    return {
        **fields.record(i, model),
        "expectedNextPurchaseAt": at,
        "predictedRevenue": placed.revenue[i],
        "segment": placed.segment[i],
        "clvPercentile": placed.percentile[i],
    }


def _not_finite(fit: dict[str, Any], fields: ModelFields, i: int) -> str:
    """Why customer ``i`` has no model fields: which are not finite, under which fit."""
    return (
        f"the model fields {', '.join(fields.not_finite(i))} are not finite numbers under the "
        f"stored fit {_fit_id(fit)}: check the customer's transaction values, or refit with a "
        f"penalty (`nextbest clv fit --model {fit['model']} --penalizer 0.01`)"
    )


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    out = {name: doc.get(name) for name in MODEL_RECORD_FIELDS}
    # The record fields the model replaces (the RFM ones stay for a customer without data).
    for name in _REPLACED_FIELDS:
        if doc.get(name) is not None:
            out[name] = doc[name]
    return out
