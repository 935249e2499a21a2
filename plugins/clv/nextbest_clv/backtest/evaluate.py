"""Back-testing a transaction model: fit on a calibration period, predict the holdout, compare.

Pure: a transaction log (customer ids, dates, values) in, a :class:`BacktestReport` out.

- The customers are those whose first transaction falls in the calibration period; times are
  in weeks, transactions are transaction-days (several on one day count as one, values summed),
  as in :func:`nextbest_clv.core.models.summarize_transactions`.
- Predicted transactions of a customer: ``E[Y(h) | x, t_x, T]`` with h the holdout length;
  predicted spend: that times the spend model's expected value per transaction
  (:mod:`nextbest_clv.core.estimators`). Actual: the customer's holdout transaction-days and the sum
  of their values.
- Errors per customer (predicted - actual): MAE, RMSE and bias (mean error; > 0 means the model
  over-predicts), for transactions and for spend.
- Deciles: customers sorted by predicted holdout transactions (decile 1 = highest, ties in
  customer order), split into ten groups of (nearly) equal size; per decile the predicted and
  actual totals and means.
- Weekly curve: cumulative predicted and actual repeat transactions of the cohort at the end of
  each holdout week (the last week may be partial).
- Tracking curve (``tracking``): the same across calibration and holdout, from the first
  transaction day: expected cumulative repeat transactions of the cohort by week (each customer
  counted from their first transaction, ``fit_quality.tracking_curve``) against the actual
  ones, with the weekly increments (Fader, Hardie & Lee 2005, figure 3).
- Calibration histogram (``calibrationHistogram``): customers with 0..6 and 7+ repeat
  transactions in calibration, actual against expected (``calibration_histogram``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nextbest_clv.core.errors import ModelFitError
from nextbest_clv.core.estimators import (
    TransactionFit,
    check_fit,
    fit_spend_model,
    fit_transaction_model,
    prediction_T,
)
from nextbest_clv.core.models import DataError, summarize_transactions
from nextbest_clv.core.models.fit_quality import calibration_histogram, tracking_curve

__all__ = [
    "BacktestReport",
    "DecileRow",
    "ErrorStats",
    "WeeklyCurve",
    "backtest",
    "decile_table",
    "error_stats",
    "rmse_margin",
]

FloatArray = NDArray[np.float64]
_DAY = np.timedelta64(1, "D")


@dataclass(frozen=True)
class ErrorStats:
    """Predicted vs actual totals and per-customer errors (error = predicted - actual)."""

    predicted: float
    actual: float
    mae: float
    rmse: float
    bias: float


@dataclass(frozen=True)
class DecileRow:
    """One decile of customers ranked by predicted holdout transactions (1 = highest)."""

    decile: int
    customers: int
    predicted: float
    actual: float
    predicted_mean: float
    actual_mean: float
    predicted_spend: float
    actual_spend: float


@dataclass(frozen=True)
class WeeklyCurve:
    """Cumulative repeat transactions at the end of each holdout week (``weeks`` = 1, 2, ...)."""

    weeks: list[int]
    predicted: list[float]
    actual: list[float]


@dataclass(frozen=True)
class BacktestReport:
    """The result of one back-test (see the module doc); ``to_json`` gives camelCase JSON."""

    model: str
    calibration_start: str
    calibration_end: str
    holdout_end: str
    holdout_weeks: float
    customers: int
    repeat_customers: int
    params: dict[str, float]
    log_likelihood: float
    spend: dict[str, Any]
    transactions: ErrorStats
    revenue: ErrorStats
    deciles: list[DecileRow]
    weekly: WeeklyCurve
    tracking: dict[str, Any] = field(default_factory=dict)
    calibration_histogram: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    #: Per-customer holdout transaction errors (predicted - actual), in the summary's customer
    #: order (the same for every model on one split); not part of the JSON.
    transaction_errors: FloatArray = field(
        default_factory=lambda: np.zeros(0), repr=False, compare=False
    )

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON object (camelCase keys)."""
        return {
            "model": self.model,
            "calibrationStart": self.calibration_start,
            "calibrationEnd": self.calibration_end,
            "holdoutEnd": self.holdout_end,
            "holdoutWeeks": self.holdout_weeks,
            "customers": self.customers,
            "repeatCustomers": self.repeat_customers,
            "params": dict(self.params),
            "logLikelihood": self.log_likelihood,
            "spendModel": dict(self.spend),
            "transactions": asdict(self.transactions),
            "revenue": asdict(self.revenue),
            "deciles": [_camel(asdict(row)) for row in self.deciles],
            "weekly": asdict(self.weekly),
            "tracking": dict(self.tracking),
            "calibrationHistogram": dict(self.calibration_histogram),
            **self.extra,
        }


