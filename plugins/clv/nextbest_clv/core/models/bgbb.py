"""BG/BB: the beta-geometric / beta-binomial model of discrete-time repeat buying.

Fader, Hardie & Shang (2010), "Customer-Base Analysis in a Discrete-Time Noncontractual
Setting", Marketing Science 29(6). Customers have discrete transaction opportunities (a yearly
donation drive, a weekly market day) after their first transaction: while alive, a customer
transacts at each opportunity with probability p ~ Beta(alpha, beta); before each opportunity
an alive customer becomes inactive with probability theta ~ Beta(gamma, delta), so they are
alive at opportunity t with probability (1 - theta)^t. Data per customer: x transactions in
the n opportunities observed, the last at opportunity t_x (0 when x = 0).

Closed forms (FHS 2010; B the beta function, everything in log space):

- likelihood (eq. 5): B(alpha+x, beta+n-x)/B(alpha, beta) B(gamma, delta+n)/B(gamma, delta)
  + sum_{i=0}^{n-t_x-1} B(alpha+x, beta+t_x-x+i)/B(alpha, beta)
  B(gamma+1, delta+t_x+i)/B(gamma, delta);
- P(alive at opportunity n+1 | x, t_x, n) (eq. 11): the first term with delta + n + 1, over L;
- E[transactions in opportunities n+1 .. n+m | x, t_x, n] (eq. 13):
  B(alpha+x+1, beta+n-x)/B(alpha, beta) / L * S(n, n+m), with
  S(n, k) = sum_{t=n+1}^{k} B(gamma, delta+t)/B(gamma, delta)
          = delta/(gamma-1) Gamma(gamma+delta)/Gamma(1+delta)
            [Gamma(1+delta+n)/Gamma(gamma+delta+n) - Gamma(1+delta+k)/Gamma(gamma+delta+k)];
- E[X(n)] of a new customer (eq. 9): alpha/(alpha+beta) S(0, n);
- P(X(n) = x) of a new customer (eq. 8): C(n, x) B(alpha+x, beta+n-x)/B(alpha, beta)
  B(gamma, delta+n)/B(gamma, delta) + sum_{i=x}^{n-1} C(i, x) B(alpha+x, beta+i-x)/B(alpha, beta)
  B(gamma+1, delta+i)/B(gamma, delta).

Near gamma = 1 the factor delta/(gamma-1) cancels 0/0; within 1e-5 of it S is interpolated
linearly between gamma = 1 +/- 1e-5 (error O(1e-10) relative).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betaln, gammaln, logsumexp

from ._optim import fit_mle
from .errors import DataError, FitError

FloatArray = NDArray[np.float64]

__all__ = ["BetaGeoBetaBinomModel", "BinomialSample", "discrete_customer_arrays"]

_GAMMA_ONE_STEP = 1e-5
PARAM_NAMES = ("alpha", "beta", "gamma", "delta")


class BinomialSample(NamedTuple):
    """Synthetic BG/BB customers (see :meth:`BetaGeoBetaBinomModel.sample`)."""

    frequency: FloatArray
    recency: FloatArray
    n_periods: FloatArray


def discrete_customer_arrays(
    frequency: ArrayLike, recency: ArrayLike, n_periods: ArrayLike, *, error: type[ValueError]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(x, t_x, n) as float64 arrays of one shape: whole numbers with 0 <= x <= t_x <= n,
    n >= 1, and t_x = 0 exactly when x = 0 (t_x >= x since one transaction per opportunity)."""
    try:
        x, tx, n = np.broadcast_arrays(
            *(np.asarray(v, dtype=np.float64) for v in (frequency, recency, n_periods))
        )
    except ValueError as exc:
        raise error(f"frequency, recency and n_periods must have compatible shapes: {exc}") from exc
    for name, arr in (("frequency", x), ("recency", tx), ("n_periods", n)):
        if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr % 1 != 0):
            raise error(f"{name} must be whole numbers >= 0 (transaction opportunities)")
    if np.any(n < 1):
        raise error("n_periods must be >= 1 (opportunities after the first transaction)")
    if np.any(tx > n) or np.any(x > tx) or np.any((x == 0) != (tx == 0)):
        raise error(
            "need 0 <= frequency <= recency <= n_periods, with recency = 0 exactly when "
            "frequency = 0 (one transaction per opportunity at most)"
        )
    return x, tx, n


