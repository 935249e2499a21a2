"""Back-tests of the discrete-time models on one calibration/holdout split (pure: arrays in).

BG/BB (:func:`bgbb_backtest`) is fitted to the calibration transactions as opportunities of
``period_days`` (:mod:`nextbest_clv.core.opportunities`) and scored like the transaction
models, per customer of the same cohort (first transaction up to the calibration end, sorted by
id), so its errors pair with theirs for the margin. It predicts opportunities with a
transaction, not transaction-days: the holdout covers the opportunities after the n complete by the
calibration end, an opportunity cut by the calibration or holdout end counting for the share of
its days inside the holdout (linear interpolation of the expectation between whole
opportunities), and the expected opportunities with a transaction among them are
turned into transaction-days by the calibration's ratio of repeat transaction-days to
opportunities with a transaction (1 when nobody buys twice in one period). Spend: expected
opportunities times the Gamma-Gamma value per opportunity. The weekly curve counts the
opportunities complete by the end of each holdout week.

sBG (:func:`sbg_backtest`) is fitted to the subscriptions as of the calibration end and
predicts, for the subscribers active then, the share still subscribed at each holdout period
boundary (S(completed periods) / S(periods completed at the calibration end) per subscriber,
averaged); the retention curve error is the RMSE and MAE of predicted minus actual share over
those boundaries. It is not comparable with the transaction models' per-customer RMSE, so it
is reported beside them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nextbest_clv.backtest.evaluate import (
    BacktestReport,
    WeeklyCurve,
    decile_table,
    error_stats,
)
from nextbest_clv.core.errors import ModelFitError
from nextbest_clv.core.estimators import check_fit, fit_spend_model
from nextbest_clv.core.models import (
    BetaGeoBetaBinomModel,
    DataError,
    FitError,
    ShiftedBetaGeometricModel,
    summarize_transactions,
)
from nextbest_clv.core.opportunities import summarize_opportunities
from nextbest_clv.core.subscriptions import DAY_SECONDS, Subscriptions, subscriber_periods

__all__ = ["RetentionBacktest", "bgbb_backtest", "sbg_backtest"]

FloatArray = NDArray[np.float64]
_DAY = np.timedelta64(1, "D")


def bgbb_backtest(
    customer_ids: ArrayLike,
    days: ArrayLike,
    values: ArrayLike,
    *,
    calibration_end: np.datetime64,
    holdout_end: np.datetime64,
    period_days: float,
    penalizer: float = 0.0,
) -> BacktestReport:
    """Back-test BG/BB (see the module doc); ``model`` "bgbb", ``extra`` holds
    ``periodDays`` and ``transactionsPerOpportunity``.

    Raises:
        ModelFitError: no calibration customer with a complete opportunity, or a failed fit.
    """
    ids = np.asarray(customer_ids).astype(str)
    day = np.asarray(days, dtype="datetime64[D]")
    val = np.asarray(values, dtype=np.float64)
    try:
        summary = summarize_transactions(
            ids,
            day,
            val,
            observation_end=holdout_end,
            calibration_end=calibration_end,
            time_unit="weeks",
        )
        cal = summarize_opportunities(
            ids, day, val, observation_end=calibration_end, period_days=period_days
        )
    except DataError as exc:
        raise ModelFitError(f"cannot summarise the transactions: {exc}") from exc
    x, tx, n = cal.frequency, cal.recency, cal.n_periods
    seen = n >= 1
    if not seen.any():
        raise ModelFitError(
            f"cannot fit bgbb: no customer has a complete opportunity of {period_days:g} days "
            "by the calibration end"
        )
    try:
        fit = BetaGeoBetaBinomModel.fit(x[seen], tx[seen], n[seen], penalizer=penalizer)
    except (FitError, DataError) as exc:
        raise ModelFitError(f"cannot fit bgbb: {exc}") from exc
    spend = fit_spend_model(x, cal.monetary_value, penalizer=penalizer)
    holdout_days = int((holdout_end - calibration_end) / _DAY)
    n_weeks = math.ceil(holdout_days / 7)
    # Opportunities complete by the end of each holdout week (last row: the holdout end).
    week_end = np.minimum(np.arange(1, n_weeks + 1) * 7, holdout_days)
    first_day = _first_days(ids, day, cal.customer_ids)
    cal_day = calibration_end.astype(np.int64)

    # Opportunities elapsed (continuous) by the end of a day, on each customer's grid; the
    # periods cut by the calibration or holdout end count for their share of days inside.
    def elapsed(day_number: Any) -> FloatArray:
        return np.asarray((day_number - first_day + 1) / period_days - 1.0, dtype=np.float64)

    at_cal = np.maximum(elapsed(cal_day) - n, 0.0)[None, :]
    at_week = np.maximum(elapsed(cal_day + week_end[:, None]) - n, 0.0)
    expected = _interpolated(fit, x, tx, n, at_week) - _interpolated(fit, x, tx, n, at_cal)
    ratio = _transactions_per_opportunity(ids, day, calibration_end, first_day, cal, period_days)
    predicted = expected[-1] * ratio if n_weeks else np.zeros(x.size)
    actual = summary.frequency_holdout
    assert actual is not None and summary.monetary_value_holdout is not None
    per_opportunity = spend.expected_value(x, cal.monetary_value)
    predicted_spend = (expected[-1] if n_weeks else np.zeros(x.size)) * per_opportunity
    actual_spend = actual * summary.monetary_value_holdout
    check_fit(
        "bgbb",
        dict(fit.params),
        dict(fit.standard_errors),
        {"predicted holdout transactions": predicted, "predicted holdout spend": predicted_spend},
        penalizer,
    )
    weekly = WeeklyCurve(
        weeks=list(range(1, n_weeks + 1)),
        predicted=[float(v) for v in expected.sum(axis=1) * ratio],
        actual=[
            float(v)
            for v in _weekly_actual(
                ids, day, cal.customer_ids, calibration_end, holdout_days, n_weeks
            )
        ],
    )
    return BacktestReport(
        model="bgbb",
        calibration_start=str(day.min()),
        calibration_end=str(calibration_end),
        holdout_end=str(holdout_end),
        holdout_weeks=holdout_days / 7.0,
        customers=len(cal),
        repeat_customers=int(np.count_nonzero(x > 0)),
        params=dict(fit.params),
        log_likelihood=float(fit.log_likelihood),
        spend=spend.to_json(),
        transactions=error_stats(predicted, actual),
        revenue=error_stats(predicted_spend, actual_spend),
        deciles=decile_table(predicted, actual, predicted_spend, actual_spend),
        weekly=weekly,
        extra={"periodDays": period_days, "transactionsPerOpportunity": ratio},
        transaction_errors=np.asarray(predicted - actual, dtype=np.float64),
    )


def _first_days(ids: NDArray[np.str_], day: NDArray[Any], cohort: NDArray[np.str_]) -> FloatArray:
    """The first transaction day (epoch days) of each customer of ``cohort`` (sorted ids)."""
    where = np.searchsorted(cohort, ids)
    inside = (where < cohort.size) & (cohort[np.minimum(where, cohort.size - 1)] == ids)
    first = np.full(cohort.size, np.inf)
    np.minimum.at(first, where[inside], day[inside].astype(np.int64).astype(np.float64))
    return first


def _interpolated(
    fit: BetaGeoBetaBinomModel, x: FloatArray, tx: FloatArray, n: FloatArray, ahead: FloatArray
) -> FloatArray:
    """E[opportunities with a transaction among the next ``ahead``], linear between whole
    opportunities (a fraction of an opportunity's days, its share of the expectation)."""
    whole = np.floor(ahead + 1e-9)
    lower = _expected_opportunities(fit, x, tx, n, whole)
    upper = _expected_opportunities(fit, x, tx, n, whole + 1.0)
    return lower + np.clip(ahead - whole, 0.0, 1.0) * (upper - lower)


def _expected_opportunities(
    fit: BetaGeoBetaBinomModel, x: FloatArray, tx: FloatArray, n: FloatArray, ahead: FloatArray
) -> FloatArray:
    """E[opportunities with a transaction among the next ``ahead``] (rows of horizons against
    customers); customers with n = 0 as new customers (E[X(m)])."""
    out = np.zeros(ahead.shape)
    seen = n >= 1
    if seen.any():
        out[:, seen] = fit.conditional_expected_purchases(
            ahead[:, seen], x[seen], tx[seen], n[seen]
        )
    if (~seen).any():
        out[:, ~seen] = fit.expected_purchases(ahead[:, ~seen])
    return out


def _transactions_per_opportunity(
    ids: NDArray[np.str_],
    day: NDArray[Any],
    calibration_end: np.datetime64,
    first_day: FloatArray,
    cal: Any,
    period_days: float,
) -> float:
    """Repeat transaction-days per opportunity with a transaction in the calibration (1 when
    there is none)."""
    where = np.searchsorted(cal.customer_ids, ids)
    inside = (day <= calibration_end) & (where < len(cal))
    inside &= cal.customer_ids[np.minimum(where, len(cal) - 1)] == ids
    who, d = where[inside], day[inside].astype(np.int64)
    period = np.floor((d - first_day[who]) / period_days + 1e-9)
    counted = (period >= 1) & (period <= cal.n_periods[who])
    distinct_days = np.unique(np.stack([who[counted], d[counted]], axis=1), axis=0).shape[0]
    opportunities = float(cal.frequency.sum())
    return distinct_days / opportunities if opportunities > 0 else 1.0


def _weekly_actual(
    ids: NDArray[np.str_],
    day: NDArray[Any],
    cohort: NDArray[np.str_],
    calibration_end: np.datetime64,
    holdout_days: int,
    n_weeks: int,
) -> NDArray[np.int64]:
    """Cumulative distinct (customer, day) holdout transactions of the cohort per week."""
    hold = np.isin(ids, cohort) & (day > calibration_end)
    hold &= day <= calibration_end + np.timedelta64(holdout_days, "D")
    codes = np.unique(ids[hold], return_inverse=True)[1].reshape(-1).astype(np.int64)
    offsets = ((day[hold] - calibration_end) / _DAY).astype(np.int64)
    distinct = np.unique(codes * (holdout_days + 1) + offsets) % (holdout_days + 1)
    return np.cumsum(np.bincount((distinct - 1) // 7, minlength=n_weeks)[:n_weeks])


@dataclass(frozen=True)
class RetentionBacktest:
    """An sBG back-test: the fit, and predicted vs actual share of the calibration-end
    subscribers still subscribed at each holdout period boundary."""

    params: dict[str, float]
    log_likelihood: float
    subscribers: int
    active_at_calibration_end: int
    periods: list[int]
    predicted: list[float]
    actual: list[float]
    rmse: float
    mae: float

    def to_json(self) -> dict[str, Any]:
        """camelCase JSON (the ``retention`` curve and its error)."""
        return {
            "model": "sbg",
            "params": dict(self.params),
            "logLikelihood": self.log_likelihood,
            "subscribers": self.subscribers,
            "activeAtCalibrationEnd": self.active_at_calibration_end,
            "retention": {
                "periods": self.periods,
                "predicted": self.predicted,
                "actual": self.actual,
                "rmse": self.rmse,
                "mae": self.mae,
            },
        }


def sbg_backtest(
    at_calibration_end: Subscriptions,
    at_holdout_end: Subscriptions,
    *,
    calibration_end: float,
    holdout_end: float,
    period_days: float,
    penalizer: float = 0.0,
) -> RetentionBacktest:
    """Back-test sBG (see the module doc); the subscriptions as of the calibration end and as of
    the holdout end (epoch seconds), boundaries every ``period_days`` after the calibration end.

    Raises:
        ModelFitError: no subscriber, no one active at the calibration end, a holdout shorter
            than one period, or a failed fit.
    """
    if len(at_calibration_end) == 0:
        raise ModelFitError("cannot back-test sbg: no subscription by the calibration end")
    periods, churned = subscriber_periods(at_calibration_end, calibration_end, period_days)
    try:
        fit = ShiftedBetaGeometricModel.fit_subscribers(periods, churned, penalizer=penalizer)
    except (FitError, DataError) as exc:
        raise ModelFitError(f"cannot fit sbg: {exc}") from exc
    active = ~at_calibration_end.churned
    if not active.any():
        raise ModelFitError("cannot back-test sbg: nobody is subscribed at the calibration end")
    step = period_days * DAY_SECONDS
    checkpoints = calibration_end + step * np.arange(
        1, math.floor((holdout_end - calibration_end) / step + 1e-9) + 1
    )
    if checkpoints.size == 0:
        raise ModelFitError(
            f"cannot back-test sbg: the holdout is shorter than one period ({period_days:g} days)"
        )
    start = at_calibration_end.start[active]
    ids = at_calibration_end.customer_ids[active]
    # The same subscription at the holdout end (a later start is a new one: it had ended).
    later = {
        c: (s, e)
        for c, s, e in zip(
            at_holdout_end.customer_ids.tolist(),
            at_holdout_end.start.tolist(),
            at_holdout_end.end.tolist(),
            strict=True,
        )
    }
    end = np.array(
        [
            later[c][1] if c in later and later[c][0] == s else calibration_end
            for c, s in zip(ids.tolist(), start.tolist(), strict=True)
        ],
        dtype=np.float64,
    )
    now = np.floor((calibration_end - start) / step)
    completed = np.floor((checkpoints[:, None] - start[None, :]) / step)
    predicted = (fit.survival(completed) / fit.survival(now)[None, :]).mean(axis=1)
    actual = (~(end[None, :] <= checkpoints[:, None])).mean(axis=1)
    error = predicted - actual
    return RetentionBacktest(
        params=dict(fit.params),
        log_likelihood=float(fit.log_likelihood),
        subscribers=len(at_calibration_end),
        active_at_calibration_end=int(active.sum()),
        periods=list(range(1, checkpoints.size + 1)),
        predicted=[float(v) for v in predicted],
        actual=[float(v) for v in actual],
        rmse=float(math.sqrt(np.mean(error * error))),
        mae=float(np.mean(np.abs(error))),
    )
