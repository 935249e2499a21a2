"""Fit a tenant's probabilistic CLV model and store the parameters, versioned.

Fits are plugin documents in namespace :data:`FITS_NAMESPACE`: key ``<model>/v<version>``
(every version, kept) and key ``<model>`` (a copy of the latest), written in one transaction.
A fit document::

    {"model": "bgnbd", "version": 3, "fittedAt": ISO, "params": {...},
     "standardErrors": {...}, "logLikelihood": -9582.43, "customers": 2357,
     "repeatCustomers": 946, "timeUnit": "weeks",
     "dataSpan": {"start": "1997-01-01", "end": "1998-06-30", "transactions": 6919},
     "spend": {"model": "gammagamma", "params": {...}, ...},          # bgnbd, paretonbd
     "outcomes": ["conversion"],                                       # sbg: start/end outcomes
     "excludedCustomers": 0, "excluded": []}           # left out: unusable values or times

``bgbb`` to the same transactions as discrete opportunities of ``bgbbPeriodDays`` days
(:mod:`nextbest_clv.service.bgbb_fits`; ``timeUnit`` "periods of 7 days", ``periodDays``);
``bgnbd`` and ``paretonbd`` are fitted to the transactions (``transactionOutcomes``) up to the
end, summarised per customer in weeks; ``sbg`` to the subscriptions (``subscriptionStart/
EndOutcomes``) in billing periods of ``subscriptionPeriodDays``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from nextbest.store import Store
from nextbest_clv.core.estimators import (
    TRANSACTION_MODELS,
    check_fit,
    fit_spend_model,
    fit_transaction_model,
)
from nextbest_clv.core.models import DataError, FitError, ShiftedBetaGeometricModel
from nextbest_clv.core.models import summarize_transactions as _summarize
from nextbest_clv.core.subscriptions import subscriber_periods
from nextbest_clv.errors import (
    ClvInputError,
    ModelFitError,
    ModelNotFittedError,
    NoTransactionsError,
    UnknownModelError,
)
from nextbest_clv.service.bgbb_fits import fit_bgbb_document
from nextbest_clv.service.covariate_fits import covariate_section
from nextbest_clv.service.records import iso_time
from nextbest_clv.service.settings import ClvSettings
from nextbest_clv.service.tenant_data import (
    end_of_day,
    epoch_day,
    load_subscriptions,
    load_transactions,
)
from nextbest_clv.service.times import checked_epoch

__all__ = [
    "FITS_NAMESPACE",
    "FITTABLE_MODELS",
    "excluded_customers",
    "fit_tenant_model",
    "forget_mentions",
    "latest_fit",
    "list_fits",
    "require_fit",
]

FITS_NAMESPACE = "clv.fits"
_MAX_LISTED_EXCLUDED = 100
#: Models that are fitted (``rfm`` has no parameters).
FITTABLE_MODELS: tuple[str, ...] = (*TRANSACTION_MODELS, "bgbb", "sbg")


def check_model(model: str) -> str:
    """``model`` if it can be fitted.

    Raises:
        UnknownModelError: naming the models that can.
    """
    if model not in FITTABLE_MODELS:
        hint = " ('rfm' has no parameters to fit)" if model == "rfm" else ""
        raise UnknownModelError(
            f"unknown model {model!r}{hint}: fit one of {', '.join(FITTABLE_MODELS)}"
        )
    return model


def latest_fit(store: Store, tenant_id: str, model: str) -> dict[str, Any] | None:
    """The latest stored fit of ``model`` for the tenant, or None."""
    doc = store.get_document(FITS_NAMESPACE, tenant_id, check_model(model))
    return doc if isinstance(doc, dict) else None


def require_fit(store: Store, tenant_id: str, model: str) -> dict[str, Any]:
    """The latest fit of ``model``.

    Raises:
        ModelNotFittedError: the model was never fitted for this tenant.
    """
    doc = latest_fit(store, tenant_id, model)
    if doc is None:
        raise ModelNotFittedError(tenant_id, model)
    return doc


def list_fits(store: Store, tenant_id: str, model: str | None = None) -> list[dict[str, Any]]:
    """Every stored fit version (optionally of one model), newest first."""
    docs = store.get_documents(FITS_NAMESPACE, tenant_id)
    fits = [d for key, d in docs.items() if "/v" in key and (model is None or d["model"] == model)]
    return sorted(fits, key=lambda d: (d["fittedAt"], d["version"]), reverse=True)


def excluded_customers(rejected: Mapping[str, str]) -> dict[str, Any]:
    """The ``excludedCustomers`` count and the first 100 ``excluded`` customers with the reason,
    for a fit or back-test document (see :func:`fit_tenant_model`)."""
    listed = list(rejected.items())[:_MAX_LISTED_EXCLUDED]
    return {
        "excludedCustomers": len(rejected),
        "excluded": [{"customerId": c, "reason": r} for c, r in listed],
    }


def forget_mentions(store: Store, namespace: str, tenant_id: str, customer_id: str) -> int:
    """Remove the entries naming ``customer_id`` (``{"customerId": ..., ...}`` in any list)
    from the tenant's documents in ``namespace``: the ``excluded`` lists of fits and
    back-tests, the failures of the last scheduled batch. Counts stay (they name no one).
    Returns how many documents changed."""
    changed: dict[str, Any] = {}
    for key, doc in store.get_documents(namespace, tenant_id).items():
        kept = _without(doc, customer_id)
        if kept != doc:
            changed[key] = kept
    if changed:
        store.put_documents(namespace, tenant_id, changed)
    return len(changed)


def _without(value: Any, customer_id: str) -> Any:
    """``value`` without the list entries whose ``customerId`` is ``customer_id``."""
    if isinstance(value, dict):
        return {k: _without(v, customer_id) for k, v in value.items()}
    if isinstance(value, list):
        return [
            _without(item, customer_id)
            for item in value
            if not (isinstance(item, dict) and item.get("customerId") == customer_id)
        ]
    return value


def _finite_values(values: dict[str, float]) -> dict[str, float | None]:
    """JSON-safe copy: NaN/inf (e.g. a standard error of a singular Hessian) become null."""
    return {k: float(v) if np.isfinite(v) else None for k, v in values.items()}


def fit_tenant_model(
    store: Store,
    tenant_id: str,
    model: str,
    settings: ClvSettings,
    *,
    end: float | None = None,
    penalizer: float = 0.0,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Fit ``model`` to the tenant's data up to the end of the (UTC) day of ``end`` (epoch
    seconds; default now), store the fit as the next version and return its document.

    Customers with an event the store's rules refuse (a value beyond 1e12, a time outside the
    window: :func:`~nextbest_clv.service.tenant_data.unusable_events`) are left out of the fit
    and listed in the document (``excludedCustomers``, ``excluded``: at most 100 with the reason).

    Raises:
        UnknownModelError: not a fittable model.
        NoTransactionsError: no transactions (or subscriptions) up to ``end``.
        ModelFitError: the data cannot be fitted (e.g. nobody purchased twice).
        ClvInputError: another fit of this tenant and model is running, or ``end`` is outside
            the store's window of times.
    """
    check_model(model)
    end = checked_epoch(end, "end")
    now = clock()
    until = now if end is None else end
    lock = store.try_lock(f"clv-fit:{tenant_id}:{model}", ttl_seconds=600.0)
    if lock is None:
        raise ClvInputError(
            f"another fit of {model!r} for tenant {tenant_id!r} is running; retry when it ends"
        )
    with lock:
        if model == "sbg":
            doc = _fit_sbg(store, tenant_id, settings, until, penalizer)
        elif model == "bgbb":
            doc, rejected = fit_bgbb_document(store, tenant_id, settings, until, penalizer)
            doc = {**doc, **excluded_customers(rejected)}
        else:
            doc = _fit_transactions(store, tenant_id, model, settings, until, penalizer)
        previous = latest_fit(store, tenant_id, model)
        version = 1 if previous is None else int(previous["version"]) + 1
        doc = {"model": model, "version": version, "fittedAt": iso_time(now), **doc}
        store.put_documents(FITS_NAMESPACE, tenant_id, {f"{model}/v{version}": doc, model: doc})
    return doc


