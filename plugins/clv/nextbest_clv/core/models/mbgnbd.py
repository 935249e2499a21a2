"""MBG/NBD: the modified BG/NBD model (Batislam, Denizel & Filiztekin 2007, "Empirical
validation and comparison of models for customer base analysis", IJRM 24(3)).

As BG/NBD (purchases Poisson(lambda), lambda ~ Gamma(r, alpha); a dropout chance p ~ Beta(a, b)
after each purchase) but the customer also has a dropout chance right after the first purchase,
so a customer with no repeat purchase is not certainly alive (BG/NBD's P(alive) = 1 at x = 0,
which overstates one-time buyers). Closed forms (Batislam et al. 2007; Wagner & Hoppe 2008):

- likelihood: Gamma(r+x) alpha^r / Gamma(r) [B(a, b+x+1)/B(a, b) (alpha+T)^-(r+x)
  + B(a+1, b+x)/B(a, b) (alpha+t_x)^-(r+x)], for every x including 0;
- P(alive | x, t_x, T) = 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x));
- given alive at T, lambda ~ Gamma(r+x, alpha+T) and p ~ Beta(a, b+x+1), and the future is
  BG/NBD's for an alive customer: so E[Y(t) | x, t_x, T] = P(alive) times BG/NBD's expectation
  if alive with b + 1 in place of b, ((a+b+x)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x)
  2F1(r+x, b+x+1; a+b+x; t/(alpha+T+t))]), computed by :class:`BetaGeoModel`'s robust
  evaluation; the count probabilities and the survival over a horizon likewise;
- E[X(t)] of a new customer: b/(a+b) (survives the first chance) times the same with x = 0,
  T = 0, i.e. b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betaln, digamma, expit, gammaln

from ._optim import fit_mle
from ._validation import customer_arrays, horizon, positive_array, positive_params
from .bgnbd import BetaGeoModel, SampledCustomers
from .counts import bgnbd_count_pmf, purchase_counts, purchase_wait
from .dert import dert_by_integration
from .errors import FitError

FloatArray = NDArray[np.float64]

__all__ = ["ModifiedBetaGeoModel"]

PARAM_NAMES = ("r", "alpha", "a", "b")


def _log_likelihood(
    params: tuple[float, float, float, float], x: FloatArray, tx: FloatArray, big_t: FloatArray
) -> FloatArray:
    r, alpha, a, b = params
    head = gammaln(r + x) - gammaln(r) + r * math.log(alpha) - betaln(a, b)
    alive = betaln(a, b + x + 1) - (r + x) * np.log(alpha + big_t)
    dead = betaln(a + 1, b + x) - (r + x) * np.log(alpha + tx)
    return np.asarray(head + np.logaddexp(alive, dead))


def _log_likelihood_gradient(
    params: tuple[float, float, float, float], x: FloatArray, tx: FloatArray, big_t: FloatArray
) -> FloatArray:
    """d log L / d (r, alpha, a, b) per customer (rows: the parameters): the head's
    derivatives plus the two branches' weighted by their share of the likelihood."""
    r, alpha, a, b = params
    log_t, log_tx = np.log(alpha + big_t), np.log(alpha + tx)
    alive = betaln(a, b + x + 1) - (r + x) * log_t
    dead = betaln(a + 1, b + x) - (r + x) * log_tx
    w_alive = np.exp(alive - np.logaddexp(alive, dead))  # the alive branch's share
    w_dead = 1.0 - w_alive
    psi_all = digamma(a + b + x + 1)
    d_head_ab = digamma(a + b)
    return np.stack(
        [
            digamma(r + x) - digamma(r) + math.log(alpha) - w_alive * log_t - w_dead * log_tx,
            r / alpha - (r + x) * (w_alive / (alpha + big_t) + w_dead / (alpha + tx)),
            -digamma(a)
            + d_head_ab
            + w_alive * (digamma(a) - psi_all)
            + w_dead * (digamma(a + 1) - psi_all),
            -digamma(b)
            + d_head_ab
            + w_alive * (digamma(b + x + 1) - psi_all)
            + w_dead * (digamma(b + x) - psi_all),
        ]
    )


