"""Time-invariant customer covariates for BG/NBD, Pareto/NBD and Gamma-Gamma (issue 12 §4).

Parametrisation (PyMC-Marketing's ``BetaGeoModel`` with covariates; CLVTools "static cov"):

- purchase process: ``alpha_i = alpha * exp(-z_i . gamma_purchase)``. ``alpha`` is the scale of
  the gamma-distributed purchase rate (mean rate ``r / alpha_i``), so a **positive coefficient
  means more purchases**;
- BG/NBD dropout: ``a_i = a * exp(z_i . gamma_dropout_a)`` and ``b_i = b * exp(z_i .
  gamma_dropout_b)`` (separate coefficients, as PyMC-Marketing); the mean dropout probability
  per purchase is ``a_i / (a_i + b_i)``, so a positive ``dropout_a`` coefficient means earlier
  dropout and a positive ``dropout_b`` coefficient later dropout;
- Gamma-Gamma spend: ``v_i = v * exp(z_i . gamma_spend)``; the expected value per transaction
  is ``p * v_i / (q - 1)``, so a **positive coefficient means higher spend** (the opposite sign
  of writing ``v * exp(-gamma z)``; chosen so every "more" effect is positive).

With covariates every customer has their own parameters, so the log-likelihood is evaluated per
customer (vectorised). The fit maximises it over ``(log base parameters, coefficients)`` with an
analytic gradient (chain rule from the per-customer parameters), on internally standardised
covariates; coefficients and base parameters are reported on the original covariate scale.
Standard errors come from the observed information (the Hessian as forward differences of the
analytic gradient, in the original scale), and a likelihood-ratio test compares the fit with
the same model without covariates (chi-square, df = number of coefficients).

- Pareto/NBD dropout: ``beta_i = beta * exp(-z_i . gamma_dropout)`` (PyMC-Marketing's
  ``ParetoNBDModel``); the mean dropout rate is ``s / beta_i``, so a positive coefficient means
  earlier dropout. Its per-customer likelihood uses the Gauss hypergeometric closed form of the
  dropout integral (scipy's ``hyp2f1``), and the partial derivatives with respect to the four
  per-customer parameters are central differences (the chain rule to the coefficients is
  analytic), so a gradient costs eight likelihood evaluations whatever the number of covariates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import digamma, gammaln, hyp2f1
from scipy.stats import chi2

from ._validation import customer_arrays, horizon
from .bgnbd import BetaGeoModel
from .errors import DataError, FitError
from .gammagamma import GammaGammaModel
from .paretonbd import ParetoNBDModel, _dropout_integral

FloatArray = NDArray[np.float64]
ValueAndGradient = Callable[[FloatArray], tuple[float, FloatArray]]

#: Processes each model has covariates for, in the order of the coefficient vector.
PROCESSES: dict[str, tuple[str, ...]] = {
    "bgnbd": ("purchase", "dropout_a", "dropout_b"),
    "paretonbd": ("purchase", "dropout"),
    "gammagamma": ("spend",),
}
BASE_PARAMS: dict[str, tuple[str, ...]] = {
    "bgnbd": ("r", "alpha", "a", "b"),
    "paretonbd": ("r", "alpha", "s", "beta"),
    "gammagamma": ("p", "q", "v"),
}


@dataclass(frozen=True)
class CovariateFit:
    """Result of a covariate fit.

    Attributes:
        model: ``"bgnbd"``, ``"paretonbd"`` or ``"gammagamma"``.
        params: base parameters (``r, alpha, a, b``; ``r, alpha, s, beta``; ``p, q, v``): the
            values for a customer whose covariates are all zero (original scale).
        coefficients: process -> {covariate name: coefficient} (see the module doc for signs).
        standard_errors: ``{"params": {name: se}, <process>: {covariate: se}}``.
        log_likelihood: total log-likelihood at the fit.
        n_customers: customers the likelihood sums over.
        lr_test: ``statistic``, ``df``, ``pValue`` and ``logLikelihoodWithout`` of the
            likelihood-ratio test against the same model without covariates.
    """

    model: str
    params: dict[str, float]
    coefficients: dict[str, dict[str, float]]
    standard_errors: dict[str, dict[str, float]]
    log_likelihood: float
    n_customers: int
    lr_test: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN standard errors become ``None``)."""

        def clean(d: Mapping[str, float]) -> dict[str, float | None]:
            return {k: (float(v) if math.isfinite(v) else None) for k, v in d.items()}

        return {
            "model": self.model,
            "params": dict(self.params),
            "coefficients": {k: dict(v) for k, v in self.coefficients.items()},
            "standardErrors": {k: clean(v) for k, v in self.standard_errors.items()},
            "logLikelihood": self.log_likelihood,
            "nCustomers": self.n_customers,
            "lrTest": dict(self.lr_test),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CovariateFit:
        """Inverse of :meth:`to_dict`."""
        model = str(data["model"])
        if model not in PROCESSES:
            raise DataError(f"model must be one of {sorted(PROCESSES)}, got {model!r}")

        def restore(d: Mapping[str, Any]) -> dict[str, float]:
            return {k: (math.nan if v is None else float(v)) for k, v in d.items()}

        return cls(
            model=model,
            params={k: float(v) for k, v in data["params"].items()},
            coefficients={k: restore(v) for k, v in data["coefficients"].items()},
            standard_errors={k: restore(v) for k, v in data["standardErrors"].items()},
            log_likelihood=float(data["logLikelihood"]),
            n_customers=int(data["nCustomers"]),
            lr_test={k: float(v) for k, v in data.get("lrTest", {}).items()},
        )

    def design(self, process: str, covariates: ArrayLike | None) -> FloatArray:
        """``z_i . gamma`` for one process, from rows of covariates in the fit's column order."""
        names = list(self.coefficients.get(process, {}))
        gamma = np.array([self.coefficients[process][n] for n in names], dtype=np.float64)
        if not names:
            if covariates is not None and np.asarray(covariates).size:
                raise DataError(f"{process}: the fit has no covariates but some were given")
            return np.zeros(1)
        z = _matrix(covariates, names, process, error=DataError, check_constant=False)
        return np.asarray(z @ gamma, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _matrix(
    values: ArrayLike | None,
    names: Sequence[str],
    process: str,
    *,
    n: int | None = None,
    error: type[ValueError] = FitError,
    check_constant: bool = True,
) -> FloatArray:
    """Validate an (n, k) covariate matrix against its column names."""
    k = len(names)
    if values is None:
        if k:
            raise error(f"{process} covariates: names {list(names)} given but no values")
        return np.zeros((n or 0, 0))
    z = np.asarray(values, dtype=np.float64)
    if z.ndim == 1 and k == 1:
        z = z[:, None]
    if z.ndim != 2:
        raise error(f"{process} covariates must be a 2-D array (customers x covariates)")
    if z.shape[1] != k:
        raise error(
            f"{process} covariates have {z.shape[1]} column(s) but {k} name(s) {list(names)}"
        )
    if len(set(names)) != k:
        raise error(f"{process} covariate names must be distinct, got {list(names)}")
    if n is not None and z.shape[0] != n:
        raise error(f"{process} covariates have {z.shape[0]} row(s) but there are {n} customers")
    bad = ~np.isfinite(z)
    if bad.any():
        cols = sorted({names[int(j)] for j in np.nonzero(bad)[1]})
        raise error(f"{process} covariate(s) {cols} contain NaN or infinite values")
    if check_constant and z.shape[0] > 1:
        constant = [names[j] for j in range(k) if np.ptp(z[:, j]) == 0 and np.any(z[:, j] != 0)]
        if constant:
            raise error(
                f"{process} covariate(s) {constant} are constant (non-zero) across customers; "
                "a constant column is confounded with the base parameter, drop it"
            )
    return z


def _standardise(z: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Centre and scale columns; all-zero columns stay zero (mean 0, scale 1)."""
    if z.shape[1] == 0:
        return z, np.zeros(0), np.ones(0)
    mean = z.mean(axis=0)
    sd = z.std(axis=0)
    zero = sd == 0
    mean = np.where(zero, 0.0, mean)
    sd = np.where(zero, 1.0, sd)
    return (z - mean) / sd, mean, sd


# --------------------------------------------------------------------------------------------
# Per-customer likelihoods
# --------------------------------------------------------------------------------------------


def bgnbd_customer_log_likelihood(
    r: float,
    alpha: FloatArray,
    a: FloatArray,
    b: FloatArray,
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,
    *,
    with_grad: bool = False,
) -> tuple[FloatArray, FloatArray | None]:
    """BG/NBD log-likelihood per customer with per-customer ``alpha, a, b``.

    Returns the log-likelihoods and, with ``with_grad``, a (4, n) array of their partial
    derivatives with respect to ``(r, alpha_i, a_i, b_i)``.
    """
    p = r + x
    has = x > 0
    xm1 = np.where(has, x - 1.0, 0.0)
    log_at = np.log(alpha + T)
    log_atx = np.log(alpha + t_x)
    common = gammaln(p) - gammaln(r) + r * np.log(alpha) + gammaln(a + b) - gammaln(b)
    common = common - gammaln(a + b + x)
    l1 = gammaln(b + x) - p * log_at
    with np.errstate(divide="ignore"):
        l2 = np.where(has, np.log(a) + gammaln(b + xm1) - p * log_atx, -np.inf)
    bracket = np.logaddexp(l1, l2)
    ll = common + bracket
    if not with_grad:
        return ll, None
    pi1 = np.exp(l1 - bracket)
    pi2 = np.exp(l2 - bracket)
    grad = np.empty((4, x.size))
    grad[0] = digamma(p) - digamma(r) + np.log(alpha) - pi1 * log_at - pi2 * log_atx
    grad[1] = r / alpha - p * (pi1 / (alpha + T) + pi2 / (alpha + t_x))
    psi_ab = digamma(a + b)
    psi_abx = digamma(a + b + x)
    grad[2] = psi_ab - psi_abx + pi2 / a
    grad[3] = psi_ab - digamma(b) - psi_abx + pi1 * digamma(b + x) + pi2 * digamma(b + xm1)
    return ll, grad


def _log_dropout_tail(
    p: FloatArray, q: float, alpha: FloatArray, beta: FloatArray, u: FloatArray
) -> FloatArray:
    """``log integral_u^inf (alpha+tau)^-p (beta+tau)^-q dtau`` per customer.

    With ``M = max(alpha, beta)`` the integral is ``(M+u)^-(p+q-1) / (p+q-1) *
    2F1(p+q-1, e; p+q; |alpha-beta| / (M+u))``, ``e`` the exponent of the smaller scale.
    """
    alpha_max = alpha >= beta
    big = np.where(alpha_max, alpha, beta)
    small = np.where(alpha_max, beta, alpha)
    e_small = np.where(alpha_max, q, p)
    c = p + q - 1.0
    z = (big - small) / (big + u)
    return np.asarray(
        -c * np.log(big + u) - np.log(c) + np.log(hyp2f1(c, e_small, c + 1.0, z)),
        dtype=np.float64,
    )


def paretonbd_customer_log_likelihood(
    r: float,
    alpha: FloatArray,
    s: float,
    beta: FloatArray,
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Pareto/NBD log-likelihood per customer with per-customer ``alpha, beta``.

    Also returns the log of P(alive at T | data) per customer.
    ``L = Gamma(r+x) alpha^r beta^s / Gamma(r) [(alpha+T)^-(r+x) (beta+T)^-s + s I]`` with
    ``I = integral_{t_x}^T (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau`` (Fader & Hardie 2005).
    """
    p = r + x
    log_alive = -p * np.log(alpha + T) - s * np.log(beta + T)
    log_f_tx = _log_dropout_tail(p, s + 1.0, alpha, beta, t_x)
    log_f_t = _log_dropout_tail(p, s + 1.0, alpha, beta, T)
    delta = np.minimum(log_f_t - log_f_tx, 0.0)
    with np.errstate(divide="ignore"):
        log_dead = math.log(s) + log_f_tx + np.log(-np.expm1(delta))
    bracket = np.logaddexp(log_alive, log_dead)
    ll = gammaln(p) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + bracket
    return ll, log_alive - bracket


def gammagamma_customer_log_likelihood(
    p: float,
    q: float,
    v: FloatArray,
    x: FloatArray,
    m: FloatArray,
    *,
    with_grad: bool = False,
) -> tuple[FloatArray, FloatArray | None]:
    """Gamma-Gamma log-likelihood of repeat customers' average values with per-customer ``v``.

    With ``with_grad``, also a (3, n) array of partial derivatives with respect to
    ``(p, q, v_i)``.
    """
    px = p * x
    log_vxm = np.log(v + x * m)
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * log_vxm
    )
    if not with_grad:
        return ll, None
    psi = digamma(px + q)
    grad = np.empty((3, x.size))
    grad[0] = x * (psi - digamma(px) + np.log(m) + np.log(x) - log_vxm)
    grad[1] = psi - digamma(q) + np.log(v) - log_vxm
    grad[2] = q / v - (px + q) / (v + x * m)
    return ll, grad


# --------------------------------------------------------------------------------------------
# Objectives over (log base params, coefficients)
# --------------------------------------------------------------------------------------------


def _bgnbd_objective(
    x: FloatArray, t_x: FloatArray, big_t: FloatArray, zp: FloatArray, zd: FloatArray
) -> ValueAndGradient:
    kp, kd = zp.shape[1], zd.shape[1]

    def value_and_gradient(theta: FloatArray) -> tuple[float, FloatArray]:
        r, alpha, a, b = np.exp(theta[:4])
        gp = theta[4 : 4 + kp]
        ga = theta[4 + kp : 4 + kp + kd]
        gb = theta[4 + kp + kd :]
        alpha_i = alpha * np.exp(-(zp @ gp)) if kp else np.full(x.size, alpha)
        a_i = a * np.exp(zd @ ga) if kd else np.full(x.size, a)
        b_i = b * np.exp(zd @ gb) if kd else np.full(x.size, b)
        ll, g = bgnbd_customer_log_likelihood(r, alpha_i, a_i, b_i, x, t_x, big_t, with_grad=True)
        assert g is not None
        d_alpha = g[1] * alpha_i  # d ll / d log(alpha_i)
        d_a = g[2] * a_i
        d_b = g[3] * b_i
        grad = np.concatenate(
            [
                [r * g[0].sum(), d_alpha.sum(), d_a.sum(), d_b.sum()],
                -(d_alpha @ zp),
                d_a @ zd,
                d_b @ zd,
            ]
        )
        return -float(ll.sum()), -grad

    return value_and_gradient


def _paretonbd_objective(
    x: FloatArray, t_x: FloatArray, big_t: FloatArray, zp: FloatArray, zd: FloatArray
) -> ValueAndGradient:
    kp, kd = zp.shape[1], zd.shape[1]
    step = 1e-5  # relative step of the central differences in log(per-customer parameter)

    def value_and_gradient(theta: FloatArray) -> tuple[float, FloatArray]:
        log_r, log_alpha, log_s, log_beta = theta[:4]
        la = log_alpha - (zp @ theta[4 : 4 + kp]) if kp else np.full(x.size, log_alpha)
        lb = log_beta - (zd @ theta[4 + kp :]) if kd else np.full(x.size, log_beta)

        def ll(lr: float, la_: FloatArray, ls: float, lb_: FloatArray) -> FloatArray:
            return paretonbd_customer_log_likelihood(
                math.exp(lr), np.exp(la_), math.exp(ls), np.exp(lb_), x, t_x, big_t
            )[0]

        value = ll(log_r, la, log_s, lb)
        d_r = (ll(log_r + step, la, log_s, lb) - ll(log_r - step, la, log_s, lb)) / (2 * step)
        d_a = (ll(log_r, la + step, log_s, lb) - ll(log_r, la - step, log_s, lb)) / (2 * step)
        d_s = (ll(log_r, la, log_s + step, lb) - ll(log_r, la, log_s - step, lb)) / (2 * step)
        d_b = (ll(log_r, la, log_s, lb + step) - ll(log_r, la, log_s, lb - step)) / (2 * step)
        grad = np.concatenate(
            [[d_r.sum(), d_a.sum(), d_s.sum(), d_b.sum()], -(d_a @ zp), -(d_b @ zd)]
        )
        return -float(value.sum()), -grad

    return value_and_gradient


def _gammagamma_objective(x: FloatArray, m: FloatArray, zs: FloatArray) -> ValueAndGradient:
    ks = zs.shape[1]

    def value_and_gradient(theta: FloatArray) -> tuple[float, FloatArray]:
        p, q, v = np.exp(theta[:3])
        gs = theta[3:]
        v_i = v * np.exp(zs @ gs) if ks else np.full(x.size, v)
        ll, g = gammagamma_customer_log_likelihood(p, q, v_i, x, m, with_grad=True)
        assert g is not None
        d_v = g[2] * v_i
        grad = np.concatenate([[p * g[0].sum(), q * g[1].sum(), d_v.sum()], d_v @ zs])
        return -float(ll.sum()), -grad

    return value_and_gradient


def _minimise(objective: ValueAndGradient, start: FloatArray, n: int, model: str) -> FloatArray:
    """L-BFGS-B on the mean negative log-likelihood; returns the optimum."""
    scale = 1.0 / n

    def fun(theta: FloatArray) -> tuple[float, FloatArray]:
        value, grad = objective(theta)
        value *= scale
        if not math.isfinite(value) or not np.all(np.isfinite(grad)):
            return math.inf, np.zeros_like(theta)
        return value, grad * scale

    options = {"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-9}
    res = minimize(fun, start, jac=True, method="L-BFGS-B", options=options)
    if not res.success:
        res2 = minimize(fun, res.x, jac=True, method="L-BFGS-B", options=options)
        if res2.fun <= res.fun:
            res = res2
        grad = fun(res.x)[1]
        if not (res2.success or float(np.max(np.abs(grad))) < 1e-5):
            raise FitError(
                f"{model} with covariates: the optimiser did not converge ({res.message}); "
                "check the covariates for extreme values or near-collinear columns"
            )
    if not math.isfinite(float(res.fun)) or not np.all(np.isfinite(res.x)):
        raise FitError(f"{model} with covariates: the fit ended on a non-finite likelihood")
    return np.asarray(res.x, dtype=np.float64)


def _hessian(objective: ValueAndGradient, theta: FloatArray) -> FloatArray:
    """Forward differences of the analytic gradient of the total negative log-likelihood."""
    k = theta.size
    h = np.empty((k, k))
    g0 = objective(theta)[1]
    for i in range(k):
        step = 1e-6 * max(1.0, abs(theta[i]))
        e = np.zeros(k)
        e[i] = step
        h[i] = (objective(theta + e)[1] - g0) / step
    return 0.5 * (h + h.T)


def _errors(hessian: FloatArray) -> FloatArray:
    try:
        cov = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        return np.full(hessian.shape[0], np.nan)
    diag = np.diag(cov)
    with np.errstate(invalid="ignore"):
        return np.where(diag > 0, np.sqrt(np.abs(diag)), np.nan)


def _to_original(
    theta_std: FloatArray,
    n_base: int,
    blocks: Sequence[tuple[int, FloatArray, FloatArray, float]],
) -> FloatArray:
    """Map (log base, coefficients on standardised z) to the original covariate scale.

    Each block is ``(base index, mean, sd, sign)``: the per-customer parameter is
    ``base * exp(sign * z_std . g)``; with ``z_std = (z - mean) / sd`` the coefficient on ``z``
    is ``g / sd`` and the base absorbs ``exp(-sign * mean . g / sd)``.
    """
    theta = theta_std.copy()
    offset = n_base
    for base_index, mean, sd, sign in blocks:
        k = mean.size
        g = theta_std[offset : offset + k] / sd
        theta[offset : offset + k] = g
        theta[base_index] -= sign * float(mean @ g)
        offset += k
    return theta


def _lr_test(ll: float, ll_without: float, df: int) -> dict[str, float]:
    statistic = max(0.0, 2.0 * (ll - ll_without))
    p_value = float(chi2.sf(statistic, df)) if df > 0 else 1.0
    return {
        "statistic": statistic,
        "df": float(df),
        "pValue": p_value,
        "logLikelihoodWithout": ll_without,
    }


def _pack(
    model: str,
    theta: FloatArray,
    errors_log: FloatArray,
    names: dict[str, Sequence[str]],
    ll: float,
    n: int,
    lr: dict[str, float],
) -> CovariateFit:
    base_names = BASE_PARAMS[model]
    nb = len(base_names)
    base = np.exp(theta[:nb])
    params = {k: float(v) for k, v in zip(base_names, base, strict=True)}
    # Delta method: se(theta) = theta * se(log theta).
    ses: dict[str, dict[str, float]] = {
        "params": {
            k: float(v * e) for k, v, e in zip(base_names, base, errors_log[:nb], strict=True)
        }
    }
    coefficients: dict[str, dict[str, float]] = {}
    offset = nb
    for process in PROCESSES[model]:
        cols = list(names.get(process, ()))
        k = len(cols)
        coefficients[process] = {
            c: float(v) for c, v in zip(cols, theta[offset : offset + k], strict=True)
        }
        ses[process] = {
            c: float(v) for c, v in zip(cols, errors_log[offset : offset + k], strict=True)
        }
        offset += k
    return CovariateFit(model, params, coefficients, ses, ll, n, lr)


# --------------------------------------------------------------------------------------------
# Fits
# --------------------------------------------------------------------------------------------


def fit_bgnbd_covariates(
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    purchase: ArrayLike | None,
    dropout: ArrayLike | None,
    names_purchase: Sequence[str] = (),
    names_dropout: Sequence[str] = (),
    penalizer: float = 0.0,
) -> CovariateFit:
    """BG/NBD with covariates on the purchase rate and on the dropout (a and b).

    Args:
        x, t_x, T: per-customer repeat purchases, recency and age (see ``summary.py``).
        purchase: (n, k1) covariates of the purchase process (``alpha_i``), or ``None``.
        dropout: (n, k2) covariates of the dropout process (both ``a_i`` and ``b_i`` get a
            coefficient per column), or ``None``.
        names_purchase, names_dropout: column names.
        penalizer: L2 penalty on the base parameters of the model without covariates (passed
            to :meth:`BetaGeoModel.fit`, the starting point and the LR-test reference); the
            covariate fit itself is unpenalised, so only 0 is accepted for now.

    Raises:
        FitError: invalid customers or covariates (NaN, wrong shape, constant column, unequal
            names), no repeat customers, or no convergence.
    """
    if penalizer != 0.0:
        raise FitError("penalizer: covariate fits support only penalizer = 0 for now")
    xs, txs, ts = customer_arrays(x, t_x, T, error=FitError, allow_empty=False)
    xs, txs, ts = xs.ravel(), txs.ravel(), ts.ravel()
    n = xs.size
    zp = _matrix(purchase, names_purchase, "purchase", n=n)
    zd = _matrix(dropout, names_dropout, "dropout", n=n)
    plain = BetaGeoModel.fit(xs, txs, ts)
    ll_without = float(plain.log_likelihood)
    zp_std, mp, sp = _standardise(zp)
    zd_std, md, sd = _standardise(zd)
    kp, kd = zp.shape[1], zd.shape[1]
    start = np.concatenate(
        [np.log([plain.r, plain.alpha, plain.a, plain.b]), np.zeros(kp + 2 * kd)]
    )
    theta_std = _minimise(_bgnbd_objective(xs, txs, ts, zp_std, zd_std), start, n, "BG/NBD")
    blocks = [(1, mp, sp, -1.0), (2, md, sd, 1.0), (3, md, sd, 1.0)]
    theta = _to_original(theta_std, 4, blocks)
    objective = _bgnbd_objective(xs, txs, ts, zp, zd)
    nll = objective(theta)[0]
    errors = _errors(_hessian(objective, theta))
    names = {"purchase": names_purchase, "dropout_a": names_dropout, "dropout_b": names_dropout}
    lr = _lr_test(-nll, ll_without, kp + 2 * kd)
    return _pack("bgnbd", theta, errors, names, -nll, n, lr)


def fit_paretonbd_covariates(
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    purchase: ArrayLike | None,
    dropout: ArrayLike | None,
    names_purchase: Sequence[str] = (),
    names_dropout: Sequence[str] = (),
    penalizer: float = 0.0,
) -> CovariateFit:
    """Pareto/NBD with covariates on the purchase rate (``alpha_i``) and dropout (``beta_i``).

    Arguments and errors as :func:`fit_bgnbd_covariates`; df of the LR test = k1 + k2.
    """
    if penalizer != 0.0:
        raise FitError("penalizer: covariate fits support only penalizer = 0 for now")
    xs, txs, ts = customer_arrays(x, t_x, T, error=FitError, allow_empty=False)
    xs, txs, ts = xs.ravel(), txs.ravel(), ts.ravel()
    n = xs.size
    zp = _matrix(purchase, names_purchase, "purchase", n=n)
    zd = _matrix(dropout, names_dropout, "dropout", n=n)
    plain = ParetoNBDModel.fit(xs, txs, ts)
    zp_std, mp, sp = _standardise(zp)
    zd_std, md, sd = _standardise(zd)
    kp, kd = zp.shape[1], zd.shape[1]
    start = np.concatenate([np.log([plain.r, plain.alpha, plain.s, plain.beta]), np.zeros(kp + kd)])
    objective_std = _paretonbd_objective(xs, txs, ts, zp_std, zd_std)
    theta_std = _minimise(objective_std, start, n, "Pareto/NBD")
    theta = _to_original(theta_std, 4, [(1, mp, sp, -1.0), (3, md, sd, -1.0)])
    objective = _paretonbd_objective(xs, txs, ts, zp, zd)
    nll = objective(theta)[0]
    errors = _errors(_hessian(objective, theta))
    lr = _lr_test(-nll, float(plain.log_likelihood), kp + kd)
    names = {"purchase": names_purchase, "dropout": names_dropout}
    return _pack("paretonbd", theta, errors, names, -nll, n, lr)


def fit_gammagamma_covariates(
    frequency: ArrayLike,
    monetary_value: ArrayLike,
    spend: ArrayLike | None,
    names: Sequence[str] = (),
) -> CovariateFit:
    """Gamma-Gamma with covariates on the spend scale ``v_i = v * exp(z_i . gamma)``.

    Customers with frequency 0 carry no spend information and are dropped (with their
    covariate rows), as in :meth:`GammaGammaModel.fit`.

    Raises:
        FitError: invalid data or covariates, no repeat customers, or no convergence.
    """
    x = np.asarray(frequency, dtype=np.float64).ravel()
    m = np.asarray(monetary_value, dtype=np.float64).ravel()
    if x.shape != m.shape:
        raise FitError("frequency and monetary_value must have the same length")
    zs_all = _matrix(spend, names, "spend", n=x.size)
    plain = GammaGammaModel.fit(x, m)
    keep = x > 0
    xk, mk, zs = x[keep], m[keep], zs_all[keep]
    zs = _matrix(zs, names, "spend")  # constant among repeat customers is also confounded
    n = xk.size
    zs_std, ms, ss = _standardise(zs)
    start = np.concatenate([np.log([plain.p, plain.q, plain.v]), np.zeros(zs.shape[1])])
    theta_std = _minimise(_gammagamma_objective(xk, mk, zs_std), start, n, "Gamma-Gamma")
    theta = _to_original(theta_std, 3, [(2, ms, ss, 1.0)])
    objective = _gammagamma_objective(xk, mk, zs)
    nll = objective(theta)[0]
    errors = _errors(_hessian(objective, theta))
    lr = _lr_test(-nll, float(plain.log_likelihood), zs.shape[1])
    return _pack("gammagamma", theta, errors, {"spend": names}, -nll, n, lr)


# --------------------------------------------------------------------------------------------
# Predictions
# --------------------------------------------------------------------------------------------


def _bgnbd_customer_params(
    fit: CovariateFit, purchase: ArrayLike | None, dropout: ArrayLike | None
) -> tuple[float, FloatArray, FloatArray, FloatArray]:
    if fit.model != "bgnbd":
        raise DataError(f"expected a BG/NBD covariate fit, got {fit.model!r}")
    p = fit.params
    alpha_i = p["alpha"] * np.exp(-fit.design("purchase", purchase))
    a_i = p["a"] * np.exp(fit.design("dropout_a", dropout))
    b_i = p["b"] * np.exp(fit.design("dropout_b", dropout))
    return p["r"], alpha_i, a_i, b_i


def _paretonbd_customer_params(
    fit: CovariateFit, purchase: ArrayLike | None, dropout: ArrayLike | None
) -> tuple[float, FloatArray, float, FloatArray]:
    p = fit.params
    alpha_i = p["alpha"] * np.exp(-fit.design("purchase", purchase))
    beta_i = p["beta"] * np.exp(-fit.design("dropout", dropout))
    return p["r"], alpha_i, p["s"], beta_i


def probability_alive(
    fit: CovariateFit,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    purchase: ArrayLike | None = None,
    dropout: ArrayLike | None = None,
) -> FloatArray:
    """P(alive at T | x, t_x, T, z_i) per customer, for a BG/NBD or Pareto/NBD fit."""
    xs, txs, ts = customer_arrays(x, t_x, T)
    if fit.model == "paretonbd":
        r, alpha, s, beta = _paretonbd_customer_params(fit, purchase, dropout)
        shape = np.broadcast_shapes(xs.shape, alpha.shape, beta.shape)
        args = [np.broadcast_to(a, shape).ravel() for a in (alpha, beta, xs, txs, ts)]
        _, log_p = paretonbd_customer_log_likelihood(r, args[0], s, *args[1:])
        return np.exp(log_p).reshape(shape)
    r, alpha, a, b = _bgnbd_customer_params(fit, purchase, dropout)
    with np.errstate(divide="ignore"):
        log_odds = (
            np.log(a)
            - np.log(b + np.maximum(xs, 1.0) - 1.0)
            + (r + xs) * (np.log(alpha + ts) - np.log(alpha + txs))
        )
    return np.asarray(np.where(xs > 0, 1.0 / (1.0 + np.exp(log_odds)), 1.0), dtype=np.float64)


def conditional_expected_purchases(
    fit: CovariateFit,
    t: ArrayLike,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    purchase: ArrayLike | None = None,
    dropout: ArrayLike | None = None,
) -> FloatArray:
    """E[purchases in (T, T+t] | x, t_x, T, z_i] per customer, BG/NBD or Pareto/NBD fit.

    BG/NBD: Fader, Hardie & Lee (2005), eq. 10; Pareto/NBD: Fader & Hardie (2005 note), eq. 41.
    """
    horizon_t = horizon(t)
    xs, txs, ts = customer_arrays(x, t_x, T)
    if fit.model == "paretonbd":
        p_alive = probability_alive(fit, xs, txs, ts, purchase, dropout)
        r, alpha, s, beta = _paretonbd_customer_params(fit, purchase, dropout)
        later = _dropout_integral(s, beta + ts, horizon_t)
        return np.asarray(p_alive * (r + xs) / (alpha + ts) * later, dtype=np.float64)
    r, alpha, a, b = _bgnbd_customer_params(fit, purchase, dropout)
    z = horizon_t / (alpha + ts + horizon_t)
    hyp = hyp2f1(r + xs, b + xs, a + b + xs - 1.0, z)
    numerator = (
        (a + b + xs - 1.0)
        / (a - 1.0)
        * (1.0 - ((alpha + ts) / (alpha + ts + horizon_t)) ** (r + xs) * hyp)
    )
    with np.errstate(divide="ignore"):
        odds = np.where(
            xs > 0,
            a / (b + np.maximum(xs, 1.0) - 1.0) * ((alpha + ts) / (alpha + txs)) ** (r + xs),
            0.0,
        )
    return np.asarray(numerator / (1.0 + odds), dtype=np.float64)


def expected_spend(
    fit: CovariateFit,
    frequency: ArrayLike,
    monetary_value: ArrayLike,
    spend: ArrayLike | None = None,
) -> FloatArray:
    """Gamma-Gamma E[value per transaction | x, m, z_i]: ``p (v_i + x m) / (p x + q - 1)``."""
    if fit.model != "gammagamma":
        raise DataError(f"expected a Gamma-Gamma covariate fit, got {fit.model!r}")
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary_value, dtype=np.float64)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(m))) or np.any(x < 0):
        raise DataError("frequency and monetary_value must be finite, frequency >= 0")
    p, q, v = fit.params["p"], fit.params["q"], fit.params["v"]
    v_i = v * np.exp(fit.design("spend", spend))
    m_used = np.where(x > 0, m, 0.0)
    return np.asarray(p * (v_i + x * m_used) / (p * x + q - 1.0), dtype=np.float64)