def _distinct_rows(*columns: FloatArray) -> tuple[tuple[FloatArray, ...], NDArray[np.intp]]:
    """The distinct rows of whole-number columns (>= 0) and each row's index among them: one
    int64 key per row (mixed radix), as np.unique over rows (axis=0) is many times slower."""
    key = np.zeros(columns[0].shape, dtype=np.int64)
    radix = [int(c.max()) + 1 if c.size else 1 for c in columns]
    for column, base in zip(columns, radix, strict=True):
        key = key * base + column.astype(np.int64)
    keys, inverse = np.unique(key, return_inverse=True)
    out: list[FloatArray] = []
    for base in reversed(radix):
        out.append((keys % base).astype(np.float64))
        keys = keys // base
    return tuple(reversed(out)), inverse.ravel()


def _log_likelihood(
    params: tuple[float, float, float, float], x: FloatArray, tx: FloatArray, n: FloatArray
) -> FloatArray:
    alpha, beta, gamma, delta = params
    base_ab = betaln(alpha, beta)
    base_gd = betaln(gamma, delta)
    alive = betaln(alpha + x, beta + n - x) - base_ab + betaln(gamma, delta + n) - base_gd
    gap = n - tx
    top = int(np.max(gap)) if x.size else 0
    if top == 0:
        return np.asarray(alive)
    # The dead-before-n terms depend on (x, t_x) and i only; n sets how many are summed. So
    # compute them once per distinct (x, t_x) and take running log-sums (customers with many
    # opportunities share a few thousand (x, t_x) pairs at most).
    (pair_x, pair_tx), which = _distinct_rows(x, tx)
    i = np.arange(top, dtype=np.float64)[None, :]
    px, ptx = pair_x[:, None], pair_tx[:, None]
    terms = (
        betaln(alpha + px, beta + ptx - px + i) - base_ab + betaln(gamma + 1.0, delta + ptx + i)
    ) - base_gd
    running = np.logaddexp.accumulate(terms, axis=1)  # i = 0 .. k - 1 summed at column k - 1
    column = np.maximum(gap - 1, 0).astype(np.intp)
    dead = np.where(gap > 0, running[which, column], -np.inf)
    return np.asarray(np.logaddexp(alive, dead))


