"""How many purchases a customer makes in a window: the count distributions of BG/NBD and
Pareto/NBD, for a new customer and, by the same formulas at posterior parameters, for a
customer with a history who is alive at T. Pure numpy/scipy.

A customer alive at T with history (x, t_x, T) is, for what follows T, a new customer with
updated parameters (both models' purchase and dropout processes are memoryless once the
rates are known): lambda ~ Gamma(r + x, alpha + T), and for BG/NBD p ~ Beta(a, b + x), for
Pareto/NBD mu ~ Gamma(s, beta + T). So P(n purchases in (T, T + t] | history) is
``(1 - P(alive)) [n = 0] + P(alive) P_new(n; updated parameters)``.

- BG/NBD: :func:`bgnbd_count_pmf`, Fader, Hardie & Lee (2005), eq. 8.
- Pareto/NBD: :func:`pareto_nbd_count_pmf`. The customer is alive through t with probability
  (beta / (beta + t))^s and then makes NB(n; r, alpha / (alpha + t)) purchases; else they die at
  tau < t (density s/beta (beta/(beta + tau))^(s+1)) after NB(n; r, alpha/(alpha + tau)):

      P(X(t) = n) = NB_n(t) (beta/(beta+t))^s
                    + integral_0^t NB_n(tau) s/beta (beta/(beta+tau))^(s+1) dtau.

  The integral is evaluated by Gauss-Legendre panels graded geometrically in tau/t from 1e-9
  to 1 (the integrand is smooth in log tau: powers of tau, alpha + tau and beta + tau), in log
  space. Fader & Hardie's closed form for the same quantity ("Deriving an Expression for
  P(X(t) = x) Under the Pareto/NBD Model", 2006) is a difference of hypergeometric terms that
  cancels badly for long windows; the tests compare this one with lifetimes' implementation of
  that closed form where it is accurate, with the model's mean and with simulation.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betaln, gammaln, logsumexp
from scipy.stats import nbinom

from .errors import DataError

FloatArray = NDArray[np.float64]

__all__ = ["bgnbd_count_pmf", "pareto_nbd_count_pmf", "purchase_counts", "purchase_wait"]

_PANELS = 48
_SMALLEST = 1e-9  # tau / t below which the dead-before-t part is one extra panel
_GL_X, _GL_W = np.polynomial.legendre.leggauss(10)
_CHUNK = 16_384  # (entries) evaluated at once: entries x nodes stays ~40 MB


def _unit_rule() -> tuple[FloatArray, FloatArray]:
    """Nodes and weights on [0, 1] for the graded rule (the same for every entry)."""
    edges = np.concatenate([[0.0], np.geomspace(_SMALLEST, 1.0, _PANELS)])
    lo, hi = edges[:-1, None], edges[1:, None]
    nodes = lo + (hi - lo) * (_GL_X[None, :] + 1.0) / 2.0
    weights = (hi - lo) * _GL_W[None, :] / 2.0
    return nodes.ravel(), weights.ravel()


_UNIT_NODES, _UNIT_WEIGHTS = _unit_rule()
_LOG_UNIT_WEIGHTS = np.log(_UNIT_WEIGHTS)


def purchase_counts(n: ArrayLike) -> FloatArray:
    """``n`` as float64, checked to be whole numbers >= 0."""
    n_arr = np.asarray(n, dtype=np.float64)
    if not np.all(np.isfinite(n_arr)) or np.any(n_arr < 0) or np.any(n_arr % 1 != 0):
        raise DataError("n (the number of purchases) must be whole numbers >= 0")
    return n_arr


def bgnbd_count_pmf(
    r: ArrayLike, alpha: ArrayLike, a: ArrayLike, b: ArrayLike, t: ArrayLike, n: ArrayLike
) -> FloatArray:
    """BG/NBD P(X(t) = n) for a new customer (all arguments broadcast).

    With p0 = alpha / (alpha + t) and NB(j) = Gamma(r+j) / (Gamma(r) j!) p0^r (1-p0)^j, the
    customer either is still alive after n purchases, B(a, b+n)/B(a, b) NB(n), or dropped out
    at the n-th, B(a+1, b+n-1)/B(a, b) P(NB >= n) (n > 0): terms in log space, the negative
    binomial tail from scipy's survival function (no 1 - CDF cancellation).
    """
    r_, alpha_, a_, b_, t_, n_ = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (r, alpha, a, b, t, n))
    )
    p0 = alpha_ / (alpha_ + t_)
    log_nb = nbinom.logpmf(n_, r_, p0)
    alive = np.exp(betaln(a_, b_ + n_) - betaln(a_, b_) + log_nb)
    positive = n_ > 0
    m = np.where(positive, n_, 1.0)  # (n = 0 has no dropout term)
    tail = nbinom.sf(m - 1, r_, p0)  # P(NB >= n)
    dropped = np.exp(betaln(a_ + 1, b_ + m - 1) - betaln(a_, b_)) * tail
    return np.asarray(alive + np.where(positive, dropped, 0.0), dtype=np.float64)


def pareto_nbd_count_pmf(
    r: ArrayLike, alpha: ArrayLike, s: ArrayLike, beta: ArrayLike, t: ArrayLike, n: ArrayLike
) -> FloatArray:
    """Pareto/NBD P(X(t) = n) for a new customer (see the module doc; all arguments
    broadcast, t >= 0)."""
    arrays = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (r, alpha, s, beta, t, n))
    )
    shape = arrays[0].shape
    flat = [np.ravel(v) for v in arrays]
    out = np.empty(flat[0].size)
    for start in range(0, out.size, _CHUNK):
        part = slice(start, start + _CHUNK)
        out[part] = _pareto_pmf_flat(*(v[part] for v in flat))
    return out.reshape(shape)


def _log_nb(r: FloatArray, alpha: FloatArray, tau: FloatArray, n: FloatArray) -> FloatArray:
    """log NB(n; r, alpha / (alpha + tau)), with 0 * log 0 = 0 at tau = 0."""
    log_scale = np.log(alpha + tau)
    log_tau = np.log(np.where(tau > 0, tau, 1.0))
    count_part = np.where(
        n > 0, np.where(tau > 0, n * (log_tau - log_scale), -np.inf), 0.0
    )  # tau = 0: no purchases yet
    return np.asarray(
        gammaln(r + n) - gammaln(r) - gammaln(n + 1) + r * (np.log(alpha) - log_scale) + count_part
    )


def _pareto_pmf_flat(
    r: FloatArray, alpha: FloatArray, s: FloatArray, beta: FloatArray, t: FloatArray, n: FloatArray
) -> FloatArray:
    log_survive = s * (np.log(beta) - np.log(beta + t))
    alive = _log_nb(r, alpha, t, n) + log_survive
    tau = t[:, None] * _UNIT_NODES[None, :]
    col = (r[:, None], alpha[:, None], s[:, None], beta[:, None], n[:, None])
    rc, ac, sc, bc, nc = col
    log_width = np.log(np.where(t > 0, t, 1.0))[:, None] + _LOG_UNIT_WEIGHTS[None, :]
    log_density = np.log(sc) - np.log(bc) + (sc + 1.0) * (np.log(bc) - np.log(bc + tau))
    dead = logsumexp(_log_nb(rc, ac, tau, nc) + log_density + log_width, axis=1)
    dead = np.where(t > 0, dead, -np.inf)  # no time to die in
    return np.asarray(np.exp(np.logaddexp(alive, dead)), dtype=np.float64)


def purchase_wait(shape: FloatArray, scale: FloatArray, quantile: float | None) -> FloatArray:
    """The waiting time to the next purchase of a customer who stays alive, whose purchase
    rate is Gamma(shape, scale) (rate parameter ``scale``): Lomax (Pareto II) with that shape
    and scale. ``quantile`` q gives scale ((1 - q)^(-1/shape) - 1); None gives the mean
    scale / (shape - 1), infinite when shape <= 1 (no mean)."""
    if quantile is None:
        with np.errstate(divide="ignore"):
            return np.asarray(np.where(shape > 1, scale / (shape - 1), np.inf))
    if not 0 < quantile < 1:
        raise DataError("quantile must be between 0 and 1 (exclusive), or None for the mean")
    return np.asarray(scale * np.expm1(-np.log1p(-quantile) / shape), dtype=np.float64)