def error_stats(predicted: ArrayLike, actual: ArrayLike) -> ErrorStats:
    """Totals, MAE, RMSE and bias of per-customer predictions."""
    p = np.asarray(predicted, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if p.shape != a.shape or p.size == 0:
        raise DataError(
            f"predicted and actual must be non-empty and of one shape, got {p.shape}, {a.shape}"
        )
    err = p - a
    return ErrorStats(
        predicted=float(p.sum()),
        actual=float(a.sum()),
        mae=float(np.mean(np.abs(err))),
        rmse=float(math.sqrt(np.mean(err * err))),
        bias=float(np.mean(err)),
    )


#: A margin between two models' RMSEs below this many standard errors is within noise.
NOISE_STANDARD_ERRORS = 2.0


def rmse_margin(best_errors: ArrayLike, second_errors: ArrayLike) -> dict[str, Any]:
    """How far apart two models' per-customer RMSEs are, relative to sampling noise.

    The customers are a sample; the difference D = RMSE_2 - RMSE_1 of two models scored on the
    same customers has a standard error from the paired squared errors (delta method): with
    m_k = mean(e_k^2), D = sqrt(m_2) - sqrt(m_1) and Var D ~ g' S g / n, g = (-1/(2 sqrt m_1),
    1/(2 sqrt m_2)), S the covariance of (e_1^2, e_2^2) across customers. The margin is
    "within noise" when D < 2 standard errors (about a 95% two-sided test of no difference).
    """
    e1 = np.asarray(best_errors, dtype=np.float64)
    e2 = np.asarray(second_errors, dtype=np.float64)
    if e1.shape != e2.shape or e1.ndim != 1 or e1.size < 2:
        raise ValueError("need the two models' errors on the same customers (at least two)")
    sq = np.stack([e1 * e1, e2 * e2])
    m1, m2 = sq.mean(axis=1)
    rmse1, rmse2 = math.sqrt(m1), math.sqrt(m2)
    if rmse1 == 0 or rmse2 == 0:
        se = 0.0
    else:
        g = np.array([-0.5 / rmse1, 0.5 / rmse2])
        se = float(math.sqrt(max(float(g @ np.cov(sq) @ g), 0.0) / e1.size))
    difference = rmse2 - rmse1
    return {
        "rmseDifference": difference,
        "standardError": se,
        "withinNoise": bool(difference < NOISE_STANDARD_ERRORS * se),
        "noise": (
            f"{NOISE_STANDARD_ERRORS:g} standard errors of the RMSE difference (paired per-"
            "customer squared errors, delta method)"
        ),
    }


def decile_table(
    predicted: ArrayLike,
    actual: ArrayLike,
    predicted_spend: ArrayLike | None = None,
    actual_spend: ArrayLike | None = None,
    groups: int = 10,
) -> list[DecileRow]:
    """Customers ranked by ``predicted`` (highest first, stable), in ``groups`` groups of
    (nearly) equal size (``numpy.array_split``; fewer groups when there are fewer customers)."""
    p = np.asarray(predicted, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    ps = np.zeros_like(p) if predicted_spend is None else np.asarray(predicted_spend, float)
    as_ = np.zeros_like(a) if actual_spend is None else np.asarray(actual_spend, float)
    order = np.argsort(-p, kind="stable")
    rows = []
    for i, idx in enumerate(np.array_split(order, min(groups, p.size)), 1):
        rows.append(
            DecileRow(
                decile=i,
                customers=int(idx.size),
                predicted=float(p[idx].sum()),
                actual=float(a[idx].sum()),
                predicted_mean=float(p[idx].mean()),
                actual_mean=float(a[idx].mean()),
                predicted_spend=float(ps[idx].sum()),
                actual_spend=float(as_[idx].sum()),
            )
        )
    return rows


def backtest(
    customer_ids: ArrayLike,
    dates: ArrayLike,
    values: ArrayLike | None,
    *,
    calibration_end: ArrayLike,
    holdout_end: ArrayLike | None = None,
    model: str = "bgnbd",
    penalizer: float = 0.0,
) -> BacktestReport:
    """Fit ``model`` (``bgnbd`` or ``paretonbd``, with a spend model) on the transactions up to
    ``calibration_end`` (inclusive) and compare its predictions with the transactions after it,
    up to ``holdout_end`` (inclusive; default the last transaction day).

    Raises:
        ModelFitError: invalid periods, no customer in the calibration period, or a fit that
            fails (e.g. nobody purchased twice in the calibration period) or is degenerate
            (non-finite parameters, standard errors or predictions).
        UnknownModelError: ``model`` is not a transaction model.
    """
    ids = np.asarray(customer_ids)
    days = _days(dates)
    if ids.shape != days.shape or ids.ndim != 1 or ids.size == 0:
        raise ModelFitError(
            f"customer_ids and dates must be non-empty 1-d arrays of one length, got "
            f"{ids.shape} and {days.shape}"
        )
    vals = np.zeros(ids.size) if values is None else np.asarray(values, dtype=np.float64)
    cal_end = _one_day(calibration_end, "calibration_end")
    end = days.max() if holdout_end is None else _one_day(holdout_end, "holdout_end")
    start = days.min()
    if not start <= cal_end < end:
        raise ModelFitError(
            f"need first transaction day ({start}) <= calibration end ({cal_end}) < holdout "
            f"end ({end}): there must be calibration data and a holdout period"
        )
    try:
        summary = summarize_transactions(
            ids, days, vals, observation_end=end, calibration_end=cal_end, time_unit="weeks"
        )
    except DataError as exc:
        raise ModelFitError(f"cannot summarise the transactions: {exc}") from exc
    assert summary.frequency_holdout is not None and summary.monetary_value_holdout is not None
    assert summary.duration_holdout is not None
    x, tx, big_t = summary.frequency, summary.recency, prediction_T(summary.T)
    fit = fit_transaction_model(model, x, tx, big_t, penalizer=penalizer)
    spend = fit_spend_model(x, summary.monetary_value, penalizer=penalizer)

    horizon = summary.duration_holdout
    predicted = fit.conditional_expected_purchases(horizon, x, tx, big_t)
    actual = summary.frequency_holdout
    per_transaction = spend.expected_value(x, summary.monetary_value)
    predicted_spend = predicted * per_transaction
    # The fit itself was checked by fit_transaction_model; these are the holdout predictions
    # (including customers first seen at the calibration end).
    check_fit(
        model,
        dict(fit.params),
        {},
        {"predicted holdout transactions": predicted, "predicted holdout spend": predicted_spend},
        penalizer,
    )
    actual_spend = actual * summary.monetary_value_holdout
    weekly = _weekly_curve(fit, summary, ids, days, cal_end, end)
    tracking = _tracking(fit, summary, ids, days, start, cal_end, end)
    histogram = calibration_histogram(fit, x, big_t, max_count=7).to_dict()
    return BacktestReport(
        model=model,
        calibration_start=str(start),
        calibration_end=str(cal_end),
        holdout_end=str(end),
        holdout_weeks=float(horizon),
        customers=len(summary),
        repeat_customers=int(np.count_nonzero(x > 0)),
        params=dict(fit.params),
        log_likelihood=float(fit.log_likelihood),
        spend=spend.to_json(),
        transactions=error_stats(predicted, actual),
        revenue=error_stats(predicted_spend, actual_spend),
        deciles=decile_table(predicted, actual, predicted_spend, actual_spend),
        weekly=weekly,
        tracking=tracking,
        calibration_histogram=histogram,
        transaction_errors=np.asarray(predicted - actual, dtype=np.float64),
    )


def _weekly_curve(
    fit: TransactionFit,
    summary: Any,
    ids: NDArray[Any],
    days: NDArray[np.datetime64],
    cal_end: np.datetime64,
    end: np.datetime64,
) -> WeeklyCurve:
    holdout_days = int((end - cal_end) / _DAY)
    n_weeks = math.ceil(holdout_days / 7)
    week_days = np.minimum(np.arange(1, n_weeks + 1) * 7, holdout_days)
    horizons = (week_days / 7.0)[:, None]
    expected = fit.conditional_expected_purchases(
        horizons, summary.frequency, summary.recency, prediction_T(summary.T)
    )
    predicted = np.asarray(expected).sum(axis=1)
    # Actual: distinct (customer, day) holdout transactions of the calibration cohort.
    cohort = np.isin(ids, summary.customer_ids)
    hold = cohort & (days > cal_end) & (days <= end)
    codes = np.unique(ids[hold], return_inverse=True)[1].reshape(-1).astype(np.int64)
    offsets = ((days[hold] - cal_end) / _DAY).astype(np.int64)  # 1 .. holdout_days
    distinct = np.unique(codes * (holdout_days + 1) + offsets) % (holdout_days + 1)
    week = (distinct - 1) // 7  # day 1..7 -> week 0 (the first week)
    actual = np.cumsum(np.bincount(week, minlength=n_weeks)[:n_weeks])
    return WeeklyCurve(
        weeks=list(range(1, n_weeks + 1)),
        predicted=[float(v) for v in predicted],
        actual=[float(v) for v in actual],
    )


def _tracking(
    fit: TransactionFit,
    summary: Any,
    ids: NDArray[Any],
    days: NDArray[np.datetime64],
    start: np.datetime64,
    cal_end: np.datetime64,
    end: np.datetime64,
) -> dict[str, Any]:
    """Expected and actual cumulative repeat transactions of the calibration cohort at the end
    of each week from the first transaction day (the last week may be partial)."""
    # Day d after the first transaction day is time d/7; week k ends at day 7k (as the
    # holdout curve counts from the calibration end).
    total_days = int((end - start) / _DAY)
    n_weeks = math.ceil(total_days / 7)
    week_days = np.minimum(np.arange(1, n_weeks + 1) * 7, total_days)
    cal_weeks = int((cal_end - start) / _DAY) / 7.0
    births = cal_weeks - np.asarray(summary.T, dtype=np.float64)  # first transaction, weeks
    curve = tracking_curve(fit, births, week_days / 7.0)
    # Actual: distinct (customer, day) of the cohort after each customer's first day.
    cohort = np.isin(ids, summary.customer_ids) & (days <= end)
    codes = np.unique(ids[cohort], return_inverse=True)[1].reshape(-1).astype(np.int64)
    offsets = ((days[cohort] - start) / _DAY).astype(np.int64)
    pairs = np.unique(codes * (total_days + 1) + offsets)
    customer, day = pairs // (total_days + 1), pairs % (total_days + 1)
    first = np.zeros(customer.size, dtype=bool)
    first[np.unique(customer, return_index=True)[1]] = True  # sorted by customer, then day
    repeat_weeks = (day[~first] - 1) // 7  # repeat days are >= 1
    actual = np.cumsum(np.bincount(repeat_weeks, minlength=n_weeks)[:n_weeks])
    return {
        "weeks": [float(w) for w in week_days / 7.0],
        "calibrationWeeks": cal_weeks,
        "expected": curve.cumulative.tolist(),
        "expectedIncrements": curve.increments.tolist(),
        "actual": [float(v) for v in actual],
        "actualIncrements": [float(v) for v in np.diff(actual, prepend=0)],
    }


def _days(dates: ArrayLike) -> NDArray[np.datetime64]:
    arr = np.asarray(dates)
    try:
        if not np.issubdtype(arr.dtype, np.datetime64):
            arr = arr.astype("datetime64")
        return arr.astype("datetime64[D]")
    except (TypeError, ValueError) as exc:
        raise ModelFitError(f"dates must be dates or datetimes: {exc}") from exc


def _one_day(value: ArrayLike, name: str) -> np.datetime64:
    arr = _days(np.atleast_1d(np.asarray(value)))
    if arr.size != 1 or np.isnat(arr[0]):
        raise ModelFitError(f"{name} must be one date, got {value!r}")
    return arr[0]


def _camel(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        head, *rest = key.split("_")
        out[head + "".join(part.title() for part in rest)] = value
    return out
