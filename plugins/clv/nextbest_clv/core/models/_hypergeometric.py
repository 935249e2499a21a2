"""The Gauss hypergeometric function 2F1 where scipy's evaluation fails.

scipy's ``hyp2f1`` returns NaN or infinity near z = 1 for some parameters (e.g. c - a - b just
above 1); :func:`near_one` recomputes those entries from the connection formula to 1 - z.
Pure numpy/scipy.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.special import gammaln, gammasgn, hyp2f1

FloatArray = NDArray[np.float64]

__all__ = ["near_one"]


def near_one(
    g: FloatArray, p: float, q: float, c: FloatArray, z: FloatArray, neg_log_1mz: FloatArray
) -> FloatArray:
    """``g`` = 2F1(p, q; c; z) with its non-finite entries recomputed (scipy's 2F1 fails for
    some parameters, e.g. near z = 1 with c - p - q just above 1, or c in the hundreds): as
    the power series up to z = 0.99 or where c - p - q > 20, else by the connection formula to
    1 - z (Abramowitz & Stegun 15.3.6, for c - p - q not an integer):

    2F1 = A 2F1(p, q; 1-d; 1-z) + B (1-z)^d 2F1(c-p, c-q; 1+d; 1-z), d = c - p - q,
    A = G(c)G(d) / (G(c-p)G(c-q)), B = G(c)G(-d) / (G(p)G(q)),

    with the gamma ratios in log space (c grows with x) and a zero for a gamma pole below.
    Where d is an integer (the two terms' poles cancel), the mean of the formula at p +/- 1e-5
    (2F1 is smooth in p; the error is far below 1e-8 relative).
    """
    bad = ~np.isfinite(g)
    if not bad.any():
        return g
    g, c_all, z_all, w_all = np.broadcast_arrays(g, c, z, neg_log_1mz)
    g = np.array(g, dtype=np.float64)
    # The series converges slowly only near z = 1 with a small d = c - p - q (its terms fall
    # like z^n n^-(d+1)); the connection formula is exact there but loses accuracy for a
    # large d (its 2F1 has third parameter 1 - d).
    series_fits = (z_all <= _SERIES_MAX_Z) | (c_all - p - q > _SERIES_MIN_D)
    near = bad & ~series_fits
    if near.any():
        c, w = c_all[near], w_all[near]
        d = c - p - q
        whole = np.abs(d - np.round(d)) < 1e-7
        values = _connection(p, q, c, w)
        if whole.any():
            step = 1e-5
            lo = _connection(p - step, q, c[whole], w[whole])
            hi = _connection(p + step, q, c[whole], w[whole])
            values[whole] = (lo + hi) / 2
        g[near] = values
    summed = bad & series_fits & (z_all >= 0)
    if summed.any():
        g[summed] = _series(p, q, c_all[summed], z_all[summed])
    return g


#: Up to this z, or with d = c - p - q above _SERIES_MIN_D, a failed 2F1 is summed as its power
#: series (at most _SERIES_TERMS terms reach a relative 1e-16 there); otherwise the connection
#: formula to 1 - z is used.
_SERIES_MAX_Z = 0.99
_SERIES_MIN_D = 20.0
_SERIES_TERMS = 20_000


def _series(p: float, q: float, c: FloatArray, z: FloatArray) -> FloatArray:
    """sum_n (p)_n (q)_n / ((c)_n n!) z^n, every entry at once, until each term is below
    1e-17 of its sum (0 <= z < 1, c > 0; see :func:`near_one` for where it converges fast)."""
    total = np.ones_like(z)
    term = np.ones_like(z)
    for n in range(_SERIES_TERMS):
        term = term * ((p + n) * (q + n) / ((c + n) * (n + 1))) * z
        total = total + term
        if np.all(np.abs(term) <= 1e-17 * np.abs(total)):
            break
    return total


def _connection(p: float, q: float, c: FloatArray, w: FloatArray) -> FloatArray:
    """The connection formula of :func:`near_one` at 1 - z = exp(-w)."""
    d = c - p - q
    one_minus_z = np.exp(-w)  # exact for z near 1
    with np.errstate(all="ignore"):
        a_term = _gamma_ratio((c, d), (c - p, c - q)) * hyp2f1(p, q, 1 - d, one_minus_z)
        b_term = (
            _gamma_ratio((c, -d), (np.full_like(c, p), np.full_like(c, q)))
            * np.exp(-d * w)
            * hyp2f1(c - p, c - q, 1 + d, one_minus_z)
        )
    return np.asarray(a_term + b_term)


def _gamma_ratio(top: tuple[FloatArray, ...], bottom: tuple[FloatArray, ...]) -> FloatArray:
    """prod G(top) / prod G(bottom), via log-gamma and signs; 0 where a bottom argument is a
    pole (a non-positive integer)."""
    log = sum(gammaln(v) for v in top) - sum(gammaln(v) for v in bottom)
    sign = np.prod([gammasgn(v) for v in (*top, *bottom)], axis=0)
    pole = np.zeros(np.shape(log), dtype=bool)
    for v in bottom:
        pole |= (v <= 0) & (v == np.round(v))
    return np.asarray(np.where(pole, 0.0, sign * np.exp(log)))
