"""Pareto/NBD model of repeat buying (Schmittlein, Morrison & Colombo 1987).

While alive a customer buys in a Poisson process of rate ``lambda ~ Gamma(r, alpha)``; their
lifetime is exponential with rate ``mu ~ Gamma(s, beta)`` (rates, i.e. ``alpha`` and ``beta`` are
inverse scales in the model's time unit). A customer is summarised by ``x`` repeat purchases, the
time ``t_x`` of the last one and the length ``T`` of the observation, all since the first purchase.

Likelihood (Fader & Hardie, "A Note on Deriving the Pareto/NBD Model and Related Expressions",
2005, eq. 18)::

    L = Gamma(r+x) alpha^r beta^s / Gamma(r)
        * [ (alpha+T)^-(r+x) (beta+T)^-s  +  s * I ],
    I = integral_{t_x}^{T} (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau

(the note writes ``s * I`` as ``s / (r+s+x) * A_0``). ``I`` is the source of the numerical
trouble: the note expresses it through Gauss hypergeometric functions whose plain evaluation
overflows or loses all precision for customers with many purchases or long histories. Here
``I = F(t_x) - F(T)`` with the tail integral ``F(u) = integral_u^inf ...``; with
``M = max(alpha, beta)``, ``m = min(alpha, beta)``, ``Q`` the exponent on ``M``'s factor and
``Q'`` the one on ``m``'s (``r+x`` and ``s+1``), ``A = r+s+x`` and ``z = (M-m)/(M+u)`` in
``[0, 1)`` (the note's choice of argument, by the larger of alpha and beta)::

    F(u) = (M+u)^-A 2F1(A, Q'; A+1; z) / A
         = (M+u)^-Q (m+u)^-(Q'-1) / A * 2F1(1, Q; A+1; z)          (Euler's transformation)

The last series has positive terms bounded by ``z^n`` (term ratio ``z (Q+n)/(A+1+n) < z``), so it
neither overflows nor cancels. It needs about ``37 / (1 - z)`` terms, so for ``z > 0.95`` (a large
ratio between alpha and beta and a short ``u``) ``F`` is integrated numerically instead, in a
variable in which the log-integrand is concave with bounded slope (see `_log_tail_quadrature`).
Everything else is kept in log space and ``I`` is formed as
``F(t_x) (1 - exp(log F(T) - log F(t_x)))``. Both routes also give the analytic gradient of the
log-likelihood (derivatives with respect to the hypergeometric parameters are sums over the
series terms or the quadrature nodes), used by the fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import digamma, exprel, gammaln

from ._optim import fit_mle, split_value_and_gradient
from ._validation import customer_arrays, horizon, positive_array, positive_params
from .counts import pareto_nbd_count_pmf, purchase_counts, purchase_wait
from .dert import pareto_nbd_dert
from .errors import FitError

FloatArray = NDArray[np.float64]

PARAM_NAMES: tuple[str, str, str, str] = ("r", "alpha", "s", "beta")

# Series are truncated where the bound on the remaining tail is below this fraction of the sum.
_LOG_SERIES_RTOL = math.log(1e-16)
# Batches of at most this many (entries x terms) are summed along a second axis, larger ones
# by the nested form one term at a time.
_SERIES_SMALL_BATCH = 1 << 17
# Candidate truncation lengths; entries needing the same length are evaluated together.
_SERIES_LENGTHS = (8, 16, 32, 64, 128, 256, 512, 1024, 2048)
# Above this z the tail integral is computed by quadrature (see _log_tail_quadrature): the
# series would need about 37 / (1 - z) terms.
_QUAD_ABOVE_Z = 0.95
_QUAD_PANELS = 12
_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)
_NEWTON_MAX_ITER = 60


class ParetoNBDSample(NamedTuple):
    """Synthetic customers drawn from a Pareto/NBD model (see :meth:`ParetoNBDModel.sample`)."""

    frequency: FloatArray
    recency: FloatArray
    T: FloatArray
    purchase_rate: FloatArray  # lambda of each customer
    dropout_rate: FloatArray  # mu of each customer
    lifetime: FloatArray  # time of death since the first purchase (may exceed T)


# --------------------------------------------------------------------------------------------
# Numeric core
# --------------------------------------------------------------------------------------------


def _series_terms_needed(Q: FloatArray, A: FloatArray, z: FloatArray) -> FloatArray:
    """Number of terms (one of ``_SERIES_LENGTHS``) after which the series tail is negligible.

    The term ratio rises towards z, so the tail after ``T_K`` is below ``T_K z / (1 - z)``;
    ``T_K (K + 1/(1 - z)) / (1 - z)`` also bounds the tails of the n-weighted sums behind the
    derivatives. ``T_K <= z^K`` gives a first length; ``log T_K`` in closed form (log-gamma)
    then admits the next shorter one where the terms fall faster than ``z^n``.
    """
    needed = np.zeros(z.shape)
    idx = np.flatnonzero(z > 0)
    if idx.size == 0:
        return needed
    zz, q, a1 = z[idx], Q[idx], A[idx] + 1.0
    lengths = np.asarray(_SERIES_LENGTHS, dtype=np.float64)
    log_z = np.log(zz)[:, None]
    extra = np.log(lengths[None, :] + 1.0 / (1.0 - zz)[:, None]) - np.log1p(-zz)[:, None]
    ok = lengths[None, :] * log_z + extra <= _LOG_SERIES_RTOL
    if not np.all(ok[:, -1]):
        raise FloatingPointError(
            f"2F1 series: z = {zz[~ok[:, -1]].max()} is too close to 1 for the series route"
        )
    pick = np.argmax(ok, axis=1)  # first length that the z^K bound admits
    shorter = np.maximum(pick - 1, 0)
    k_short = lengths[shorter]
    log_term = (
        k_short * np.log(zz)
        + gammaln(q + k_short)
        - gammaln(q)
        - gammaln(a1 + k_short)
        + gammaln(a1)
    )
    fine = (pick > 0) & (log_term + extra[np.arange(idx.size), shorter] <= _LOG_SERIES_RTOL)
    needed[idx] = lengths[np.where(fine, shorter, pick)]
    return needed


def _series_forward(
    Q: FloatArray, A: FloatArray, z: FloatArray, k: int, with_grad: bool
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """The first ``k+1`` terms summed as a cumulative product along a second axis (few
    entries: one numpy call per step, not per term). Returns S and d log S / d(Q, A, z)."""
    ks = np.arange(k, dtype=np.float64)
    inv = 1.0 / (A[:, None] + 1.0 + ks)
    terms = np.cumprod((Q[:, None] + ks) * inv * z[:, None], axis=1)  # T_1 .. T_k
    total = 1.0 + terms.sum(axis=1)
    if not with_grad:
        zero = np.zeros_like(total)
        return total, zero, zero, zero
    # d log T_n / dQ = sum_{j<n} 1/(Q+j), d log T_n / dA = -sum_{j<n} 1/(A+1+j), and
    # d T_n / dz = n T_n / z (z > 0 here).
    if np.all(Q[0] == Q):  # common: Q = s + 1 when alpha < beta; one row serves all
        d_q = terms @ np.cumsum(1.0 / (Q[0] + ks))
    else:
        d_q = np.einsum("ij,ij->i", terms, np.cumsum(1.0 / (Q[:, None] + ks), axis=1))
    d_a = -np.einsum("ij,ij->i", terms, np.cumsum(inv, axis=1))
    d_z = terms @ (ks + 1.0) / z
    return total, d_q / total, d_a / total, d_z / total


def _series_nested(
    Q: FloatArray, A: FloatArray, z: FloatArray, k: int, with_grad: bool
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """The first ``k+1`` terms by the nested form ``1 + rho_0 (1 + rho_1 (1 + ...))``, inside
    out, with the derivatives carried along (many entries: memory-light 1-d steps)."""
    ks = np.arange(k, dtype=np.float64)[:, None]
    # Rows j = 0..k-1 (contiguous per j): 1/(A+1+j), (Q+j)/(A+1+j) and rho_j.
    inv = 1.0 / (A + 1.0 + ks)
    base = (Q + ks) * inv
    rho = base * z
    total = np.ones(Q.size)
    if not with_grad:
        for j in range(k - 1, -1, -1):
            total = 1.0 + rho[j] * total
        zero = np.zeros_like(total)
        return total, zero, zero, zero
    z_inv = inv * z
    d_q = np.zeros(Q.size)
    d_a = np.zeros(Q.size)
    d_z = np.zeros(Q.size)
    for j in range(k - 1, -1, -1):
        # d(rho S')/dQ = rho/(Q+j) S' + rho dS'/dQ, with rho/(Q+j) = z/(A+1+j);
        # d/dA: -rho/(A+1+j) S' + rho dS'/dA; d/dz: (Q+j)/(A+1+j) S' + rho dS'/dz.
        r_j = rho[j]
        d_q = z_inv[j] * total + r_j * d_q
        d_a = r_j * (d_a - inv[j] * total)
        d_z = base[j] * total + r_j * d_z
        total = 1.0 + r_j * total
    return total, d_q / total, d_a / total, d_z / total


def _hyp_series(
    Q: FloatArray, A: FloatArray, z: FloatArray, *, with_grad: bool
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """``log 2F1(1, Q; A+1; z)`` for ``0 < Q < A+1``, ``0 <= z < 1``, and its partial derivatives.

    Returns ``(log S, d log S / dQ, d log S / dA, d log S / dz)`` (the derivatives are zeros when
    ``with_grad`` is false). ``S = sum_n T_n`` with ``T_n = prod_{k<n} rho_k`` and
    ``rho_k = z (Q+k) / (A+1+k)``, truncated where the tail is negligible; entries are grouped by
    the number of terms they need, and each group is summed by `_series_forward` (small groups)
    or `_series_nested` (large ones).
    """
    n = Q.size
    out_s = np.ones(n)
    out_q = np.zeros(n)
    out_a = np.zeros(n)
    out_z = np.zeros(n)
    needed = _series_terms_needed(Q, A, z)
    for k_terms in np.unique(needed[needed > 0]):
        idx = np.flatnonzero(needed == k_terms)
        k = int(k_terms)
        if idx.size * k <= _SERIES_SMALL_BATCH:
            s_sum, s_q, s_a, s_z = _series_forward(Q[idx], A[idx], z[idx], k, with_grad)
        else:
            s_sum, s_q, s_a, s_z = _series_nested(Q[idx], A[idx], z[idx], k, with_grad)
        out_s[idx] = s_sum
        out_q[idx] = s_q
        out_a[idx] = s_a
        out_z[idx] = s_z
    return np.log(out_s), out_q, out_a, out_z


def _newton_side(
    s_nodes: FloatArray,
    v_peak: FloatArray,
    v_far: FloatArray,
    psi_peak: FloatArray,
    c1: FloatArray,
    c2: FloatArray,
    direction: float,
) -> FloatArray:
    """Solve ``|v - v_peak| + psi_peak - psi(v) = s`` for v on one side of a concave psi's peak.

    ``direction`` is +1 for the right side, -1 for the left. The left-hand side is convex and
    monotone in ``v`` on that side, so Newton's method started beyond the root (at ``v_peak +
    direction * s``, clipped to the far end) converges monotonically.
    """
    vp = v_peak[:, None]
    v = vp + direction * s_nodes
    v = np.minimum(v, v_far[:, None]) if direction > 0 else np.maximum(v, v_far[:, None])
    a, b, pp = c1[:, None], c2[:, None], psi_peak[:, None]
    for _ in range(_NEWTON_MAX_ITER):
        psi = a * v + b * np.log1p(-np.exp(v))
        dpsi = a - b / np.expm1(-v)
        g = direction * (v - vp) + pp - psi - s_nodes
        step = g / (direction - dpsi)
        v = v - step
        if not np.any(np.abs(step) > 1e-13 * (1.0 + np.abs(v))):
            break
    return np.asarray(v)


def _log_tail_quadrature(
    e_small: FloatArray,
    a: FloatArray,
    big: float,
    small: float,
    u: FloatArray,
    *,
    with_grad: bool,
) -> tuple[FloatArray, FloatArray]:
    """``log F(u)`` by quadrature, for ``z`` close to 1 where the series converges slowly.

    With ``t = (m+tau)/(M+tau)``, ``v = log t``, ``D = M - m``::

        F(u) = D^-A * integral_{v0}^{0} exp(psi(v)) dv,
        psi(v) = (1 - Q') v + (A - 1) log(1 - e^v),   v0 = log((m+u)/(M+u)) = log(1 - z)

    The part over ``[-log 2, 0]`` is the series at ``z = 1/2`` (fast); the rest is integrated
    with composite Gauss-Legendre rules in the variable ``s = |v - v_peak| + (psi_peak - psi)``
    on each side of psi's peak (psi is concave for A > 1): the log-integrand then changes by at
    most one unit per unit of ``s``, however steep psi is, so a fixed rule is accurate. Returns
    ``log F`` and the partial derivatives with respect to ``(Q', A, D, v0)``.
    """
    k = u.size
    d = big - small
    log_d = math.log(d)
    v0 = np.log(small + u) - np.log(big + u)
    v1 = np.full(k, -math.log(2.0))
    c1 = 1.0 - e_small
    c2 = a - 1.0

    def psi(v: FloatArray) -> FloatArray:
        c1_, c2_ = (c1, c2) if v.ndim == 1 else (c1[:, None], c2[:, None])
        return np.asarray(c1_ * v + c2_ * np.log1p(-np.exp(v)))

    def dpsi(v: FloatArray) -> FloatArray:
        c1_, c2_ = (c1, c2) if v.ndim == 1 else (c1[:, None], c2[:, None])
        return np.asarray(c1_ - c2_ / np.expm1(-v))

    concave = c2 > 0
    # Peak of psi on [v0, v1]: an end, or where psi' = 0, i.e. e^v = c1 / (c1 + c2).
    with np.errstate(divide="ignore", invalid="ignore"):
        interior = np.log(c1 / (c1 + c2))
    v_peak = np.where(dpsi(v0) <= 0, v0, np.where(dpsi(v1) >= 0, v1, interior))
    # Not concave (A <= 1): |psi'| <= 3 on the range, so plain panels in v from v0 suffice.
    v_peak = np.where(concave, v_peak, v0)
    psi_peak = psi(v_peak)
    span_left = np.where(concave, (v_peak - v0) + (psi_peak - psi(v0)), 0.0)
    span_right_full = (v1 - v_peak) + (psi_peak - psi(v1))
    # Beyond a drop of 50 in psi the integrand is negligible (< e^-50 of its peak).
    span_right = np.where(concave, np.minimum(span_right_full, (v1 - v_peak) + 50.0), v1 - v_peak)

    unit_nodes = (
        np.arange(_QUAD_PANELS)[:, None] + 0.5 * (_GL_X[None, :] + 1.0)
    ).ravel() / _QUAD_PANELS
    unit_weights = np.tile(0.5 * _GL_W, _QUAD_PANELS) / _QUAD_PANELS

    log_terms = []
    v_all = []
    rows = np.flatnonzero(concave)
    for direction, span, v_far in ((-1.0, span_left, v0), (1.0, span_right, v1)):
        s_nodes = span[:, None] * unit_nodes[None, :]
        v = v_peak[:, None] + direction * s_nodes  # the plain map (rows that are not concave)
        if rows.size:
            v[rows] = _newton_side(
                s_nodes[rows],
                v_peak[rows],
                v_far[rows],
                psi_peak[rows],
                c1[rows],
                c2[rows],
                direction,
            )
        jac = np.where(concave[:, None], 1.0 / (1.0 + np.abs(dpsi(v))), 1.0)
        with np.errstate(divide="ignore"):
            lw = np.log(span[:, None] * unit_weights[None, :]) + np.log(jac)
        log_terms.append(lw + psi(v) - psi_peak[:, None])
        v_all.append(v)
    lt = np.concatenate(log_terms, axis=1)
    v = np.concatenate(v_all, axis=1)
    lt = np.where(np.isfinite(lt), lt, -np.inf)
    weights = np.exp(lt)  # relative to exp(psi_peak)
    log_j = psi_peak + np.log(weights.sum(axis=1))

    # Remainder over [-log 2, 0]: D^A F(u1) = 2^-Q S(Q, A, 1/2) / A with Q = A + 1 - Q'.
    e_big = a + 1.0 - e_small
    log_s, ds_q, ds_a, _ = _hyp_series(e_big, a, np.full(k, 0.5), with_grad=with_grad)
    log_tail = -e_big * math.log(2.0) + log_s - np.log(a)
    log_k = np.logaddexp(log_j, log_tail)
    log_f = -a * log_d + log_k
    grad = np.zeros((4, k))
    if not with_grad:
        return log_f, grad
    share_j = np.exp(log_j - log_k)
    share_tail = np.exp(log_tail - log_k)
    norm = weights.sum(axis=1)
    # d log J / dQ' = E_J[-v], d log J / dA = E_J[log(1 - e^v)] under J's node weights.
    dj_q = np.einsum("ij,ij->i", weights, -v) / norm
    dj_a = np.einsum("ij,ij->i", weights, np.log1p(-np.exp(v))) / norm
    dtail_q_at_a = -math.log(2.0) + ds_q  # d/dQ with A held
    dtail_q = -dtail_q_at_a  # Q' up by one moves Q down by one
    dtail_a = dtail_q_at_a + ds_a - 1.0 / a
    dk_q = share_j * dj_q + share_tail * dtail_q
    dk_a = share_j * dj_a + share_tail * dtail_a
    dk_v0 = -np.exp(psi(v0) - log_k)
    grad[0] = dk_q
    grad[1] = -log_d + dk_a
    grad[2] = -a / d
    grad[3] = dk_v0
    return log_f, grad


def _log_tail(
    p: FloatArray,
    q: float,
    alpha: float,
    beta: float,
    u: FloatArray,
    *,
    with_grad: bool,
) -> tuple[FloatArray, FloatArray | None]:
    """``log F(u)``, ``F(u) = integral_u^inf (alpha+tau)^-p (beta+tau)^-q dtau``, and its gradient.

    The gradient rows are the partial derivatives with respect to ``(p, q, alpha, beta)``.
    Entries with ``z > _QUAD_ABOVE_Z`` use the quadrature, the others the series.
    """
    alpha_is_max = alpha >= beta
    big, small = (alpha, beta) if alpha_is_max else (beta, alpha)
    if alpha_is_max:
        e_big, e_small = p, np.full_like(p, q)
    else:
        e_big, e_small = np.full_like(p, q), p
    a = p + q - 1.0
    big_u = big + u
    small_u = small + u
    z = (big - small) / big_u
    log_f = np.empty(p.size)
    grad_big = np.empty((4, p.size))  # rows: e_big, e_small, big, small
    slow = z > _QUAD_ABOVE_Z
    fast = ~slow
    if fast.any():
        eb, es, af, bu, su = e_big[fast], e_small[fast], a[fast], big_u[fast], small_u[fast]
        log_s, ds_q, ds_a, ds_z = _hyp_series(eb, af, z[fast], with_grad=with_grad)
        log_bu = np.log(bu)
        log_su = np.log(su)
        log_f[fast] = -eb * log_bu - (es - 1.0) * log_su - np.log(af) + log_s
        if with_grad:
            # Partial derivatives with respect to the exponents (the other one held fixed; A
            # moves with both) and to the two scale parameters.
            grad_big[0, fast] = -log_bu + ds_q + ds_a - 1.0 / af
            grad_big[1, fast] = -log_su + ds_a - 1.0 / af
            grad_big[2, fast] = -eb / bu + ds_z * su / bu**2
            grad_big[3, fast] = -(es - 1.0) / su - ds_z / bu
    if slow.any():
        lf, g = _log_tail_quadrature(
            e_small[slow], a[slow], big, small, u[slow], with_grad=with_grad
        )
        log_f[slow] = lf
        if with_grad:
            # g rows: d/dQ' (A held), d/dA (Q' held), d/dD, d/dv0; A = Q + Q' - 1, D = M - m,
            # v0 = log(m+u) - log(M+u).
            grad_big[0, slow] = g[1]
            grad_big[1, slow] = g[0] + g[1]
            grad_big[2, slow] = g[2] - g[3] / big_u[slow]
            grad_big[3, slow] = -g[2] + g[3] / small_u[slow]
    if not with_grad:
        return log_f, None
    grad = np.empty((4, p.size))
    if alpha_is_max:
        grad[0], grad[1], grad[2], grad[3] = grad_big
    else:
        grad[0], grad[1], grad[2], grad[3] = grad_big[1], grad_big[0], grad_big[3], grad_big[2]
    return log_f, grad


@dataclass
class _Terms:
    """Per-customer pieces of the likelihood shared by the fit and the predictions."""

    log_likelihood: FloatArray
    log_alive_term: FloatArray  # log of the first bracket term (alive at T)
    log_bracket: FloatArray
    gradient: FloatArray | None = field(default=None)  # 4 x n, d log L_i / d(r, alpha, s, beta)


def _terms(
    params: tuple[float, float, float, float],
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,
    *,
    with_grad: bool = False,
    tail_index: tuple[FloatArray, FloatArray, NDArray[np.intp]] | None = None,
) -> _Terms:
    """Log-likelihood pieces for customers (x, t_x, T).

    ``tail_index`` optionally gives unique ``(x, u)`` pairs and the inverse index into the
    stacked ``[t_x, T]`` evaluation points, so repeated tail integrals are computed once.
    """
    r, alpha, s, beta = params
    q = s + 1.0
    n = x.size
    if tail_index is None:
        ux = np.concatenate([x, x])
        uu = np.concatenate([t_x, T])
        inverse = None
    else:
        ux, uu, inverse = tail_index
    log_f_all, grad_f_all = _log_tail(r + ux, q, alpha, beta, uu, with_grad=with_grad)
    if inverse is not None:
        log_f_all = log_f_all[inverse]
        if grad_f_all is not None:
            grad_f_all = grad_f_all[:, inverse]
    log_f_tx, log_f_t = log_f_all[:n], log_f_all[n:]

    p = r + x
    log_a_t = np.log(alpha + T)
    log_b_t = np.log(beta + T)
    log_alive = -p * log_a_t - s * log_b_t
    delta = np.minimum(log_f_t - log_f_tx, 0.0)
    with np.errstate(divide="ignore"):
        log_i = log_f_tx + np.log(-np.expm1(delta))  # -inf where t_x == T
    log_dead = math.log(s) + log_i
    log_bracket = np.logaddexp(log_alive, log_dead)
    ll = gammaln(p) - gammaln(r) + r * math.log(alpha) + s * math.log(beta) + log_bracket
    out = _Terms(ll, log_alive, log_bracket)
    if not with_grad:
        return out
    assert grad_f_all is not None
    g_tx, g_t = grad_f_all[:, :n], grad_f_all[:, n:]
    w = np.exp(delta)
    positive = w < 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        g_i = np.where(positive, (g_tx - w * g_t) / np.where(positive, 1.0 - w, 1.0), 0.0)
    pi_alive = np.exp(log_alive - log_bracket)
    pi_dead = np.exp(log_dead - log_bracket)
    grad = np.empty((4, n))
    grad[0] = digamma(p) - digamma(r) + math.log(alpha) - pi_alive * log_a_t + pi_dead * g_i[0]
    grad[1] = r / alpha - pi_alive * p / (alpha + T) + pi_dead * g_i[2]
    grad[2] = math.log(beta) - pi_alive * log_b_t + pi_dead * (1.0 / s + g_i[1])
    grad[3] = s / beta - pi_alive * s / (beta + T) + pi_dead * g_i[3]
    out.gradient = grad
    return out


def pareto_nbd_log_likelihood(
    r: float,
    alpha: float,
    s: float,
    beta: float,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
) -> FloatArray:
    """Per-customer Pareto/NBD log-likelihood ``log L(r, alpha, s, beta | x, t_x, T)``."""
    positive_params("Pareto/NBD", r=r, alpha=alpha, s=s, beta=beta)
    x, t_x, big_t = customer_arrays(frequency, recency, T)
    shape = x.shape
    terms = _terms((r, alpha, s, beta), x.ravel(), t_x.ravel(), big_t.ravel())
    return terms.log_likelihood.reshape(shape)


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParetoNBDModel:
    """A fitted (or given) Pareto/NBD model; times are in the unit of the data it was fitted to.

    Build one with :meth:`fit` or :meth:`from_params`. All prediction methods are vectorised
    over customers (arrays broadcast against each other).
    """

    r: float
    alpha: float
    s: float
    beta: float
    log_likelihood: float = math.nan
    standard_errors: dict[str, float] = field(default_factory=dict)
    n_customers: int = 0

    def __post_init__(self) -> None:
        positive_params("Pareto/NBD", r=self.r, alpha=self.alpha, s=self.s, beta=self.beta)

    @property
    def params(self) -> dict[str, float]:
        """``{"r": ..., "alpha": ..., "s": ..., "beta": ...}``."""
        return {"r": self.r, "alpha": self.alpha, "s": self.s, "beta": self.beta}

    @classmethod
    def from_params(
        cls,
        r: float,
        alpha: float,
        s: float,
        beta: float,
        *,
        log_likelihood: float = math.nan,
        standard_errors: dict[str, float] | None = None,
    ) -> ParetoNBDModel:
        """A model with known parameters (e.g. a stored fit or published values)."""
        return cls(
            float(r),
            float(alpha),
            float(s),
            float(beta),
            float(log_likelihood),
            dict(standard_errors or {}),
        )

    @classmethod
    def fit(
        cls,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        *,
        penalizer: float = 0.0,
        initial_params: dict[str, float] | None = None,
    ) -> ParetoNBDModel:
        """Maximum-likelihood fit to per-customer ``(x, t_x, T)``.

        Args:
            frequency: repeat purchases per customer (x).
            recency: time of the last purchase since the first (t_x).
            T: time from the first purchase to the end of the observation.
            penalizer: L2 penalty on the parameters, added to the mean negative log-likelihood
                (see ``fit_mle``). lifetimes' ParetoNBDFitter applies its ``penalizer_coef`` to
                the summed log-likelihood in rescaled time, so the values do not carry over.
            initial_params: starting values (default ``r = s = 1``, ``alpha = beta`` = mean T).

        Raises:
            FitError: invalid or degenerate data (e.g. no repeat purchases) or no convergence.
        """
        x, t_x, big_t = customer_arrays(frequency, recency, T, error=FitError, allow_empty=False)
        x, t_x, big_t = x.ravel(), t_x.ravel(), big_t.ravel()
        if not np.any(x > 0):
            raise FitError(
                "Pareto/NBD: no customer has a repeat purchase (all frequency = 0); the "
                "purchase and dropout processes cannot be identified"
            )
        # Identical customers contribute identical terms: fit on the distinct rows, weighted.
        rows, counts = np.unique(np.stack([x, t_x, big_t], axis=1), axis=0, return_counts=True)
        ux, utx, ut = rows[:, 0], rows[:, 1], rows[:, 2]
        weights = counts.astype(np.float64)
        pairs, inverse = np.unique(
            np.stack([np.concatenate([ux, ux]), np.concatenate([utx, ut])], axis=1),
            axis=0,
            return_inverse=True,
        )
        tail_index = (pairs[:, 0].copy(), pairs[:, 1].copy(), inverse.reshape(-1))

        def value_and_gradient(theta: FloatArray) -> tuple[float, FloatArray]:
            r, alpha, s, beta = (float(v) for v in theta)
            terms = _terms((r, alpha, s, beta), ux, utx, ut, with_grad=True, tail_index=tail_index)
            assert terms.gradient is not None
            nll = -float(weights @ terms.log_likelihood)
            grad = -(terms.gradient @ weights)
            if not (math.isfinite(nll) and np.all(np.isfinite(grad))):
                return math.inf, np.zeros(4)
            return nll, grad

        objective, gradient = split_value_and_gradient(value_and_gradient)
        mean_t = float(np.mean(big_t))
        x0 = {"r": 1.0, "alpha": mean_t, "s": 1.0, "beta": mean_t}
        if initial_params is not None:
            unknown = set(initial_params) - set(PARAM_NAMES)
            if unknown:
                raise FitError(
                    f"Pareto/NBD: unknown initial parameter(s) {sorted(unknown)}; "
                    f"use {list(PARAM_NAMES)}"
                )
            x0.update({k: float(v) for k, v in initial_params.items()})
        result = fit_mle(
            objective,
            gradient,
            x0,
            penalizer=penalizer,
            n_observations=int(x.size),
            model_name="Pareto/NBD",
        )
        p = result.params
        return cls(
            p["r"],
            p["alpha"],
            p["s"],
            p["beta"],
            result.log_likelihood,
            result.standard_errors,
            int(x.size),
        )

    # ---- likelihood -----------------------------------------------------------------------

    def log_likelihood_of(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Per-customer log-likelihood at this model's parameters."""
        return pareto_nbd_log_likelihood(
            self.r, self.alpha, self.s, self.beta, frequency, recency, T
        )

    def _customer_terms(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> tuple[FloatArray, FloatArray, _Terms]:
        x, t_x, big_t = customer_arrays(frequency, recency, T)
        shape = x.shape
        terms = _terms(self._tuple(), x.ravel(), t_x.ravel(), big_t.ravel())
        return (
            x,
            big_t,
            _Terms(
                terms.log_likelihood.reshape(shape),
                terms.log_alive_term.reshape(shape),
                terms.log_bracket.reshape(shape),
            ),
        )

    def _tuple(self) -> tuple[float, float, float, float]:
        return (self.r, self.alpha, self.s, self.beta)

    # ---- predictions ----------------------------------------------------------------------

    def probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """P(customer still alive at T | x, t_x, T) (Fader & Hardie 2005 note, eq. 36)."""
        _, _, terms = self._customer_terms(frequency, recency, T)
        return np.exp(terms.log_alive_term - terms.log_bracket)

    def conditional_expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """E[purchases in (T, T+t] | x, t_x, T] (Fader & Hardie 2005 note, eq. 41).

        ``P(alive) * (r+x)(beta+T) / ((alpha+T)(s-1)) * [1 - ((beta+T)/(beta+T+t))^(s-1)]``,
        evaluated in a form that stays exact as ``s -> 1``.
        """
        horizon_t = horizon(t)
        x, big_t, terms = self._customer_terms(frequency, recency, T)
        p_alive = np.exp(terms.log_alive_term - terms.log_bracket)
        r, alpha, s, beta = self._tuple()
        return p_alive * (r + x) / (alpha + big_t) * _dropout_integral(s, beta + big_t, horizon_t)

    def expected_purchases(self, t: ArrayLike) -> FloatArray:
        """Unconditional E[X(t)] for a customer just acquired (Fader & Hardie note, eq. 27)."""
        horizon_t = horizon(t)
        return self.r / self.alpha * _dropout_integral(self.s, self.beta, horizon_t)

    def probability_of_purchases(self, t: ArrayLike, n: ArrayLike) -> FloatArray:
        """P(X(t) = n): a new customer makes exactly ``n`` repeat purchases in (0, t] (see
        :func:`~.counts.pareto_nbd_count_pmf`); ``t`` and ``n`` broadcast."""
        t_arr = horizon(t)
        n_arr = purchase_counts(n)
        return pareto_nbd_count_pmf(self.r, self.alpha, self.s, self.beta, t_arr, n_arr)

    def conditional_probability_of_purchases(
        self, t: ArrayLike, n: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """P(n purchases in (T, T + t] | x, t_x, T): dead, (1 - P(alive)) [n = 0], or alive
        and then a new customer with lambda ~ Gamma(r + x, alpha + T), mu ~ Gamma(s, beta + T)
        (see :mod:`~.counts`). All arguments broadcast."""
        x, tx, big_t = customer_arrays(frequency, recency, T)
        t_arr = horizon(t)
        n_arr = purchase_counts(n)
        alive = self.probability_alive(x, tx, big_t)
        fresh = pareto_nbd_count_pmf(
            self.r + x, self.alpha + big_t, self.s, self.beta + big_t, t_arr, n_arr
        )
        return np.asarray(alive * fresh + (1.0 - alive) * (n_arr == 0), dtype=np.float64)

    def probability_of_no_purchase(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """P(Y(t) = 0 | x, t_x, T): no purchase in (T, T + t] (dead at T, or alive and no
        purchase before the window ends or they die)."""
        return self.conditional_probability_of_purchases(t, 0.0, frequency, recency, T)

    def time_to_next_purchase(
        self, frequency: ArrayLike, T: ArrayLike, *, quantile: float | None = 0.5
    ) -> FloatArray:
        """The waiting time from T to the next purchase of a customer alive at T were they to
        stay alive: Lomax with shape r + x and scale alpha + T, as for BG/NBD (see
        :meth:`BetaGeoModel.time_to_next_purchase`). A Pareto/NBD customer can die before that
        purchase (with probability E[mu / (lambda + mu)]); this is the purchase clock alone."""
        x, _, big_t = customer_arrays(frequency, np.zeros_like(np.asarray(frequency, float)), T)
        return purchase_wait(self.r + x, self.alpha + big_t, quantile)

    def discounted_expected_residual_transactions(
        self, delta: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """DERT at continuous discount rate ``delta`` per time unit: Fader, Hardie & Lee's
        (2005) closed form (see :mod:`~.dert`)."""
        x, big_t, terms = self._customer_terms(frequency, recency, T)
        p_alive = np.exp(terms.log_alive_term - terms.log_bracket)
        return pareto_nbd_dert(self.r, self.alpha, self.s, self.beta, delta, x, big_t, p_alive)

    def sample(
        self, T: ArrayLike, *, seed: int | np.random.Generator | None = None
    ) -> ParetoNBDSample:
        """Draw one synthetic customer per entry of ``T`` (observation length since first buy).

        Each customer gets ``lambda ~ Gamma(r, rate alpha)``, ``mu ~ Gamma(s, rate beta)``, an
        exponential lifetime of rate ``mu`` and Poisson purchases at rate ``lambda`` while alive
        and observed; ``frequency`` counts those purchases and ``recency`` is the last one.
        """
        big_t = positive_array(T, "T").ravel()
        rng = np.random.default_rng(seed)
        n = big_t.size
        lam = rng.gamma(self.r, 1.0 / self.alpha, size=n)
        mu = rng.gamma(self.s, 1.0 / self.beta, size=n)
        lifetime = rng.exponential(1.0, size=n) / mu
        active = np.minimum(lifetime, big_t)
        frequency = rng.poisson(lam * active).astype(np.float64)
        # Given N Poisson events in (0, a], the last one is a * U^(1/N).
        with np.errstate(divide="ignore"):
            u = rng.random(n) ** (1.0 / np.where(frequency > 0, frequency, 1.0))
        recency = np.where(frequency > 0, active * u, 0.0)
        return ParetoNBDSample(frequency, recency, big_t, lam, mu, lifetime)


def _dropout_integral(s: float, b: FloatArray | float, t: FloatArray) -> FloatArray:
    """``b / (s-1) * [1 - (b/(b+t))^(s-1)]`` = ``integral_0^t (b/(b+u))^s du``, stable at s=1."""
    log_ratio = np.log1p(t / b)  # log((b+t)/b)
    return np.asarray(b * log_ratio * exprel(-(s - 1.0) * log_ratio), dtype=np.float64)


__all__ = [
    "PARAM_NAMES",
    "ParetoNBDModel",
    "ParetoNBDSample",
    "pareto_nbd_log_likelihood",
]
