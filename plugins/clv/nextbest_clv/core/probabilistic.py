"""Per-customer fields of a probabilistic CLV record (pure: fitted model and arrays in).

Transaction models (BG/NBD, Pareto/NBD, MBG/NBD, with a spend model), times in weeks, as of
the customer's observation (T):

- ``probabilityAlive``: P(alive now | x, t_x, T), the model's ``probability_alive``;
- ``expectedPurchases90d``: E[repeat purchases in the next 90 days] = E[Y(90/7) | x, t_x, T];
- ``expectedRevenue12m``: E[purchases in the next 365.25 days] times the expected value per
  transaction (Gamma-Gamma's conditional expectation), undiscounted;
- ``clv``: ``customer_lifetime_value`` over ``clvMonths`` months at ``discountRateMonthly``;
- ``nextPurchaseDays`` (served as ``expectedNextPurchaseAt``, the as-of time plus this many
  days): the median time to the next purchase of the customer were they alive, i.e. the
  median of the Lomax wait of the purchase clock given the history (lambda ~ Gamma(r + x,
  alpha + T)): (alpha + T) (2^(1/(r+x)) - 1) in the model's unit. The median, not the mean:
  the mean is infinite when r + x <= 1 (a one-time buyer with r < 1). It ignores dropout (a
  customer who is gone buys never): read it beside ``probabilityAlive``;
- ``churnProbability`` = 1 - P(alive in 90 days), where P(alive at T + h) is
  P(alive at T) times the probability of not dropping out in (T, T + h] given alive at T:

  - BG/NBD (a customer drops out after a purchase with probability p): given alive at T,
    lambda ~ Gamma(r + x, alpha + T) and p ~ Beta(a, b + x); no dropout in (T, T + h] has
    probability E[exp(-lambda p h)] = 2F1(r + x, a; a + b + x; -h / (alpha + T)).
  - MBG/NBD: the same with p ~ Beta(a, b + x + 1) (a dropout chance after the first purchase
    too).
  - Pareto/NBD (lifetime ~ Exponential(mu)): given alive at T, mu ~ Gamma(s, beta + T), so
    E[exp(-mu h)] = ((beta + T) / (beta + T + h))^s.

Subscriptions (individual sBG, periods of ``subscriptionPeriodDays`` from the subscription
start, n = periods completed as of now, S the sBG survival function):

- ``probabilityAlive``: 1 while subscribed, 0 after the end (cancel) was recorded;
- ``expectedPurchases90d``: expected renewals (payments at period boundaries) in the next
  90 days, sum over boundaries j in (now, now + 90 d] of S(j) / S(n);
- ``expectedRevenue12m``: price times the expected renewals in the next 365.25 days;
- ``clv``: price times the renewals in the next ``clvMonths`` months, each discounted by
  (1 + d)^-m for the month m (1-based, 30.4375 days) it falls in;
- ``churnProbability`` = 1 - S(m) / S(n), m the periods completed 90 days from now (1 for an
  ended subscription).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import hyp2f1

from nextbest_clv.core.estimators import SpendModel, TransactionFit, prediction_T
from nextbest_clv.core.models import (
    DAYS_PER_MONTH,
    BetaGeoModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    ShiftedBetaGeometricModel,
    customer_lifetime_value,
)
from nextbest_clv.core.models._hypergeometric import near_one
from nextbest_clv.core.subscriptions import DAY_SECONDS, Subscriptions

__all__ = [
    "CHURN_HORIZON_DAYS",
    "REVENUE_HORIZON_DAYS",
    "ModelFields",
    "alive_after",
    "subscription_fields",
    "transaction_fields",
]

#: "P(alive in 90 days)" and ``expectedPurchases90d`` look this many days ahead.
CHURN_HORIZON_DAYS = 90.0
#: ``expectedRevenue12m`` looks one year ahead.
REVENUE_HORIZON_DAYS = 365.25
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ModelFields:
    """The probabilistic fields of many customers, one array entry per customer."""

    probability_alive: FloatArray
    expected_purchases_90d: FloatArray
    expected_revenue_12m: FloatArray
    clv: FloatArray
    churn_probability: FloatArray
    #: Median days to the next purchase if alive (transaction models; None for subscriptions).
    next_purchase_days: FloatArray | None = None

    def finite(self) -> NDArray[np.bool_]:
        """Per customer, whether every field is a finite number (extreme parameters or values
        can give NaN or inf for some customers; those have no record)."""
        stacked = np.stack(
            (
                self.probability_alive,
                self.expected_purchases_90d,
                self.expected_revenue_12m,
                self.clv,
                self.churn_probability,
                *(() if self.next_purchase_days is None else (self.next_purchase_days,)),
            )
        )
        return np.asarray(np.all(np.isfinite(stacked), axis=0), dtype=bool)

    def not_finite(self, i: int) -> list[str]:
        """The names (record names) of customer ``i``'s fields that are not finite."""
        names = {
            "probabilityAlive": self.probability_alive,
            "expectedPurchases90d": self.expected_purchases_90d,
            "expectedRevenue12m": self.expected_revenue_12m,
            "clv": self.clv,
            "churnProbability": self.churn_probability,
        }
        if self.next_purchase_days is not None:
            names["expectedNextPurchaseAt"] = self.next_purchase_days
        return [name for name, values in names.items() if not np.isfinite(values[i])]

    def record(self, i: int, model: str) -> dict[str, float | str]:
        """Customer ``i``'s fields under their record (camelCase) names."""
        return {
            "probabilityAlive": float(self.probability_alive[i]),
            "expectedPurchases90d": float(self.expected_purchases_90d[i]),
            "expectedRevenue12m": float(self.expected_revenue_12m[i]),
            "clv": float(self.clv[i]),
            "model": model,
            "churnProbability": float(self.churn_probability[i]),
        }