def _fit_transactions(
    store: Store,
    tenant_id: str,
    model: str,
    settings: ClvSettings,
    end: float,
    penalizer: float,
) -> dict[str, Any]:
    outcomes = settings.transaction_outcomes
    data = load_transactions(store, tenant_id, outcomes, end=end_of_day(end))
    if len(data) == 0:
        raise NoTransactionsError(
            f"tenant {tenant_id!r} has no transactions (outcomes {list(outcomes)}) up to "
            f"{iso_time(end)}: record or ingest some, or set transactionOutcomes"
        )
    end_day = epoch_day(end)
    try:
        summary = _summarize(
            data.customer_ids, data.days, data.values, observation_end=end_day, time_unit="weeks"
        )
    except DataError as exc:
        raise ModelFitError(f"cannot summarise tenant {tenant_id!r}'s transactions: {exc}") from exc
    fit = fit_transaction_model(
        model, summary.frequency, summary.recency, summary.T, penalizer=penalizer
    )
    spend = fit_spend_model(summary.frequency, summary.monetary_value, penalizer=penalizer)
    covariates: dict[str, Any] = {}
    if settings.covariates is not None:
        section, excluded = covariate_section(
            store, tenant_id, model, summary, settings.covariates, penalizer
        )
        covariates = {"covariates": {**section, **excluded_customers(excluded)}}
    return {
        "params": dict(fit.params),
        "standardErrors": _finite_values(fit.standard_errors),
        "logLikelihood": float(fit.log_likelihood),
        "customers": len(summary),
        "repeatCustomers": int(np.count_nonzero(summary.frequency > 0)),
        "timeUnit": "weeks",
        "dataSpan": {
            "start": str(data.days.min()),
            "end": str(end_day),
            "transactions": len(data),
        },
        "spend": spend.to_json(),
        "outcomes": list(outcomes),
        "penalizer": penalizer,
        **excluded_customers(data.rejected),
        **covariates,
    }


