"""BG/BB for a tenant: transactions as discrete opportunities, and the record fields (pure).

A tenant's transactions become BG/BB data (x, t_x, n) per customer with one opportunity per
period of ``period_days`` days (the ``bgbbPeriodDays`` setting), counted from the customer's
first transaction day f: period j holds the days [f + j P, f + (j + 1) P). Period 0 is the
first transaction; opportunities are the periods 1, 2, ... that are complete by the end of the
observation, so n = floor((end - f + 1) / P) - 1 (a transaction in the period still running is
not counted yet, as the period's opportunity is not over). x is the number of opportunities
with at least one transaction, t_x the last of them (0 when x = 0). The value of an opportunity
is the sum of its transactions; ``monetary_value`` is the mean value of the x opportunities
with a transaction (0 when x = 0), which is what the Gamma-Gamma spend model is fitted to.

Record fields (the model's unit is the opportunity; horizons in days become whole
opportunities, m(h) = floor(h / P)):

- ``probabilityAlive``: P(alive at the next opportunity n + 1) (FHS 2010 eq. 11);
- ``expectedPurchases90d``: E[opportunities with a transaction among the next m(90)];
- ``expectedRevenue12m``: E[... among the next m(365.25)] times the spend per opportunity;
- ``clv``: the spend per opportunity times sum_{k=1}^{M} E[transaction at opportunity n + k],
  each discounted by (1 + d)^-month, month = max(1, ceil(k P / 30.4375)), M = m(clvMonths
  months);
- ``churnProbability``: 1 - P(alive at opportunity n + m(90));
- ``nextPurchaseDays``: P times the median number of opportunities to the next transaction of a
  customer who is alive (p ~ Beta(alpha + x, beta + n - x) given the history, so P(no
  transaction in k opportunities) = B(alpha + x, beta + n - x + k) / B(alpha + x, beta + n - x));
  capped at 2^20 opportunities (shown as never).

A customer whose first period is not complete yet (n = 0) is a new customer: the same closed
forms with x = t_x = n = 0 (likelihood 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betaln

from nextbest_clv.core.estimators import SpendModel
from nextbest_clv.core.models import DAYS_PER_MONTH, BetaGeoBetaBinomModel, DataError
from nextbest_clv.core.probabilistic import CHURN_HORIZON_DAYS, REVENUE_HORIZON_DAYS, ModelFields

__all__ = ["OpportunitySummary", "bgbb_fields", "opportunities_in", "summarize_opportunities"]

FloatArray = NDArray[np.float64]
#: The median wait for the next transaction is searched up to this many opportunities.
_MAX_WAIT_OPPORTUNITIES = 2**20
#: Customers x opportunities cells computed at once (bounds the memory of a large tenant).
_BLOCK_CELLS = 2_000_000


@dataclass(frozen=True)
class OpportunitySummary:
    """Per customer (sorted by id): x, t_x, n in opportunities and the mean opportunity value."""

    customer_ids: NDArray[np.str_]
    frequency: FloatArray
    recency: FloatArray
    n_periods: FloatArray
    monetary_value: FloatArray

    def __len__(self) -> int:
        return int(self.customer_ids.size)


def opportunities_in(days: float, period_days: float) -> int:
    """Whole opportunities in a horizon of ``days`` (floor; 0 when shorter than a period)."""
    return math.floor(days / period_days + 1e-9)


def summarize_opportunities(
    customer_ids: ArrayLike,
    days: ArrayLike,
    values: ArrayLike,
    *,
    observation_end: ArrayLike,
    period_days: float,
) -> OpportunitySummary:
    """The BG/BB summary (module doc) of transactions up to ``observation_end`` (a day,
    inclusive); later transactions are ignored.

    Raises:
        DataError: arrays of different lengths, or a period that is not > 0.
    """
    if not (math.isfinite(period_days) and period_days > 0):
        raise DataError(f"period_days must be a number > 0, got {period_days}")
    ids = np.asarray(customer_ids).astype(str)
    day = np.asarray(days, dtype="datetime64[D]").astype(np.int64)
    val = np.asarray(values, dtype=np.float64)
    if not (ids.shape == day.shape == val.shape) or ids.ndim != 1:
        raise DataError("customer_ids, days and values must be 1-d arrays of one length")
    end = int(np.asarray(observation_end, dtype="datetime64[D]").astype(np.int64))
    keep = day <= end
    ids, day, val = ids[keep], day[keep], val[keep]
    uniq, who = np.unique(ids, return_inverse=True)
    first = np.full(uniq.size, np.iinfo(np.int64).max)
    np.minimum.at(first, who, day)
    period = np.floor((day - first[who]) / period_days + 1e-9).astype(np.int64)
    n = np.maximum(np.floor((end - first + 1) / period_days + 1e-9) - 1.0, 0.0)
    # One row per (customer, opportunity) with a transaction, its value summed.
    counted = (period >= 1) & (period <= n[who])
    pair = np.stack([who[counted], period[counted]], axis=1)
    slots, slot_of = np.unique(pair, axis=0, return_inverse=True)
    slot_value = np.bincount(slot_of.ravel(), weights=val[counted], minlength=slots.shape[0])
    x = np.bincount(slots[:, 0], minlength=uniq.size).astype(np.float64)
    tx = np.zeros(uniq.size)
    if slots.shape[0]:
        np.maximum.at(tx, slots[:, 0], slots[:, 1].astype(np.float64))
    total = np.bincount(slots[:, 0], weights=slot_value, minlength=uniq.size)
    monetary = np.divide(total, x, out=np.zeros(uniq.size), where=x > 0)
    return OpportunitySummary(uniq, x, tx, n.astype(np.float64), monetary)


def bgbb_fields(
    model: BetaGeoBetaBinomModel,
    spend: SpendModel,
    summary: OpportunitySummary,
    *,
    period_days: float,
    clv_months: int,
    discount_rate_monthly: float,
) -> ModelFields:
    """The record fields of every customer of ``summary`` (see the module doc), in blocks of
    customers (the per-opportunity terms are a customers x opportunities array)."""
    m90 = opportunities_in(CHURN_HORIZON_DAYS, period_days)
    m_year = opportunities_in(REVENUE_HORIZON_DAYS, period_days)
    m_clv = opportunities_in(clv_months * DAYS_PER_MONTH, period_days)
    top = max(m90, m_year, m_clv, 1)
    block = max(1, _BLOCK_CELLS // top)
    value = spend.expected_value(summary.frequency, summary.monetary_value)
    parts = [
        _block_fields(
            model,
            summary.frequency[i : i + block],
            summary.recency[i : i + block],
            summary.n_periods[i : i + block],
            value[i : i + block],
            period_days=period_days,
            horizons=(m90, m_year, m_clv, top),
            discount_rate_monthly=discount_rate_monthly,
        )
        for i in range(0, len(summary), block)
    ]
    if not parts:
        empty = np.zeros(0)
        return ModelFields(empty, empty, empty, empty, empty, empty)
    stacked = [np.concatenate(column) for column in zip(*parts, strict=True)]
    return ModelFields(*stacked)


def _block_fields(
    model: BetaGeoBetaBinomModel,
    x: FloatArray,
    tx: FloatArray,
    n: FloatArray,
    value: FloatArray,
    *,
    period_days: float,
    horizons: tuple[int, int, int, int],
    discount_rate_monthly: float,
) -> tuple[FloatArray, ...]:
    m90, m_year, m_clv, top = horizons
    a, b, g, d = model.alpha, model.beta, model.gamma, model.delta
    ll = np.zeros(x.size)
    seen = n >= 1
    if seen.any():
        ll[seen] = model.log_likelihood_of(x[seen], tx[seen], n[seen])
    # E[transaction at opportunity n + k | history], k = 1..K: the closed form of FHS eq. 13
    # term by term (B(g, d + n + k) / B(g, d) the chance to be alive there).
    k = np.arange(1, top + 1, dtype=np.float64)
    lead = betaln(a + x + 1, b + n - x) - betaln(a, b) - ll
    per_opportunity = np.exp(lead[:, None] + betaln(g, d + n[:, None] + k[None, :]) - betaln(g, d))
    cumulative = np.concatenate([np.zeros((x.size, 1)), np.cumsum(per_opportunity, axis=1)], 1)
    month = np.maximum(np.ceil(k * period_days / DAYS_PER_MONTH - 1e-9), 1.0)
    discount = (1.0 + discount_rate_monthly) ** -month
    discounted = per_opportunity[:, :m_clv] @ discount[:m_clv]

    def alive_at(ahead: int) -> FloatArray:
        log_alive = betaln(a + x, b + n - x) - betaln(a, b) + betaln(g, d + n + ahead)
        return np.asarray(np.exp(log_alive - betaln(g, d) - ll), dtype=np.float64)

    return (
        alive_at(1),
        cumulative[:, m90],
        cumulative[:, m_year] * value,
        np.asarray(discounted * value, dtype=np.float64),
        1.0 - alive_at(m90),
        median_wait(a + x, b + n - x) * period_days,
    )


def median_wait(alpha: ArrayLike, beta: ArrayLike) -> FloatArray:
    """The median number of opportunities K to the next transaction when p ~ Beta(alpha,
    beta): the least k with P(K > k) = B(alpha, beta + k) / B(alpha, beta) <= 1/2 (bisection
    over whole k, vectorised; :data:`_MAX_WAIT_OPPORTUNITIES` when beyond it)."""
    al = np.asarray(alpha, dtype=np.float64)
    be = np.asarray(beta, dtype=np.float64)
    base = betaln(al, be)
    lo = np.zeros(al.shape)  # P(K > lo) > 1/2
    hi = np.full(al.shape, float(_MAX_WAIT_OPPORTUNITIES))
    for _ in range(int(math.log2(_MAX_WAIT_OPPORTUNITIES)) + 1):
        mid = np.floor((lo + hi) / 2)
        above = betaln(al, be + mid) - base > -math.log(2.0)
        lo = np.where(above & (mid > lo), mid, lo)
        hi = np.where(above, hi, np.maximum(mid, lo + 1))
        if np.all(hi - lo <= 1):
            break
    return np.asarray(hi, dtype=np.float64)