def alive_after(
    model: TransactionFit, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, h: float
) -> FloatArray:
    """P(alive at T + h | x, t_x, T) (see the module doc), h in the model's time unit."""
    x = np.asarray(frequency, dtype=np.float64)
    big_t = np.asarray(T, dtype=np.float64)
    alive_now = model.probability_alive(x, recency, big_t)
    if isinstance(model, BetaGeoModel | ModifiedBetaGeoModel):
        # E[(1 + p h / (alpha + T))^-(r + x)] over p ~ Beta(a, b + x): 2F1(r + x, a; a + b + x;
        # -h / (alpha + T)), by Pfaff's transformation ((alpha + T) / (alpha + T + h))^a
        # 2F1(a, a + b - r; a + b + x; w), w = h / (alpha + T + h) in [0, 1): no argument
        # below -1 (where scipy's 2F1 fails for large x), parameters that do not grow with x.
        # MBG/NBD: an alive customer has had x + 1 dropout chances, p ~ Beta(a, b + x + 1).
        r, alpha, a, b = model.r, model.alpha, model.a, model.b
        if isinstance(model, ModifiedBetaGeoModel):
            b = b + 1.0
        log_kept = np.log(alpha + big_t) - np.log(alpha + big_t + h)  # ln(1 - w)
        w = -np.expm1(log_kept)
        g = near_one(hyp2f1(a, a + b - r, a + b + x, w), a, a + b - r, a + b + x, w, -log_kept)
        stay = np.exp(a * log_kept) * g
    elif isinstance(model, ParetoNBDModel):
        stay = np.exp(model.s * (np.log(model.beta + big_t) - np.log(model.beta + big_t + h)))
    else:  # pragma: no cover - the TransactionFit union has no other members
        raise TypeError(f"not a transaction model: {type(model).__name__}")
    return np.asarray(alive_now * stay, dtype=np.float64)