@dataclass(frozen=True)
class BetaGeoBetaBinomModel:
    """A BG/BB model (see the module doc); opportunities are counted in whole periods.

    Attributes:
        alpha, beta: the beta distribution of the transaction probability p.
        gamma, delta: the beta distribution of the dropout probability theta.
        log_likelihood, standard_errors, n_customers: from :meth:`fit` (NaN, {} and 0 else).
    """

    alpha: float
    beta: float
    gamma: float
    delta: float
    log_likelihood: float = math.nan
    standard_errors: dict[str, float] = field(default_factory=dict)
    n_customers: int = 0

    def __post_init__(self) -> None:
        for name in PARAM_NAMES:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise DataError(f"BG/BB: parameters must be finite and > 0, got {name} = {value}")

    @property
    def params(self) -> dict[str, float]:
        """``{"alpha": ..., "beta": ..., "gamma": ..., "delta": ...}``."""
        return {"alpha": self.alpha, "beta": self.beta, "gamma": self.gamma, "delta": self.delta}

    @classmethod
    def from_params(
        cls, alpha: float, beta: float, gamma: float, delta: float
    ) -> BetaGeoBetaBinomModel:
        """A model with known parameters (a stored fit or published values)."""
        return cls(float(alpha), float(beta), float(gamma), float(delta))

    @classmethod
    def fit(
        cls,
        frequency: ArrayLike,
        recency: ArrayLike,
        n_periods: ArrayLike,
        *,
        weights: ArrayLike | None = None,
        penalizer: float = 0.0,
    ) -> BetaGeoBetaBinomModel:
        """Maximum-likelihood fit to (x, t_x, n) per customer, or per group of ``weights``
        identical customers (as the donations data is published).

        Raises:
            FitError: invalid data, nobody transacting again, or no convergence.
        """
        x, tx, n = discrete_customer_arrays(frequency, recency, n_periods, error=FitError)
        x, tx, n = x.ravel(), tx.ravel(), n.ravel()
        w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
        if w.shape != x.shape or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise FitError("weights must be one finite number >= 0 per customer")
        if x.size == 0 or w.sum() <= 0:
            raise FitError("BG/BB: no customers to fit")
        if not np.any((x > 0) & (w > 0)):
            raise FitError("BG/BB: nobody transacted again (all frequency = 0)")
        (ux, utx, un), inverse = _distinct_rows(x, tx, n)
        grouped = np.bincount(inverse, weights=w, minlength=ux.size)

        def objective(theta: FloatArray) -> float:
            a, b, g, d = (float(v) for v in theta)
            value = -float(grouped @ _log_likelihood((a, b, g, d), ux, utx, un))
            return value if math.isfinite(value) else math.inf

        result = fit_mle(
            objective,
            None,
            {"alpha": 1.0, "beta": 1.0, "gamma": 1.0, "delta": 1.0},
            penalizer=penalizer,
            n_observations=float(w.sum()),
            model_name="BG/BB",
        )
        p = result.params
        return cls(
            p["alpha"],
            p["beta"],
            p["gamma"],
            p["delta"],
            result.log_likelihood,
            result.standard_errors,
            round(float(w.sum())),
        )

    def _tuple(self) -> tuple[float, float, float, float]:
        return (self.alpha, self.beta, self.gamma, self.delta)

    def log_likelihood_of(
        self, frequency: ArrayLike, recency: ArrayLike, n_periods: ArrayLike
    ) -> FloatArray:
        """Per-customer log-likelihood of (x, t_x, n)."""
        x, tx, n = discrete_customer_arrays(frequency, recency, n_periods, error=DataError)
        ll = _log_likelihood(self._tuple(), x.ravel(), tx.ravel(), n.ravel())
        return ll.reshape(x.shape)

    def probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, n_periods: ArrayLike, m: ArrayLike = 1
    ) -> FloatArray:
        """P(alive at opportunity n + m | x, t_x, n); m = 1 (the next opportunity) is FHS's
        eq. 11. ``m`` (whole, >= 0) broadcasts against the customers."""
        x, tx, n = discrete_customer_arrays(frequency, recency, n_periods, error=DataError)
        ahead = _whole(m, "m")
        ll = self.log_likelihood_of(x, tx, n)
        a, b, g, d = self._tuple()
        log_alive = (
            betaln(a + x, b + n - x) - betaln(a, b) + betaln(g, d + n + ahead) - betaln(g, d)
        )
        return np.asarray(np.exp(log_alive - ll), dtype=np.float64)

    def conditional_expected_purchases(
        self, m: ArrayLike, frequency: ArrayLike, recency: ArrayLike, n_periods: ArrayLike
    ) -> FloatArray:
        """E[transactions at opportunities n+1 .. n+m | x, t_x, n] (FHS eq. 13); ``m``
        broadcasts (a column of horizons against customers gives a grid)."""
        x, tx, n = discrete_customer_arrays(frequency, recency, n_periods, error=DataError)
        ahead = _whole(m, "m")
        ll = self.log_likelihood_of(x, tx, n)
        a, b = self.alpha, self.beta
        lead = np.exp(betaln(a + x + 1, b + n - x) - betaln(a, b) - ll)
        return np.asarray(lead * self._alive_sum(n, n + ahead), dtype=np.float64)

    def expected_purchases(self, n_periods: ArrayLike) -> FloatArray:
        """E[X(n)]: expected transactions of a new customer in their first n opportunities
        (FHS eq. 9)."""
        n = _whole(n_periods, "n_periods")
        return np.asarray(self.alpha / (self.alpha + self.beta) * self._alive_sum(0.0 * n, n))

    def probability_of_purchases(self, n_periods: ArrayLike, k: ArrayLike) -> FloatArray:
        """P(X(n) = k): a new customer transacts at exactly ``k`` of their first ``n``
        opportunities (FHS eq. 8); ``n_periods`` and ``k`` broadcast. The sum over the
        opportunity of dropout runs to the largest n given."""
        n_arr, k_arr = np.broadcast_arrays(_whole(n_periods, "n_periods"), _whole(k, "k"))
        a, b, g, d = self._tuple()
        log_choose = gammaln(n_arr + 1) - gammaln(k_arr + 1) - gammaln(n_arr - k_arr + 1)
        with np.errstate(invalid="ignore"):
            alive = np.where(
                k_arr <= n_arr,
                log_choose
                + betaln(a + k_arr, b + n_arr - k_arr)
                - betaln(a, b)
                + betaln(g, d + n_arr)
                - betaln(g, d),
                -np.inf,
            )
        top = int(n_arr.max()) if n_arr.size else 0
        i = np.arange(top, dtype=np.float64).reshape((top,) + (1,) * n_arr.ndim)
        with np.errstate(invalid="ignore"):
            dead = (
                gammaln(i + 1)
                - gammaln(k_arr + 1)
                - gammaln(i - k_arr + 1)
                + betaln(a + k_arr, b + i - k_arr)
                - betaln(a, b)
                + betaln(g + 1, d + i)
                - betaln(g, d)
            )
        dead = np.where((i >= k_arr) & (i < n_arr), dead, -np.inf)
        total = np.logaddexp(alive, logsumexp(dead, axis=0)) if top else alive
        return np.asarray(np.exp(total), dtype=np.float64)

    def sample(
        self, n_periods: ArrayLike, *, seed: int | np.random.Generator | None = None
    ) -> BinomialSample:
        """One synthetic customer per entry of ``n_periods``: p ~ Beta(alpha, beta), theta ~
        Beta(gamma, delta), alive at opportunity t while t < D, D ~ Geometric(theta), a
        transaction at each opportunity alive with probability p."""
        n = _whole(n_periods, "n_periods").ravel()
        if np.any(n < 1):
            raise DataError("n_periods must be >= 1")
        rng = np.random.default_rng(seed)
        size = n.size
        p = rng.beta(self.alpha, self.beta, size)
        theta = rng.beta(self.gamma, self.delta, size)
        death = rng.geometric(np.maximum(theta, 1e-300))  # first opportunity not alive at
        t = np.arange(1, int(n.max()) + 1, dtype=np.float64)[None, :]
        alive = (t < death[:, None]) & (t <= n[:, None])
        bought = alive & (rng.random((size, t.shape[1])) < p[:, None])
        x = bought.sum(axis=1).astype(np.float64)
        last = np.where(bought, t, 0.0).max(axis=1)
        return BinomialSample(x, last, n.copy())

    # -- internals -------------------------------------------------------------------------

    def _alive_sum(self, n: FloatArray, k: FloatArray) -> FloatArray:
        """S(n, k) = sum_{t=n+1}^{k} B(gamma, delta+t)/B(gamma, delta) (module doc)."""
        g = self.gamma
        if abs(g - 1.0) < _GAMMA_ONE_STEP:
            lo = _alive_sum_at(1.0 - _GAMMA_ONE_STEP, self.delta, n, k)
            hi = _alive_sum_at(1.0 + _GAMMA_ONE_STEP, self.delta, n, k)
            return lo + (hi - lo) * (g - (1.0 - _GAMMA_ONE_STEP)) / (2 * _GAMMA_ONE_STEP)
        return _alive_sum_at(g, self.delta, n, k)


def _alive_sum_at(g: float, d: float, n: FloatArray, k: FloatArray) -> FloatArray:
    """delta/(gamma-1) A(n) (1 - A(k)/A(n)) with log A(j) = lnG(g+d) - lnG(1+d) + lnG(1+d+j)
    - lnG(g+d+j): the ratio in log space (no cancellation between A(n) and A(k))."""

    def log_a(j: FloatArray) -> FloatArray:
        return np.asarray(gammaln(g + d) - gammaln(1 + d) + gammaln(1 + d + j) - gammaln(g + d + j))

    la_n, la_k = log_a(n), log_a(k)
    return np.asarray(d / (g - 1.0) * np.exp(la_n) * -np.expm1(la_k - la_n), dtype=np.float64)


def _whole(values: ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr % 1 != 0):
        raise DataError(f"{name} must be whole numbers >= 0")
    return arr
