"""Shifted-beta-geometric (sBG) model of contractual retention (Fader & Hardie 2007).

Each subscriber renews at the end of every period with probability ``1 - theta`` until they
churn; ``theta`` varies over subscribers as ``Beta(alpha, beta)``. With periods numbered from 1::

    P(T = t)  = B(alpha + 1, beta + t - 1) / B(alpha, beta)        churn in period t
    S(t)      = B(alpha, beta + t) / B(alpha, beta)                still subscribed after t
    r(t)      = S(t) / S(t-1) = (beta + t - 1) / (alpha + beta + t - 1)   retention rate

References: Fader & Hardie (2007), "How to Project Customer Retention", Journal of Interactive
Marketing 21(1); Fader & Hardie (2010), "Customer-Base Valuation in a Contractual Setting: The
Perils of Ignoring Heterogeneity", Marketing Science 29(1) (discounted expected residual
lifetime).

Two ways to fit: :meth:`ShiftedBetaGeometricModel.fit_cohort` from the number of a cohort's
members still subscribed at the start of each period, and
:meth:`ShiftedBetaGeometricModel.fit_subscribers` from per-subscriber records (periods observed,
churned or not). A cohort is the same data as its expanded subscriber records, and both fits give
the same estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betaln, digamma

from ._optim import fit_mle, split_value_and_gradient
from .errors import DataError, FitError

FloatArray = NDArray[np.float64]

# Series terms of the residual lifetime are summed until the tail is below this fraction.
_DERL_RTOL = 1e-15
_DERL_BLOCK = 256


def _log_churn_and_survival(
    alpha: float, beta: float, t: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """``log P(T = t)`` and ``log S(t)`` for whole periods ``t`` (``t >= 1`` for the first)."""
    log_b = betaln(alpha, beta)
    log_churn = betaln(alpha + 1.0, beta + t - 1.0) - log_b
    log_survival = betaln(alpha, beta + t) - log_b
    return log_churn, log_survival


def _value_and_gradient(
    alpha: float,
    beta: float,
    periods: FloatArray,
    churned_weight: FloatArray,
    survived_weight: FloatArray,
) -> tuple[float, FloatArray]:
    """Negative log-likelihood and its gradient for grouped records.

    ``churned_weight[i]`` subscribers churned in period ``periods[i]`` and
    ``survived_weight[i]`` were still subscribed after ``periods[i]`` periods.
    """
    t = periods
    log_churn, log_survival = _log_churn_and_survival(alpha, beta, t)
    with np.errstate(invalid="ignore"):
        churn_term = np.where(churned_weight > 0, churned_weight * log_churn, 0.0)
    ll = float(churn_term.sum() + survived_weight @ log_survival)
    # d/da betaln(a, b) = digamma(a) - digamma(a + b), likewise for b.
    d_ab = digamma(alpha + beta)
    d_b_alpha = digamma(alpha) - d_ab
    d_b_beta = digamma(beta) - d_ab
    churn_mask = churned_weight > 0
    tc = t[churn_mask]
    wc = churned_weight[churn_mask]
    d_churn_all = digamma(alpha + beta + tc)
    d_churn_alpha = digamma(alpha + 1.0) - d_churn_all - d_b_alpha
    d_churn_beta = digamma(beta + tc - 1.0) - d_churn_all - d_b_beta
    d_surv_all = digamma(alpha + beta + t)
    d_surv_alpha = digamma(alpha) - d_surv_all - d_b_alpha
    d_surv_beta = digamma(beta + t) - d_surv_all - d_b_beta
    grad = np.array(
        [
            wc @ d_churn_alpha + survived_weight @ d_surv_alpha,
            wc @ d_churn_beta + survived_weight @ d_surv_beta,
        ]
    )
    if not (math.isfinite(ll) and np.all(np.isfinite(grad))):
        return math.inf, np.zeros(2)
    return -ll, -grad


@dataclass(frozen=True)
class ShiftedBetaGeometricModel:
    """A fitted (or given) sBG model; periods are whole contract periods (months, years, ...)."""

    alpha: float
    beta: float
    log_likelihood: float = math.nan
    standard_errors: dict[str, float] = field(default_factory=dict)
    n_subscribers: int = 0

    def __post_init__(self) -> None:
        for name, value in (("alpha", self.alpha), ("beta", self.beta)):
            if not (math.isfinite(value) and value > 0):
                raise DataError(f"sBG: {name} must be finite and > 0, got {value}")

    @property
    def params(self) -> dict[str, float]:
        """``{"alpha": ..., "beta": ...}``."""
        return {"alpha": self.alpha, "beta": self.beta}

    @classmethod
    def from_params(
        cls,
        alpha: float,
        beta: float,
        *,
        log_likelihood: float = math.nan,
        standard_errors: dict[str, float] | None = None,
    ) -> ShiftedBetaGeometricModel:
        """A model with known parameters (e.g. a stored fit or published values)."""
        return cls(float(alpha), float(beta), float(log_likelihood), dict(standard_errors or {}))

    # ---- fitting --------------------------------------------------------------------------

    @classmethod
    def fit_cohort(cls, alive: ArrayLike, *, penalizer: float = 0.0) -> ShiftedBetaGeometricModel:
        """Fit to a cohort: ``alive[t]`` members still subscribed at the start of period t+1.

        ``alive[0]`` is the cohort size; the counts must not increase. E.g. Fader & Hardie's
        "regular" cohort, years 0-7: ``[1000, 631, 468, 382, 326, 289, 262, 241]``.

        Raises:
            FitError: fewer than two periods, increasing or negative counts, nobody churned,
                everybody churned in the first period, or no convergence.
        """
        counts = np.asarray(alive, dtype=np.float64)
        if counts.ndim != 1 or counts.size < 2:
            raise FitError(
                "sBG: alive must list the members subscribed at the start of at least two "
                f"periods (cohort size first), got shape {counts.shape}"
            )
        if not np.all(np.isfinite(counts)) or np.any(counts < 0):
            raise FitError("sBG: alive counts must be finite and >= 0")
        if counts[0] <= 0:
            raise FitError("sBG: the cohort is empty (alive[0] must be > 0)")
        lost = counts[:-1] - counts[1:]
        if np.any(lost < 0):
            t = int(np.flatnonzero(lost < 0)[0]) + 1
            raise FitError(
                f"sBG: alive counts must not increase, but alive[{t}] = {counts[t]:g} > "
                f"alive[{t - 1}] = {counts[t - 1]:g}"
            )
        periods = np.arange(1, counts.size, dtype=np.float64)
        survived = np.zeros(periods.size)
        survived[-1] = counts[-1]
        return cls._fit_grouped(periods, lost, survived, penalizer)

    @classmethod
    def fit_subscribers(
        cls, periods: ArrayLike, churned: ArrayLike, *, penalizer: float = 0.0
    ) -> ShiftedBetaGeometricModel:
        """Fit to per-subscriber records.

        Args:
            periods: for a churned subscriber, the period in which they churned (1 = did not
                renew after their first period); for an active one, the number of periods
                completed so far (0 allowed: not yet up for renewal).
            churned: True where the subscriber has churned.

        Raises:
            FitError: empty or invalid records, nobody churned, everybody churned in the first
                period, or no convergence.
        """
        t = np.asarray(periods, dtype=np.float64).ravel()
        c = np.asarray(churned).ravel()
        if t.size == 0 or t.size != c.size:
            raise FitError(
                f"sBG: periods and churned must be non-empty and of one length, got {t.size} "
                f"and {c.size}"
            )
        if c.dtype != np.bool_:
            if not np.all(np.isin(c, (0, 1))):
                raise FitError("sBG: churned must be booleans (or 0/1)")
            c = c.astype(bool)
        if not np.all(np.isfinite(t)) or np.any(t != np.floor(t)) or np.any(t < 0):
            raise FitError("sBG: periods must be whole numbers >= 0")
        if np.any(c & (t < 1)):
            raise FitError("sBG: a churned subscriber must have periods >= 1 (the churn period)")
        # Group identical records: one term per (period, churned) pair.
        values, inverse = np.unique(t, return_inverse=True)
        inverse = inverse.reshape(-1)
        churned_weight = np.bincount(
            inverse, weights=c.astype(np.float64), minlength=values.size
        ).astype(np.float64)
        survived_weight = np.bincount(
            inverse, weights=(~c).astype(np.float64), minlength=values.size
        ).astype(np.float64)
        return cls._fit_grouped(values, churned_weight, survived_weight, penalizer)

    @classmethod
    def _fit_grouped(
        cls,
        periods: FloatArray,
        churned_weight: FloatArray,
        survived_weight: FloatArray,
        penalizer: float,
    ) -> ShiftedBetaGeometricModel:
        n_churned = float(churned_weight.sum())
        at_risk = float(churned_weight.sum() + survived_weight[periods >= 1].sum())
        if n_churned == 0:
            raise FitError(
                "sBG: nobody churned, so the churn probability cannot be estimated (the fit "
                "would run to theta = 0); use a longer observation window"
            )
        first_period_churn = float(churned_weight[periods == 1].sum())
        if first_period_churn == at_risk:
            raise FitError(
                "sBG: every subscriber churned in the first period (the fit would run to "
                "theta = 1); there is no renewal to learn from"
            )
        n = round(float(churned_weight.sum() + survived_weight.sum()))

        def value_and_gradient(theta: FloatArray) -> tuple[float, FloatArray]:
            return _value_and_gradient(
                float(theta[0]), float(theta[1]), periods, churned_weight, survived_weight
            )

        objective, gradient = split_value_and_gradient(value_and_gradient)
        result = fit_mle(
            objective,
            gradient,
            {"alpha": 1.0, "beta": 1.0},
            penalizer=penalizer,
            n_observations=max(n, 1),
            model_name="sBG",
        )
        return cls(
            result.params["alpha"],
            result.params["beta"],
            result.log_likelihood,
            result.standard_errors,
            n,
        )

    # ---- likelihood and curves ------------------------------------------------------------

    def log_likelihood_of(self, periods: ArrayLike, churned: ArrayLike) -> FloatArray:
        """Per-subscriber log-likelihood: ``log P(T = t)`` if churned, else ``log S(t)``."""
        t = _whole_periods(periods, "periods")
        c = np.asarray(churned, dtype=bool)
        t, c = np.broadcast_arrays(t, c)
        if np.any(c & (t < 1)):
            raise DataError("sBG: a churned subscriber must have periods >= 1")
        log_churn = _log_churn_and_survival(self.alpha, self.beta, np.maximum(t, 1.0))[0]
        log_survival = _log_churn_and_survival(self.alpha, self.beta, t)[1]
        return np.where(c, log_churn, log_survival)

    def churn_probability(self, t: ArrayLike) -> FloatArray:
        """P(T = t): the probability that a new subscriber churns in period t (t >= 1)."""
        periods = _whole_periods(t, "t", minimum=1)
        return np.exp(_log_churn_and_survival(self.alpha, self.beta, periods)[0])

    def survival(self, t: ArrayLike) -> FloatArray:
        """S(t): the probability that a new subscriber is still subscribed after t periods."""
        periods = _whole_periods(t, "t")
        return np.exp(_log_churn_and_survival(self.alpha, self.beta, periods)[1])

    def retention_rate(self, t: ArrayLike) -> FloatArray:
        """r(t) = S(t)/S(t-1): the share of period t-1's survivors that renew into period t+1.

        Rises with t (the sorting effect of heterogeneity), towards 1.
        """
        periods = _whole_periods(t, "t", minimum=1)
        return (self.beta + periods - 1.0) / (self.alpha + self.beta + periods - 1.0)

    def project_alive(self, cohort_size: float, periods: int) -> FloatArray:
        """Expected members still subscribed at the start of periods 0..``periods``."""
        if periods < 0:
            raise DataError(f"sBG: periods must be >= 0, got {periods}")
        return float(cohort_size) * self.survival(np.arange(periods + 1))

    # ---- value ----------------------------------------------------------------------------

    def discounted_expected_residual_lifetime(
        self, renewals: ArrayLike, discount_rate: float
    ) -> FloatArray:
        """DERL for a subscriber who has renewed ``renewals`` times (Fader & Hardie 2010).

        The subscriber is at the end of period ``renewals + 1`` (so still subscribed after
        ``n = renewals + 1`` periods), just before their next renewal decision. DERL is the
        expected number of further payments, each made at the start of a period and discounted
        at ``discount_rate`` per period, the first (the coming renewal) undiscounted::

            DERL = sum_{k>=0} S(n + k) / S(n - 1) / (1 + d)^k
                 = (beta + n - 1) / (alpha + beta + n - 1)
                   * 2F1(1, beta + n; alpha + beta + n; 1 / (1 + d))

        Multiply by the payment per period for the residual value of the subscriber.
        """
        if not (math.isfinite(discount_rate) and discount_rate > 0):
            raise DataError(f"sBG: discount_rate must be > 0 per period, got {discount_rate}")
        n = _whole_periods(renewals, "renewals") + 1.0
        shape = n.shape
        n = n.ravel()
        z = 1.0 / (1.0 + discount_rate)
        # Terms S(n+k)/S(n-1) z^k: ratio (beta+n+k-1)/(alpha+beta+n+k-1) * z, below z.
        b = self.beta + n - 1.0
        ab = self.alpha + self.beta + n - 1.0
        total = np.zeros(n.size)
        # Start from 1/z: the first cumulative-product step then yields r(n) = S(n)/S(n-1).
        term = np.full(n.size, 1.0 / z)
        active = np.arange(n.size)
        k = 0
        while active.size:
            ks = np.arange(k, k + _DERL_BLOCK, dtype=np.float64)
            ratios = (b[active, None] + ks) / (ab[active, None] + ks) * z
            terms = term[active, None] * np.cumprod(ratios, axis=1)
            total[active] += terms.sum(axis=1)
            term[active] = terms[:, -1]
            k += _DERL_BLOCK
            done = term[active] * z / (1.0 - z) <= _DERL_RTOL * total[active]
            active = active[~done]
        return total.reshape(shape)


def _whole_periods(values: ArrayLike, name: str, *, minimum: int = 0) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr != np.floor(arr)) or np.any(arr < minimum):
        raise DataError(f"sBG: {name} must be whole numbers >= {minimum}")
    return arr


__all__ = ["ShiftedBetaGeometricModel"]
