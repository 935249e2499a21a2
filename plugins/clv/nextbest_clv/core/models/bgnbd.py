"""BG/NBD: the beta-geometric / negative binomial model of repeat buying.

Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to the
Pareto/NBD Model", Marketing Science 24(2). While active, a customer buys as a Poisson process
with rate lambda ~ Gamma(r, alpha); after each repeat purchase they drop out with probability
p ~ Beta(a, b). Data per customer: x repeat purchases, the last at t_x, observed for T.

Numerics:
- the log-likelihood is ``lnGamma(r+x) - lnGamma(r) + r ln(alpha) + lnB(a, b+x) - lnB(a, b)
  - (r+x) ln(alpha+T) + softplus(z)`` with ``z = ln(a/(b+x-1)) + (r+x) ln((alpha+T)/(alpha+t_x))``
  for x > 0: the two terms of the likelihood are combined in log space, so heavy buyers with
  large x do not overflow; the gradient is analytic;
- conditional expectations use Euler's transformation
  ``(1-z)^(r+x) 2F1(r+x, b+x; a+b+x-1; z) = (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)``, whose
  parameters do not grow with x, so the hypergeometric term stays O(1) for long, busy histories.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from ._hypergeometric import near_one
from ._optim import fit_mle, split_value_and_gradient
from ._validation import customer_arrays, horizon, positive_array, positive_params
from .counts import bgnbd_count_pmf, purchase_counts, purchase_wait
from .dert import dert_by_integration
from .errors import DataError, FitError

FloatArray = NDArray[np.float64]

# Grids of at least this many (horizon, customer) cells evaluate 2F1 from per-x tables.
_TABLE_MIN_SIZE = 1 << 20
_TABLE_INTERVALS = 2048
_TABLE_TOLERANCE = 1e-12

# Within this distance of a = 1 the closed form cancels 0/0; interpolate linearly between the
# values at 1 +/- _A_ONE_STEP instead (error O(step^2), far below 1e-6 relative).
_A_ONE_STEP = 1e-4


class SampledCustomers(NamedTuple):
    """Synthetic per-customer summary drawn from a model."""

    frequency: FloatArray
    recency: FloatArray
    T: FloatArray


@dataclass(frozen=True)
class BetaGeoModel:
    """A BG/NBD model with known parameters (from :meth:`fit` or :meth:`from_params`).

    Attributes:
        r, alpha: shape and rate of the gamma distribution of purchase rates.
        a, b: parameters of the beta distribution of the dropout probability.
        log_likelihood: total log-likelihood of the fit (``nan`` for ``from_params``).
        standard_errors: asymptotic standard errors of the fit, by parameter name.
        n_customers: number (total weight) of customers the model was fitted on.
    """

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = math.nan
    standard_errors: dict[str, float] = field(default_factory=dict)
    n_customers: float = 0.0

    def __post_init__(self) -> None:
        positive_params("BG/NBD", r=self.r, alpha=self.alpha, a=self.a, b=self.b)

    @property
    def params(self) -> dict[str, float]:
        """The parameters as ``{"r": ..., "alpha": ..., "a": ..., "b": ...}``."""
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}

    @classmethod
    def from_params(
        cls,
        r: float,
        alpha: float,
        a: float,
        b: float,
        *,
        log_likelihood: float = math.nan,
        standard_errors: dict[str, float] | None = None,
    ) -> BetaGeoModel:
        """A model with given parameters (a stored fit, published values)."""
        return cls(
            float(r),
            float(alpha),
            float(a),
            float(b),
            log_likelihood=float(log_likelihood),
            standard_errors=dict(standard_errors or {}),
        )

    @classmethod
    def fit(
        cls,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        *,
        penalizer: float = 0.0,
        weights: ArrayLike | None = None,
        initial_params: dict[str, float] | None = None,
    ) -> BetaGeoModel:
        """Maximum-likelihood fit.

        Args:
            frequency, recency, T: per-customer x, t_x and T (see ``summary.py``).
            penalizer: L2 penalty on the parameters, as lifetimes' ``penalizer_coef`` (which
                lifetimes applies after rescaling time so that max(T) = 1: pass T / max(T)
                and recency / max(T) to reproduce its penalised fits).
            weights: optional number of customers per row (for de-duplicated data).
            initial_params: starting values; defaults work for data in days or weeks.

        Raises:
            FitError: empty or invalid data, no repeat customers, or no convergence.
        """
        x, tx, big_t = customer_arrays(frequency, recency, T, error=FitError, allow_empty=False)
        x, tx, big_t = x.ravel(), tx.ravel(), big_t.ravel()
        if weights is None:
            w = np.ones_like(x)
        else:
            w = np.broadcast_to(positive_array(weights, "weights", error=FitError), x.shape)
        if not np.any(x > 0):
            raise FitError(
                f"BG/NBD needs repeat customers to estimate the purchase and dropout processes; "
                f"all {x.size} customers have frequency 0"
            )
        data = _Likelihood(x, tx, big_t, np.asarray(w, dtype=np.float64))
        # Start with a mean purchase rate r / alpha equal to the observed repeat rate.
        observed_rate = float(np.dot(w, x) / np.dot(w, big_t))
        start = initial_params or {"r": 1.0, "alpha": 1.0 / observed_rate, "a": 1.0, "b": 1.0}
        value, gradient = split_value_and_gradient(data.value_and_gradient)
        result = fit_mle(
            value,
            gradient,
            {k: start[k] for k in ("r", "alpha", "a", "b")},
            penalizer=penalizer,
            n_observations=data.total_weight,
            model_name="BG/NBD",
        )
        p = result.params
        return cls(
            p["r"],
            p["alpha"],
            p["a"],
            p["b"],
            log_likelihood=result.log_likelihood,
            standard_errors=result.standard_errors,
            n_customers=data.total_weight,
        )

    def log_likelihood_of(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Per-customer log-likelihood of (x, t_x, T) under this model."""
        x, tx, big_t = customer_arrays(frequency, recency, T)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        log_t = np.log(alpha + big_t)
        ll = gammaln(r + x) - gammaln(r) + r * math.log(alpha) + betaln(a, b + x) - betaln(a, b)
        ll -= (r + x) * log_t
        return np.asarray(ll + np.where(x > 0, np.logaddexp(0.0, self._z(x, tx, big_t)), 0.0))

    def probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """P(still active at T | x, t_x, T)."""
        x, tx, big_t = customer_arrays(frequency, recency, T)
        return np.where(x > 0, expit(-self._z(x, tx, big_t)), 1.0)

    def conditional_expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """E[Y(t) | x, t_x, T]: expected repeat purchases in (T, T + t].

        ``t`` broadcasts against the customer arrays with numpy rules; a column of horizons
        (shape ``(k, 1)``) against ``n`` customers gives a ``(k, n)`` result, computed once per
        distinct (x, T) pair (cheap for day-resolution data with many customers).
        """
        x, tx, big_t = customer_arrays(frequency, recency, T)
        t_arr = horizon(t)
        alive = np.where(x > 0, expit(-self._z(x, tx, big_t)), 1.0)
        grid = x.ndim == 1 and t_arr.ndim >= 2 and t_arr.shape[-1] == 1 and x.size > 1
        if grid and _repeats_often(big_t):
            # A grid of horizons: evaluate the hypergeometric part per distinct (x, T) only.
            pairs, inverse = _unique_pairs(x, big_t)
            part = self._purchases_if_alive(t_arr, pairs[0], pairs[1])
            return np.asarray(part[..., inverse] * alive, dtype=np.float64)
        return np.asarray(self._purchases_if_alive(t_arr, x, big_t) * alive, dtype=np.float64)

    def expected_purchases(self, t: ArrayLike) -> FloatArray:
        """E[X(t)]: expected repeat purchases of a new customer in (0, t]."""
        t_arr = horizon(t)
        zero = np.zeros(())
        return np.asarray(self._purchases_if_alive(t_arr, zero, zero), dtype=np.float64)

    def probability_of_no_purchase(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """P(Y(t) = 0 | x, t_x, T): no purchase in (T, T + t].

        A BG/NBD customer drops out only right after a purchase, so one who buys nothing stays
        as they are: P(dead) + P(alive) E[exp(-lambda t)], with lambda ~ Gamma(r + x,
        alpha + T) given the history, i.e. (1 - P(alive)) + P(alive) ((alpha + T) /
        (alpha + T + t))^(r + x).
        """
        x, tx, big_t = customer_arrays(frequency, recency, T)
        t_arr = horizon(t)
        alive = self.probability_alive(x, tx, big_t)
        quiet = np.exp(
            (self.r + x) * (np.log(self.alpha + big_t) - np.log(self.alpha + big_t + t_arr))
        )
        return np.asarray(1.0 - alive + alive * quiet, dtype=np.float64)

    def time_to_next_purchase(
        self, frequency: ArrayLike, T: ArrayLike, *, quantile: float | None = 0.5
    ) -> FloatArray:
        """The time from T to the next purchase of a customer who is alive at T (in the
        model's unit): while alive, purchases are Poisson(lambda) with lambda ~ Gamma(r + x,
        alpha + T) given the history, so the waiting time is Lomax (Pareto II) with shape
        r + x and scale alpha + T. ``quantile`` q gives (alpha + T) ((1 - q)^(-1/(r+x)) - 1)
        (the median by default); None gives the mean (alpha + T) / (r + x - 1), infinite when
        r + x <= 1 (the waiting time then has no mean). A BG/NBD customer drops out only right
        after a purchase, so one alive at T does make that purchase. Weighting by P(alive) is
        the caller's: a customer who dropped out buys never.
        """
        x, _, big_t = customer_arrays(frequency, np.zeros_like(np.asarray(frequency, float)), T)
        return purchase_wait(self.r + x, self.alpha + big_t, quantile)

    def probability_of_purchases(self, t: ArrayLike, n: ArrayLike) -> FloatArray:
        """P(X(t) = n): a new customer makes exactly ``n`` repeat purchases in (0, t]
        (Fader, Hardie & Lee 2005, eq. 8; see :func:`~.counts.bgnbd_count_pmf`); ``t`` and
        ``n`` broadcast with numpy rules."""
        t_arr = horizon(t)
        n_arr = purchase_counts(n)
        return bgnbd_count_pmf(self.r, self.alpha, self.a, self.b, t_arr, n_arr)

    def conditional_probability_of_purchases(
        self, t: ArrayLike, n: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """P(n purchases in (T, T + t] | x, t_x, T): dead, (1 - P(alive)) [n = 0], or alive
        and then a new customer with lambda ~ Gamma(r + x, alpha + T), p ~ Beta(a, b + x)
        (see :mod:`~.counts`). All arguments broadcast."""
        x, tx, big_t = customer_arrays(frequency, recency, T)
        t_arr = horizon(t)
        n_arr = purchase_counts(n)
        alive = self.probability_alive(x, tx, big_t)
        fresh = bgnbd_count_pmf(self.r + x, self.alpha + big_t, self.a, self.b + x, t_arr, n_arr)
        return np.asarray(alive * fresh + (1.0 - alive) * (n_arr == 0), dtype=np.float64)

    def discounted_expected_residual_transactions(
        self, delta: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """DERT at continuous discount rate ``delta`` per time unit (see :mod:`~.dert`), by
        quadrature of the conditional expectation; one value per customer."""
        x, tx, big_t = customer_arrays(frequency, recency, T)
        shape = x.shape
        values = dert_by_integration(self, delta, x.ravel(), tx.ravel(), big_t.ravel())
        return values.reshape(shape)

    def sample(
        self, T: ArrayLike, *, seed: int | np.random.Generator | None = None
    ) -> SampledCustomers:
        """Draw one synthetic customer per entry of ``T`` (their observation lengths).

        Exact simulation: with lambda ~ Gamma(r, alpha) and p ~ Beta(a, b), the purchases in
        (0, T] are N ~ Poisson(lambda T); the customer drops out at their J-th repeat purchase
        with J ~ Geometric(p), so x = min(N, J), and t_x is the x-th of N uniform order
        statistics on (0, T], i.e. T * Beta(x, N - x + 1).
        """
        big_t = positive_array(T, "T").ravel()
        rng = np.random.default_rng(seed)
        n = big_t.size
        lam = rng.gamma(self.r, 1.0 / self.alpha, n)
        p = rng.beta(self.a, self.b, n)
        purchases = rng.poisson(lam * big_t)
        # p can underflow to 0 for small a; such a customer never drops out.
        dropout_at = rng.geometric(np.maximum(p, 1e-300))
        x = np.minimum(purchases, dropout_at)
        has = x > 0
        position = rng.beta(np.where(has, x, 1), np.where(has, purchases - x + 1, 1))
        recency = np.where(has, big_t * position, 0.0)
        return SampledCustomers(x.astype(np.float64), recency, big_t.copy())

    # -- internals -------------------------------------------------------------------------

    def _z(self, x: FloatArray, tx: FloatArray, big_t: FloatArray) -> FloatArray:
        """log of the odds against being alive; only meaningful where x > 0."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        with np.errstate(divide="ignore", invalid="ignore"):
            c = math.log(a) - np.log(np.where(x > 0, b + x - 1, 1.0))
            return np.asarray(c + (r + x) * (np.log(alpha + big_t) - np.log(alpha + tx)))

    def _purchases_if_alive(self, t: FloatArray, x: FloatArray, big_t: FloatArray) -> FloatArray:
        """(a+b+x-1)/(a-1) * [1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)], z = t/(alpha+T+t)."""
        if abs(self.a - 1.0) < _A_ONE_STEP:
            lo = self._purchases_if_alive_b(1.0 - _A_ONE_STEP, t, x, big_t)
            hi = self._purchases_if_alive_b(1.0 + _A_ONE_STEP, t, x, big_t)
            weight = (self.a - (1.0 - _A_ONE_STEP)) / (2 * _A_ONE_STEP)
            return lo + (hi - lo) * weight
        return self._purchases_if_alive_b(self.a, t, x, big_t)

    def _purchases_if_alive_b(
        self, a: float, t: FloatArray, x: FloatArray, big_t: FloatArray
    ) -> FloatArray:
        """As :meth:`_purchases_if_alive` for ``a``; within _A_ONE_STEP of a + b = 1, where
        2F1's third parameter a + b - 1 + x is 0 for x = 0 (a pole, with the prefactor 0),
        interpolated linearly in b between the values at a + b = 1 +/- _A_ONE_STEP."""
        b = self.b
        if abs(a + b - 1.0) < _A_ONE_STEP and 1.0 - a - _A_ONE_STEP > 0:
            lo_b, hi_b = 1.0 - a - _A_ONE_STEP, 1.0 - a + _A_ONE_STEP
            lo = self._purchases_if_alive_at(a, lo_b, t, x, big_t)
            hi = self._purchases_if_alive_at(a, hi_b, t, x, big_t)
            return lo + (hi - lo) * ((b - lo_b) / (hi_b - lo_b))
        return self._purchases_if_alive_at(a, b, t, x, big_t)

    def _purchases_if_alive_at(
        self, a: float, b: float, t: FloatArray, x: FloatArray, big_t: FloatArray
    ) -> FloatArray:
        r, alpha = self.r, self.alpha
        log_ratio = np.log(alpha + big_t) - np.log(alpha + big_t + t)  # ln(1 - z)
        z = -np.expm1(log_ratio)
        if x.ndim == 1 and z.ndim == 2 and z.shape[1] == x.size and z.size >= _TABLE_MIN_SIZE:
            g = _hyp2f1_tabulated(a + b - 1 - r, a - 1, a + b - 1, x, z)
        else:
            g = hyp2f1(a + b - 1 - r, a - 1, (a + b - 1) + x, z)
        g = near_one(g, a + b - 1 - r, a - 1, (a + b - 1) + x, z, -log_ratio)
        # 1 - (1-z)^(a-1) g: in log space (no cancellation near 1) while g > 0; the
        # hypergeometric term turns negative when a + b + x - 1 < 0 (a + b < 1 and x = 0,
        # say), and then there is nothing to cancel.
        positive = g > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            in_log = -np.expm1((a - 1) * log_ratio + np.log(np.where(positive, g, 1.0)))
        bracket = np.where(positive, in_log, 1.0 - np.exp((a - 1) * log_ratio) * g)
        return np.asarray((a + b + x - 1) / (a - 1) * bracket)


def _hyp2f1_tabulated(p: float, q: float, c0: float, x: FloatArray, z: FloatArray) -> FloatArray:
    """2F1(p, q; c0 + x; z) for a (horizons, customers) grid ``z`` and whole-number ``x``.

    For each x shared by many grid cells, 2F1 is tabulated with its derivative on a uniform
    grid over [0, max z] and evaluated by cubic Hermite interpolation; the table is checked
    against 2F1 at every interval midpoint and used only if it is within _TABLE_TOLERANCE
    there. Other x values (rare ones, or a failed check) get 2F1 directly, so the result is
    2F1 to ~1e-12 whatever the parameters, for a fraction of the per-cell cost.
    """
    xs, x_index = _distinct_counts(x)
    cells = np.bincount(x_index, minlength=xs.size) * z.shape[0]
    z_max = float(z.max())
    # A table costs 3 (n + 1) 2F1 calls; it pays for an x with many more cells than that.
    tabulate = cells >= 8 * (_TABLE_INTERVALS + 1)
    if z_max <= 0 or not tabulate.any():
        return np.asarray(hyp2f1(p, q, c0 + x, z))
    step = z_max / _TABLE_INTERVALS
    nodes = np.linspace(0.0, z_max, _TABLE_INTERVALS + 1)
    c = (c0 + xs[tabulate])[:, None]
    values = hyp2f1(p, q, c, nodes)
    slopes = p * q / c * hyp2f1(p + 1, q + 1, c + 1, nodes) * step  # d/ds with z = step * s
    middle = hyp2f1(p, q, c, nodes[:-1] + step / 2)
    at_middle = (values[:, :-1] + values[:, 1:]) / 2 + (slopes[:, :-1] - slopes[:, 1:]) / 8
    accurate = np.all(np.abs(at_middle - middle) <= _TABLE_TOLERANCE, axis=1)
    accurate &= np.all(np.isfinite(values), axis=1) & np.all(np.isfinite(slopes), axis=1)
    if not accurate.any():
        return np.asarray(hyp2f1(p, q, c0 + x, z))
    table_row = np.full(xs.size, -1)
    table_row[np.flatnonzero(tabulate)[accurate]] = np.arange(int(accurate.sum()))
    values, slopes = values[accurate].ravel(), slopes[accurate].ravel()

    row = table_row[x_index]  # per customer: row of its table, or -1
    u = z / step
    interval = np.minimum(u.astype(np.intp), _TABLE_INTERVALS - 1)
    s = u - interval
    at = np.maximum(row, 0) * (_TABLE_INTERVALS + 1) + interval
    s2 = s * s
    g = (
        (1 + 2 * s) * (1 - s) ** 2 * values[at]
        + s2 * (3 - 2 * s) * values[at + 1]
        + s * (1 - s) ** 2 * slopes[at]
        - s2 * (1 - s) * slopes[at + 1]
    )
    direct = np.flatnonzero(row < 0)
    if direct.size:
        g[:, direct] = hyp2f1(p, q, c0 + x[direct], z[:, direct])
    return np.asarray(g)


def _unique_pairs(
    x: FloatArray, big_t: FloatArray
) -> tuple[tuple[FloatArray, FloatArray], NDArray[np.intp]]:
    """Distinct (x, T) pairs and the index of each customer's pair."""
    order = np.lexsort((big_t, x))
    xs, ts = x[order], big_t[order]
    new = np.empty(x.size, dtype=bool)
    new[:1] = True
    np.not_equal(xs[1:], xs[:-1], out=new[1:])
    new[1:] |= ts[1:] != ts[:-1]
    group = np.cumsum(new) - 1
    inverse = np.empty(x.size, dtype=np.intp)
    inverse[order] = group
    return (xs[new], ts[new]), inverse


class _Likelihood:
    """BG/NBD negative log-likelihood and gradient as sums of sufficient statistics.

    Terms that depend on x alone are computed once per distinct x; ln(alpha+T) and
    ln(alpha+t_x) once per distinct T and t_x when values repeat (data at day resolution has
    a few hundred distinct T among millions of customers).
    """

    def __init__(self, x: FloatArray, tx: FloatArray, big_t: FloatArray, w: FloatArray) -> None:
        if not np.all(np.isfinite(w)):
            raise DataError("weights must be finite")
        self.total_weight = float(w.sum())
        self.xs, x_index = _distinct_counts(x)
        self.n_x = _weighted_counts(x_index, weights=w, minlength=self.xs.size)
        self.t_values, t_index = _distinct(big_t)
        self.w_t = _weighted_counts(t_index, weights=w, minlength=self.t_values.size)
        self.wx_t = _weighted_counts(t_index, weights=w * x, minlength=self.t_values.size)
        rep = np.flatnonzero(x > 0)
        self.x_rep = x[rep]
        self.w_rep = w[rep]
        self.x_index_rep = x_index[rep]
        self.t_index_rep = t_index[rep]
        self.tx_values, tx_index = _distinct(tx[rep])
        # None when every repeat customer has their own t_x (no gather needed).
        self.tx_index_rep = None if tx_index.size == self.tx_values.size else tx_index
        self.unit_weights = bool(np.all(w == 1.0))
        self.rep_xs = self.xs > 0

    def value_and_gradient(self, theta: FloatArray) -> tuple[float, FloatArray]:
        r, alpha, a, b = (float(v) for v in theta)
        xs, n_x, total = self.xs, self.n_x, self.total_weight

        log_t = np.log(alpha + self.t_values)
        inv_t = 1.0 / (alpha + self.t_values)
        log_tx = np.log(alpha + self.tx_values)
        inv_tx = 1.0 / (alpha + self.tx_values)
        if self.tx_index_rep is not None:
            log_tx, inv_tx = log_tx[self.tx_index_rep], inv_tx[self.tx_index_rep]
        u = log_t[self.t_index_rep] - log_tx  # ln((alpha+T)/(alpha+t_x))
        c = np.zeros(xs.shape)
        c[self.rep_xs] = math.log(a) - np.log(b + xs[self.rep_xs] - 1)
        r_x = r + self.x_rep
        z = c[self.x_index_rep] + r_x * u
        # Stable softplus(z) = ln(1 + e^z) and sigmoid(z) = 1 / (1 + e^-z); e^-z may overflow
        # to inf for z < -709, where the sigmoid correctly becomes 0.
        softplus = np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))
        with np.errstate(over="ignore"):
            s = 1.0 / (1.0 + np.exp(-z))
        if not self.unit_weights:
            s *= self.w_rep

        ll = (
            _dot(n_x, gammaln(r + xs) + betaln(a, b + xs))
            - total * (gammaln(r) - r * math.log(alpha) + betaln(a, b))
            - r * _dot(self.w_t, log_t)
            - _dot(self.wx_t, log_t)
            + (float(softplus.sum()) if self.unit_weights else _dot(self.w_rep, softplus))
        )

        dig_abx = digamma(a + b + xs)
        d_r = (
            _dot(n_x, digamma(r + xs))
            - total * (digamma(r) - math.log(alpha))
            - _dot(self.w_t, log_t)
            + _dot(s, u)
        )
        d_alpha = (
            total * r / alpha
            - r * _dot(self.w_t, inv_t)
            - _dot(self.wx_t, inv_t)
            + _dot(s * r_x, inv_t[self.t_index_rep] - inv_tx)
        )
        s_by_x = _weighted_counts(self.x_index_rep, weights=s, minlength=xs.size)
        d_a = (
            _dot(n_x, digamma(a) - dig_abx)
            - total * (digamma(a) - digamma(a + b))
            + s_by_x.sum() / a
        )
        inv_b = np.zeros(xs.shape)
        inv_b[self.rep_xs] = 1.0 / (b + xs[self.rep_xs] - 1)
        d_b = (
            _dot(n_x, digamma(b + xs) - dig_abx)
            - total * (digamma(b) - digamma(a + b))
            - _dot(s_by_x, inv_b)
        )
        return -float(ll), -np.array([d_r, d_alpha, d_a, d_b])