def transaction_fields(
    model: TransactionFit,
    spend: SpendModel,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    *,
    clv_months: int,
    discount_rate_monthly: float,
    time_unit_days: float = 7.0,
) -> ModelFields:
    """The fields of customers summarised as x, t_x, T (in the model's unit), m_x; a customer
    first seen today (T = 0) is predicted as a new customer (T = 1e-6)."""
    x = np.asarray(frequency, dtype=np.float64)
    tx = np.asarray(recency, dtype=np.float64)
    big_t = prediction_T(T)
    value = spend.expected_value(x, monetary_value)
    h90 = CHURN_HORIZON_DAYS / time_unit_days
    year = REVENUE_HORIZON_DAYS / time_unit_days
    alive = model.probability_alive(x, tx, big_t)
    purchases = model.conditional_expected_purchases(np.array([[h90], [year]]), x, tx, big_t)
    clv = customer_lifetime_value(
        model,
        x,
        tx,
        big_t,
        value,
        months=clv_months,
        discount_rate_monthly=discount_rate_monthly,
        time_unit_days=time_unit_days,
    )
    wait = model.time_to_next_purchase(x, big_t) * time_unit_days
    return ModelFields(
        probability_alive=np.asarray(alive, dtype=np.float64),
        expected_purchases_90d=np.asarray(purchases[0], dtype=np.float64),
        expected_revenue_12m=np.asarray(purchases[1] * value, dtype=np.float64),
        clv=np.asarray(clv, dtype=np.float64),
        churn_probability=1.0 - alive_after(model, x, tx, big_t, h90),
        next_purchase_days=np.asarray(wait, dtype=np.float64),
    )


def subscription_fields(
    model: ShiftedBetaGeometricModel,
    subscriptions: Subscriptions,
    as_of: float,
    *,
    period_days: float,
    clv_months: int,
    discount_rate_monthly: float,
) -> ModelFields:
    """The fields of subscribers as of ``as_of`` (epoch seconds; see the module doc)."""
    n_subs = len(subscriptions)
    active = ~subscriptions.churned
    period = period_days * DAY_SECONDS
    elapsed = as_of - subscriptions.start
    completed = np.floor(elapsed / period)
    horizon_days = max(CHURN_HORIZON_DAYS, REVENUE_HORIZON_DAYS, clv_months * DAYS_PER_MONTH)
    ks = np.arange(1, math.ceil(horizon_days / period_days) + 2, dtype=np.float64)
    boundary = completed[:, None] + ks[None, :]  # renewal j = n + k, at start + j * period
    days_ahead = (subscriptions.start[:, None] + boundary * period - as_of) / DAY_SECONDS
    survival_now = model.survival(completed)
    ratio = model.survival(boundary) / survival_now[:, None]  # P(renews at j | subscribed now)

    def renewals(days: float, discount: bool = False) -> FloatArray:
        weight = np.where(days_ahead <= days, ratio, 0.0)
        if discount:
            month = np.maximum(np.ceil(days_ahead / DAYS_PER_MONTH), 1.0)
            weight = weight * (1.0 + discount_rate_monthly) ** -month
        return np.asarray(weight.sum(axis=1), dtype=np.float64)

    price = subscriptions.price
    in_90 = np.floor((elapsed + CHURN_HORIZON_DAYS * DAY_SECONDS) / period)
    alive_90 = model.survival(in_90) / survival_now
    zero = np.zeros(n_subs)
    return ModelFields(
        probability_alive=np.where(active, 1.0, 0.0),
        expected_purchases_90d=np.where(active, renewals(CHURN_HORIZON_DAYS), zero),
        expected_revenue_12m=np.where(active, price * renewals(REVENUE_HORIZON_DAYS), zero),
        clv=np.where(active, price * renewals(clv_months * DAYS_PER_MONTH, True), zero),
        churn_probability=np.where(active, 1.0 - alive_90, 1.0),
    )
