"""Discounted expected residual transactions (DERT): the present value, at continuous discount
rate ``delta`` per model time unit, of the purchases a customer makes after T,

    DERT = integral_0^inf exp(-delta t) dE[Y(t) | x, t_x, T]
         = integral_0^inf exp(-u) E[Y(u / delta) | x, t_x, T] du     (by parts),

so that CLV = DERT x the expected value per transaction (Fader, Hardie & Lee 2005, "RFM and
CLV: Using Iso-Value Curves for Customer Base Analysis", JMR 42(4)). A yearly rate d converts
to delta = ln(1 + d) / (units per year), e.g. 15% a year is 0.00269 a week.

- Pareto/NBD, closed form (FHL 2005, eq. 2): given alive at T, lambda ~ Gamma(r + x, alpha + T)
  and mu ~ Gamma(s, beta + T) independently, so
  DERT = P(alive) (r + x)/(alpha + T) E[1/(delta + mu)] and
  E[1/(delta + mu)] = (beta + T) U(1, 2 - s, delta (beta + T)), U Tricomi's confluent
  hypergeometric function (FHL write it as delta^(s-1) (beta+T)^s Psi(s, s; delta(beta+T)),
  the same by Kummer's transformation). scipy's U fails for a large s; those entries use
  Gauss-Laguerre quadrature of integral_0^inf exp(-z v) (1 + v)^-s dv.
- Any model with ``conditional_expected_purchases`` (BG/NBD, MBG/NBD): the second integral by
  Gauss-Legendre panels graded geometrically in u from 1e-9 to 60 (E[Y] is smooth in log t;
  past u = 60 the weight exp(-u) is below 1e-26).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import hyperu

from .errors import DataError

FloatArray = NDArray[np.float64]

__all__ = ["dert_by_integration", "discount_rate", "pareto_nbd_dert", "residual_integral"]

_GL_X, _GL_W = np.polynomial.legendre.leggauss(8)
_LAGUERRE_X, _LAGUERRE_W = np.polynomial.laguerre.laggauss(80)
_U_MAX = 60.0
_CHUNK = 4096  # customers per call of conditional_expected_purchases


class _Conditional(Protocol):
    def conditional_expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray: ...


def discount_rate(delta: float) -> float:
    """``delta`` checked: a finite continuous discount rate > 0 per model time unit."""
    value = float(delta)
    if not (np.isfinite(value) and value > 0):
        raise DataError("delta (the continuous discount rate per time unit) must be > 0")
    return value


def _graded_rule() -> tuple[FloatArray, FloatArray]:
    edges = np.concatenate([[0.0], np.geomspace(1e-9, _U_MAX, 36)])
    lo, hi = edges[:-1, None], edges[1:, None]
    nodes = lo + (hi - lo) * (_GL_X[None, :] + 1.0) / 2.0
    weights = (hi - lo) * _GL_W[None, :] / 2.0 * np.exp(-nodes)
    return nodes.ravel(), weights.ravel()


_U_NODES, _U_WEIGHTS = _graded_rule()


def dert_by_integration(
    model: _Conditional, delta: float, x: FloatArray, tx: FloatArray, big_t: FloatArray
) -> FloatArray:
    """DERT of customers (x, t_x, T) (1-d arrays of one length) from the model's conditional
    expectation (see the module doc)."""
    rate = discount_rate(delta)
    horizons = (_U_NODES / rate)[:, None]
    out = np.empty(x.size)
    for start in range(0, x.size, _CHUNK):
        part = slice(start, start + _CHUNK)
        expected = model.conditional_expected_purchases(horizons, x[part], tx[part], big_t[part])
        out[part] = _U_WEIGHTS @ np.asarray(expected).reshape(horizons.size, -1)
    return out


def residual_integral(s: FloatArray, z: FloatArray) -> FloatArray:
    """integral_0^inf exp(-z v) (1 + v)^-s dv = U(1, 2 - s, z) for s > 0, z > 0 (arrays that
    broadcast): Gauss-Laguerre in w = (z + s) v for z >= 1 (scipy's U is off by up to 5e-8
    relative there) and where scipy's U is not finite (a large s), else scipy's U (for a
    small z the integrand decays too slowly for the Laguerre rule)."""
    s_, z_ = np.broadcast_arrays(np.asarray(s, dtype=np.float64), np.asarray(z, dtype=np.float64))
    with np.errstate(all="ignore"):
        value = np.asarray(hyperu(1.0, 2.0 - s_, z_), dtype=np.float64)
    bad = ~np.isfinite(value) | (value <= 0) | (z_ >= 1.0)
    if bad.any():
        sb, zb = s_[bad][:, None], z_[bad][:, None]
        v = _LAGUERRE_X[None, :] / (zb + sb)
        # exp(-z v) (1 + v)^-s = exp(-w) exp(s (v - log(1 + v))): the second factor is smooth.
        smooth = np.exp(sb * (v - np.log1p(v)))
        value = value.copy()
        value[bad] = (smooth @ _LAGUERRE_W) / (zb[:, 0] + sb[:, 0])
    return value


def pareto_nbd_dert(
    r: float,
    alpha: float,
    s: float,
    beta: float,
    delta: float,
    x: FloatArray,
    big_t: FloatArray,
    p_alive: FloatArray,
) -> FloatArray:
    """Pareto/NBD DERT, the closed form of the module doc."""
    rate = discount_rate(delta)
    scale = beta + big_t
    inverse_mean = scale * residual_integral(np.full_like(scale, s), rate * scale)
    return np.asarray(p_alive * (r + x) / (alpha + big_t) * inverse_mean, dtype=np.float64)