def _weighted_counts(index: NDArray[np.intp], weights: FloatArray, minlength: int) -> FloatArray:
    """Sum of ``weights`` per index value (``np.bincount`` with weights, typed as float)."""
    return np.bincount(index, weights=weights, minlength=minlength).astype(np.float64, copy=False)


def _dot(u: NDArray[np.floating[Any]], v: NDArray[np.floating[Any]]) -> float:
    """Inner product; long vectors avoid BLAS, whose worker threads stall on a busy machine."""
    if u.size < 8192:
        return float(u @ v)
    return float(np.einsum("i,i->", u, v))


def _distinct_counts(x: FloatArray) -> tuple[FloatArray, NDArray[np.intp]]:
    """Distinct whole-number frequencies and each customer's index, by counting, not sorting."""
    top = int(x.max()) if x.size else 0
    if top > 4 * x.size + 1000:
        distinct, index = np.unique(x, return_inverse=True)
        return distinct, index.reshape(-1)
    as_int = x.astype(np.intp)
    present = np.bincount(as_int, minlength=top + 1) > 0
    position = np.cumsum(present) - 1
    return np.flatnonzero(present).astype(np.float64), position[as_int]


def _repeats_often(values: FloatArray) -> bool:
    """Whether de-duplicating ``values`` pays: judged on a systematic sample of ~1,000."""
    if values.size <= 1000:
        return True
    sample = values[:: values.size // 1000]
    return bool(np.unique(sample).size <= 0.5 * sample.size)


def _distinct(values: FloatArray) -> tuple[FloatArray, NDArray[np.intp]]:
    """(distinct values, index of each value) when values repeat a lot, else (values, arange)."""
    if not _repeats_often(values):
        return values, np.arange(values.size)
    distinct, index = np.unique(values, return_inverse=True)
    return distinct, index.reshape(-1)