def _fit_sbg(
    store: Store, tenant_id: str, settings: ClvSettings, end: float, penalizer: float
) -> dict[str, Any]:
    starts, ends = settings.subscription_start_outcomes, settings.subscription_end_outcomes
    subs, rejected = load_subscriptions(store, tenant_id, starts, ends, end_of_day(end))
    if len(subs) == 0:
        raise NoTransactionsError(
            f"tenant {tenant_id!r} has no subscriptions (start outcomes {list(starts)}) up to "
            f"{iso_time(end)}: record them, or set subscriptionStartOutcomes"
        )
    periods, churned = subscriber_periods(subs, end, settings.subscription_period_days)
    try:
        fit = ShiftedBetaGeometricModel.fit_subscribers(periods, churned, penalizer=penalizer)
    except (FitError, DataError) as exc:
        raise ModelFitError(f"cannot fit sbg for tenant {tenant_id!r}: {exc}") from exc
    check_fit(
        "sbg",
        dict(fit.params),
        dict(fit.standard_errors),
        {"survival": fit.survival(np.arange(1.0, float(periods.max()) + 2.0))},
        penalizer,
    )
    return {
        "params": dict(fit.params),
        "standardErrors": _finite_values(fit.standard_errors),
        "logLikelihood": float(fit.log_likelihood),
        "customers": len(subs),
        "churned": int(churned.sum()),
        "timeUnit": f"periods of {settings.subscription_period_days:g} days",
        "periodDays": settings.subscription_period_days,
        "dataSpan": {
            "start": iso_time(float(subs.start.min())),
            "end": iso_time(end),
            "subscriptions": len(subs),
        },
        "outcomes": {"start": list(starts), "end": list(ends)},
        "penalizer": penalizer,
        **excluded_customers(rejected),
    }