@dataclass(frozen=True)
class ModifiedBetaGeoModel:
    """An MBG/NBD model (see the module doc); the same parameters and data as BG/NBD."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = math.nan
    standard_errors: dict[str, float] = field(default_factory=dict)
    n_customers: int = 0

    def __post_init__(self) -> None:
        positive_params("MBG/NBD", r=self.r, alpha=self.alpha, a=self.a, b=self.b)

    @property
    def params(self) -> dict[str, float]:
        """``{"r": ..., "alpha": ..., "a": ..., "b": ...}``."""
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}

    @classmethod
    def from_params(cls, r: float, alpha: float, a: float, b: float) -> ModifiedBetaGeoModel:
        """A model with known parameters."""
        return cls(float(r), float(alpha), float(a), float(b))

    @classmethod
    def fit(
        cls,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        *,
        penalizer: float = 0.0,
    ) -> ModifiedBetaGeoModel:
        """Maximum-likelihood fit to per-customer (x, t_x, T) (identical customers grouped).

        Raises:
            FitError: invalid data, nobody with a repeat purchase, or no convergence.
        """
        x, tx, big_t = customer_arrays(frequency, recency, T, error=FitError, allow_empty=False)
        x, tx, big_t = x.ravel(), tx.ravel(), big_t.ravel()
        if not np.any(x > 0):
            raise FitError("MBG/NBD: no customer has a repeat purchase (all frequency = 0)")
        # Identical customers grouped (lexsort: np.unique over rows is several times slower).
        order = np.lexsort((big_t, tx, x))
        sx, stx, st = x[order], tx[order], big_t[order]
        first = np.ones(sx.size, dtype=bool)
        first[1:] = (np.diff(sx) != 0) | (np.diff(stx) != 0) | (np.diff(st) != 0)
        starts = np.flatnonzero(first)
        ux, utx, ut = sx[starts], stx[starts], st[starts]
        weights = np.diff(np.append(starts, sx.size)).astype(np.float64)

        def objective(theta: FloatArray) -> float:
            r, alpha, a, b = (float(v) for v in theta)
            value = -float(weights @ _log_likelihood((r, alpha, a, b), ux, utx, ut))
            return value if math.isfinite(value) else math.inf

        def gradient(theta: FloatArray) -> FloatArray:
            r, alpha, a, b = (float(v) for v in theta)
            return -(_log_likelihood_gradient((r, alpha, a, b), ux, utx, ut) @ weights)

        result = fit_mle(
            objective,
            gradient,
            {"r": 1.0, "alpha": float(np.mean(big_t)), "a": 1.0, "b": 1.0},
            penalizer=penalizer,
            n_observations=int(x.size),
            model_name="MBG/NBD",
        )
        p = result.params
        return cls(
            p["r"],
            p["alpha"],
            p["a"],
            p["b"],
            result.log_likelihood,
            result.standard_errors,
            int(x.size),
        )

    def _if_alive(self) -> BetaGeoModel:
        """BG/NBD with b + 1: its expectations at x = 0 and alive are MBG/NBD's if alive."""
        return BetaGeoModel.from_params(self.r, self.alpha, self.a, self.b + 1.0)

    def log_likelihood_of(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Per-customer log-likelihood of (x, t_x, T)."""
        x, tx, big_t = customer_arrays(frequency, recency, T)
        return _log_likelihood((self.r, self.alpha, self.a, self.b), x, tx, big_t)

    def probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """P(alive at T | x, t_x, T), also below 1 for x = 0."""
        x, tx, big_t = customer_arrays(frequency, recency, T)
        log_odds = (
            math.log(self.a)
            - np.log(self.b + x)
            + (self.r + x) * (np.log(self.alpha + big_t) - np.log(self.alpha + tx))
        )
        return np.asarray(expit(-log_odds), dtype=np.float64)

    def conditional_expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """E[Y(t) | x, t_x, T]: expected repeat purchases in (T, T + t]; ``t`` broadcasts
        (a column of horizons against customers gives a grid)."""
        x, tx, big_t = customer_arrays(frequency, recency, T)
        t_arr = horizon(t)
        alive = self.probability_alive(x, tx, big_t)
        return np.asarray(self._if_alive()._purchases_if_alive(t_arr, x, big_t) * alive)

    def expected_purchases(self, t: ArrayLike) -> FloatArray:
        """E[X(t)]: expected repeat purchases of a new customer in (0, t]."""
        t_arr = horizon(t)
        zero = np.zeros(())
        survive = self.b / (self.a + self.b)
        return np.asarray(survive * self._if_alive()._purchases_if_alive(t_arr, zero, zero))

    def probability_of_purchases(self, t: ArrayLike, n: ArrayLike) -> FloatArray:
        """P(X(t) = n) for a new customer: dropped at the first chance (n = 0, probability
        a/(a+b)), else BG/NBD's count distribution with b + 1."""
        t_arr = horizon(t)
        n_arr = purchase_counts(n)
        survive = self.b / (self.a + self.b)
        fresh = bgnbd_count_pmf(self.r, self.alpha, self.a, self.b + 1.0, t_arr, n_arr)
        return np.asarray(survive * fresh + (1 - survive) * (n_arr == 0), dtype=np.float64)

    def conditional_probability_of_purchases(
        self, t: ArrayLike, n: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """P(n purchases in (T, T + t] | x, t_x, T) (see :mod:`~.counts`)."""
        x, tx, big_t = customer_arrays(frequency, recency, T)
        t_arr = horizon(t)
        n_arr = purchase_counts(n)
        alive = self.probability_alive(x, tx, big_t)
        fresh = bgnbd_count_pmf(
            self.r + x, self.alpha + big_t, self.a, self.b + x + 1.0, t_arr, n_arr
        )
        return np.asarray(alive * fresh + (1.0 - alive) * (n_arr == 0), dtype=np.float64)

    def probability_of_no_purchase(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """P(Y(t) = 0 | x, t_x, T)."""
        return self.conditional_probability_of_purchases(t, 0.0, frequency, recency, T)

    def time_to_next_purchase(
        self, frequency: ArrayLike, T: ArrayLike, *, quantile: float | None = 0.5
    ) -> FloatArray:
        """As :meth:`BetaGeoModel.time_to_next_purchase` (an alive customer's next purchase
        comes before their next dropout chance)."""
        x, _, big_t = customer_arrays(frequency, np.zeros_like(np.asarray(frequency, float)), T)
        return purchase_wait(self.r + x, self.alpha + big_t, quantile)

    def discounted_expected_residual_transactions(
        self, delta: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """DERT at continuous discount rate ``delta`` per time unit (see :mod:`~.dert`)."""
        x, tx, big_t = customer_arrays(frequency, recency, T)
        values = dert_by_integration(self, delta, x.ravel(), tx.ravel(), big_t.ravel())
        return values.reshape(x.shape)

    def sample(
        self, T: ArrayLike, *, seed: int | np.random.Generator | None = None
    ) -> SampledCustomers:
        """One synthetic customer per entry of ``T``: as BG/NBD's sampler, with the dropout
        chance after purchase 0 too (J ~ Geometric(p) counts chances from the first)."""
        big_t = positive_array(T, "T").ravel()
        rng = np.random.default_rng(seed)
        n = big_t.size
        lam = rng.gamma(self.r, 1.0 / self.alpha, n)
        p = rng.beta(self.a, self.b, n)
        purchases = rng.poisson(lam * big_t)
        x = np.minimum(purchases, rng.geometric(np.maximum(p, 1e-300)) - 1)
        has = x > 0
        position = rng.beta(np.where(has, x, 1), np.where(has, purchases - x + 1, 1))
        recency = np.where(has, big_t * position, 0.0)
        return SampledCustomers(x.astype(np.float64), recency, big_t.copy())
