"""Back-tests of a tenant's data: run, store (with their time), list, and compare models.

Runs are plugin documents in namespace :data:`BACKTESTS_NAMESPACE`, key
``<runAt>/<model>/<random hex>``; each is the report (:meth:`BacktestReport.to_json`) plus ``id``,
``runAt``, ``tenantId``, ``outcomes`` (the transaction outcomes it used), ``penalizer`` and the
customers left out for unusable values or times (``excludedCustomers``, ``excluded``).

:func:`compare_models` back-tests every applicable model on one split: the transaction models
and BG/BB (:data:`COMPARED_MODELS`, BG/BB in opportunities of ``bgbbPeriodDays``:
:mod:`nextbest_clv.backtest.discrete`) are scored on holdout transactions and the one with the
lowest per-customer RMSE is recommended (ties: lower MAE, then the order of
:data:`COMPARED_MODELS`); a tenant with subscriptions also gets sBG's retention-curve back-test
(``subscription``), which is not comparable with the transaction RMSE and is reported beside it
(recommended only when the tenant has no transactions). Models that do not apply are listed in
``notApplicable`` with the reason. Without a calibration end, the split is the middle day
between the first and the last transaction day (for subscriptions, the first and last
subscription event).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from nextbest.store import Store
from nextbest_clv.backtest.discrete import bgbb_backtest, sbg_backtest
from nextbest_clv.backtest.evaluate import FloatArray, backtest, rmse_margin
from nextbest_clv.core.estimators import TRANSACTION_MODELS
from nextbest_clv.core.subscriptions import DAY_SECONDS
from nextbest_clv.errors import ModelFitError, NoTransactionsError
from nextbest_clv.service.fits import excluded_customers
from nextbest_clv.service.records import iso_time
from nextbest_clv.service.settings import ClvSettings
from nextbest_clv.service.tenant_data import (
    Transactions,
    end_of_day,
    epoch_day,
    load_subscriptions,
    load_transactions,
)
from nextbest_clv.service.times import checked_epoch

__all__ = [
    "BACKTESTS_NAMESPACE",
    "compare_models",
    "default_calibration_end",
    "list_backtests",
    "run_backtest",
]

BACKTESTS_NAMESPACE = "clv.backtests"
#: The models :func:`compare_models` scores on holdout transactions, in tie-break order.
COMPARED_MODELS: tuple[str, ...] = (*TRANSACTION_MODELS, "bgbb")


def default_calibration_end(data: Transactions) -> np.datetime64:
    """The middle day between the first and the last transaction day (rounded down)."""
    first, last = data.days.min(), data.days.max()
    return first + (last - first) // 2


def _load(
    store: Store, tenant_id: str, settings: ClvSettings, holdout_end: float | None
) -> Transactions:
    until = None if holdout_end is None else end_of_day(holdout_end)
    data = load_transactions(store, tenant_id, settings.transaction_outcomes, end=until)
    if len(data) == 0:
        raise NoTransactionsError(
            f"tenant {tenant_id!r} has no transactions (outcomes "
            f"{list(settings.transaction_outcomes)}) to back-test on"
        )
    return data


def _run(
    store: Store,
    tenant_id: str,
    data: Transactions,
    model: str,
    settings: ClvSettings,
    calibration_end: np.datetime64,
    holdout_end: np.datetime64 | None,
    penalizer: float,
    now: float,
    store_result: bool,
) -> tuple[dict[str, Any], FloatArray]:
    if model == "bgbb":
        result = bgbb_backtest(
            data.customer_ids,
            data.days,
            data.values,
            calibration_end=calibration_end,
            holdout_end=data.days.max() if holdout_end is None else holdout_end,
            period_days=settings.bgbb_period_days,
            penalizer=penalizer,
        )
    else:
        result = backtest(
            data.customer_ids,
            data.days,
            data.values,
            calibration_end=calibration_end,
            holdout_end=holdout_end,
            model=model,
            penalizer=penalizer,
        )
    report = result.to_json()
    run_at = iso_time(now)
    key = f"{run_at}/{model}/{uuid.uuid4().hex[:8]}"
    doc = {
        "id": key,
        "runAt": run_at,
        "tenantId": tenant_id,
        "outcomes": list(settings.transaction_outcomes),
        "penalizer": penalizer,
        **report,
        **excluded_customers(data.rejected),
    }
    if store_result:
        store.put_documents(BACKTESTS_NAMESPACE, tenant_id, {key: doc})
    return doc, result.transaction_errors


def run_backtest(
    store: Store,
    tenant_id: str,
    model: str,
    settings: ClvSettings,
    *,
    calibration_end: float | None = None,
    holdout_end: float | None = None,
    penalizer: float = 0.0,
    clock: Callable[[], float] = time.time,
    store_result: bool = True,
) -> dict[str, Any]:
    """Back-test ``model`` on the tenant's transactions: calibration up to the end of the day
    of ``calibration_end`` (epoch seconds; default :func:`default_calibration_end`), holdout to
    the end of the day of ``holdout_end`` (default the last transaction day). Stores and
    returns the run.

    Customers with an event the store's rules refuse are left out and listed
    (``excludedCustomers``, ``excluded``, as in a fit).

    Raises:
        NoTransactionsError: the tenant has no transactions.
        ModelFitError: bad periods or a fit that fails.
        UnknownModelError: not a transaction model.
        ClvInputError: a time outside the store's window of times.
    """
    calibration_end = checked_epoch(calibration_end, "calibrationEnd")
    holdout_end = checked_epoch(holdout_end, "holdoutEnd")
    data = _load(store, tenant_id, settings, holdout_end)
    cal = default_calibration_end(data) if calibration_end is None else epoch_day(calibration_end)
    end = None if holdout_end is None else epoch_day(holdout_end)
    doc, _ = _run(
        store, tenant_id, data, model, settings, cal, end, penalizer, clock(), store_result
    )
    return doc


def compare_models(
    store: Store,
    tenant_id: str,
    settings: ClvSettings,
    *,
    calibration_end: float | None = None,
    holdout_end: float | None = None,
    penalizer: float = 0.0,
    clock: Callable[[], float] = time.time,
    store_result: bool = True,
) -> dict[str, Any]:
    """Back-test every applicable model on one split and recommend one (see the module doc).

    Returns ``{"recommended", "criterion", "margin", "calibrationEnd", "holdoutEnd", "runs":
    [...], "failed": [{"model", "reason"}], "notApplicable": [{"model", "reason"}],
    "subscription": sBG back-test or None}``; ``runs`` are the stored back-tests, best first;
    ``margin`` (None with fewer than two runs) compares the best with the second best:
    ``{"second", "rmseDifference", "standardError", "withinNoise", "noise"}`` (see
    :func:`~nextbest_clv.backtest.evaluate.rmse_margin`).

    Raises:
        NoTransactionsError: the tenant has neither transactions nor subscriptions.
        ModelFitError: no model could be back-tested (the reasons are in the message).
        ClvInputError: a time outside the store's window of times.
    """
    calibration_end = checked_epoch(calibration_end, "calibrationEnd")
    holdout_end = checked_epoch(holdout_end, "holdoutEnd")
    now = clock()
    until = None if holdout_end is None else end_of_day(holdout_end)
    data = load_transactions(store, tenant_id, settings.transaction_outcomes, end=until)
    subscription, not_applicable = _subscription_comparison(
        store, tenant_id, settings, data, calibration_end, holdout_end, penalizer, now
    )
    runs: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    errors: dict[str, FloatArray] = {}
    if len(data) == 0:
        reason = (
            f"no transactions (outcomes {list(settings.transaction_outcomes)}); set "
            "transactionOutcomes if purchases are recorded under another outcome"
        )
        not_applicable += [{"model": m, "reason": reason} for m in COMPARED_MODELS]
        if subscription is None:
            raise NoTransactionsError(
                f"tenant {tenant_id!r} has no transactions (outcomes "
                f"{list(settings.transaction_outcomes)}) nor subscriptions to back-test on"
            )
        if "retention" not in subscription:
            raise ModelFitError(
                f"no model could be back-tested on tenant {tenant_id!r}: sbg: "
                f"{subscription['failed']}"
            )
        return {
            "recommended": "sbg",
            "criterion": "the only applicable model (subscriptions)",
            "margin": None,
            "calibrationEnd": subscription["calibrationEnd"],
            "holdoutEnd": subscription["holdoutEnd"],
            "runs": [],
            "failed": [],
            "notApplicable": not_applicable,
            "subscription": subscription,
        }
    cal = default_calibration_end(data) if calibration_end is None else epoch_day(calibration_end)
    end = None if holdout_end is None else epoch_day(holdout_end)
    for model in COMPARED_MODELS:
        try:
            doc, errors[model] = _run(
                store, tenant_id, data, model, settings, cal, end, penalizer, now, False
            )
            runs.append(doc)
        except ModelFitError as exc:
            failed.append({"model": model, "reason": str(exc)})
    if not runs:
        reasons = "; ".join(f"{f['model']}: {f['reason']}" for f in failed)
        raise ModelFitError(f"no model could be back-tested on tenant {tenant_id!r}: {reasons}")
    order = {name: i for i, name in enumerate(COMPARED_MODELS)}
    runs.sort(
        key=lambda r: (r["transactions"]["rmse"], r["transactions"]["mae"], order[r["model"]])
    )
    if store_result:
        store.put_documents(BACKTESTS_NAMESPACE, tenant_id, {r["id"]: r for r in runs})
    margin = (
        {
            "second": runs[1]["model"],
            **rmse_margin(errors[runs[0]["model"]], errors[runs[1]["model"]]),
        }
        if len(runs) > 1 and errors[runs[0]["model"]].size > 1
        else None
    )
    return {
        "recommended": runs[0]["model"],
        "criterion": "lowest per-customer RMSE of holdout repeat transactions",
        "margin": margin,
        "calibrationEnd": runs[0]["calibrationEnd"],
        "holdoutEnd": runs[0]["holdoutEnd"],
        "runs": runs,
        "failed": failed,
        "notApplicable": not_applicable,
        "subscription": subscription,
    }


def _subscription_comparison(
    store: Store,
    tenant_id: str,
    settings: ClvSettings,
    data: Transactions,
    calibration_end: float | None,
    holdout_end: float | None,
    penalizer: float,
    now: float,
) -> tuple[dict[str, Any] | None, list[dict[str, str]]]:
    """The sBG back-test of a tenant with subscriptions (None and a not-applicable entry
    without; ``{"model": "sbg", "failed": reason}`` when it cannot be back-tested)."""
    starts, ends = settings.subscription_start_outcomes, settings.subscription_end_outcomes
    last = now if holdout_end is None else end_of_day(holdout_end)
    subs, _ = load_subscriptions(store, tenant_id, starts, ends, last)
    if len(subs) == 0:
        reason = (
            f"no subscriptions (start outcomes {list(starts)}): sBG models subscribers; set "
            "subscriptionStartOutcomes/subscriptionEndOutcomes if the tenant has them"
        )
        return None, [{"model": "sbg", "reason": reason}]
    event_times = np.concatenate([subs.start, subs.end[np.isfinite(subs.end)]])
    if holdout_end is None:
        last_day = float(event_times.max())
        if len(data):
            last_day = max(last_day, float(data.days.max().astype(np.int64)) * DAY_SECONDS)
        last = end_of_day(last_day)
    if calibration_end is None:
        first = float(event_times.min())
        cal = end_of_day(first + (last - first) / 2)
    else:
        cal = end_of_day(calibration_end)
    at_cal, _ = load_subscriptions(store, tenant_id, starts, ends, cal)
    period = settings.subscription_period_days
    base = {"calibrationEnd": iso_time(cal), "holdoutEnd": iso_time(last), "periodDays": period}
    try:
        result = sbg_backtest(
            at_cal,
            subs,
            calibration_end=cal,
            holdout_end=last,
            period_days=period,
            penalizer=penalizer,
        )
    except ModelFitError as exc:
        return {"model": "sbg", **base, "failed": str(exc)}, []
    return {**result.to_json(), **base}, []


def list_backtests(
    store: Store, tenant_id: str, model: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Stored back-tests of the tenant (optionally of one model), newest first."""
    docs = store.get_documents(BACKTESTS_NAMESPACE, tenant_id)
    runs = [d for d in docs.values() if model is None or d.get("model") == model]
    runs.sort(key=lambda d: (d["runAt"], d["id"]), reverse=True)
    return runs if limit is None else runs[:limit]
