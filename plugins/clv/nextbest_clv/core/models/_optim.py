"""Maximum-likelihood driver shared by the models.

Every model parameter is positive, so the optimiser works on ``log(theta)`` with box bounds
(L-BFGS-B), which keeps the search away from zero and infinity without constraints in the model
code. Models supply the negative log-likelihood (and, when they have it, its gradient) in the
natural parameters; the chain rule to log-space is applied here.

Objective, as in lifetimes' ``penalizer_coef``::

    neg_log_likelihood(theta) / n_observations + penalizer * sum(theta ** 2)

Dividing by the number of observations keeps gradients of order one whatever the data size, so
the same tolerances work for 2,000 and for 1,000,000 customers, and makes ``penalizer`` mean the
same thing as in lifetimes when ``n_observations`` is the number of customers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

from .errors import FitError

FloatArray = NDArray[np.float64]
Objective = Callable[[FloatArray], float]
Gradient = Callable[[FloatArray], FloatArray]

#: Default bounds on log-parameters: 1e-9 .. 1e9 in natural units.
DEFAULT_LOG_BOUNDS: tuple[float, float] = (math.log(1e-9), math.log(1e9))


@dataclass(frozen=True)
class MLEResult:
    """Outcome of :func:`fit_mle`.

    Attributes:
        params: fitted parameters in natural units, in the order of ``x0``.
        log_likelihood: total log-likelihood at ``params`` (without the penalty).
        standard_errors: square roots of the diagonal of the inverse Hessian of the penalised
            total negative log-likelihood in natural units; ``nan`` for a parameter whose
            curvature is not positive (a flat or ill-defined direction).
        converged: whether the optimiser reported convergence (or its projected gradient is
            below tolerance after a restart).
        iterations: optimiser iterations, summed over restarts.
    """

    params: dict[str, float]
    log_likelihood: float
    standard_errors: dict[str, float]
    converged: bool
    iterations: int


def split_value_and_gradient(
    value_and_gradient: Callable[[FloatArray], tuple[float, FloatArray]],
) -> tuple[Objective, Gradient]:
    """Turn one function returning ``(value, gradient)`` into the two callables `fit_mle` takes.

    The optimiser asks for the value and the gradient at the same point one after the other; a
    one-entry cache lets both come from a single evaluation of the shared intermediate terms.
    """
    cache: dict[str, object] = {}

    def evaluate(theta: FloatArray) -> tuple[float, FloatArray]:
        key = theta.tobytes()
        if cache.get("key") != key:
            value, grad = value_and_gradient(theta)
            cache["key"] = key
            cache["result"] = (float(value), np.asarray(grad, dtype=np.float64))
        result = cache["result"]
        assert isinstance(result, tuple)
        return result

    def value(theta: FloatArray) -> float:
        return evaluate(theta)[0]

    def gradient(theta: FloatArray) -> FloatArray:
        return evaluate(theta)[1]

    return value, gradient


def fit_mle(
    neg_log_likelihood: Objective,
    gradient: Gradient | None,
    x0: dict[str, float],
    *,
    penalizer: float = 0.0,
    n_observations: float = 1.0,
    log_bounds: tuple[float, float] = DEFAULT_LOG_BOUNDS,
    max_iterations: int = 2000,
    gradient_tolerance: float = 1e-9,
    model_name: str = "model",
) -> MLEResult:
    """Maximise a log-likelihood over positive parameters.

    Args:
        neg_log_likelihood: total negative log-likelihood as a function of the natural
            parameters (a float array in the order of ``x0``'s keys).
        gradient: its gradient in the natural parameters, or ``None`` for central finite
            differences in log-space.
        x0: parameter names and positive starting values.
        penalizer: L2 penalty coefficient on the natural parameters, added to the mean
            negative log-likelihood (lifetimes' ``penalizer_coef``); 0 for plain MLE.
        n_observations: the number (or total weight) of independent observations (customers,
            cohort members) the likelihood sums over; scales the objective (see the module doc).
        log_bounds: lower and upper bound of every log-parameter.
        max_iterations: optimiser iteration cap per attempt.
        gradient_tolerance: tolerance on the projected gradient of the mean objective.
        model_name: used in error messages.

    Raises:
        FitError: invalid settings, a likelihood that is not finite at the start or the end,
            a parameter that runs to its bound (the data cannot identify it), or no
            convergence.
    """
    names = list(x0)
    start = np.array([x0[n] for n in names], dtype=np.float64)
    if not names:
        raise FitError(f"{model_name}: no parameters to fit")
    if not np.all(np.isfinite(start)) or np.any(start <= 0):
        raise FitError(f"{model_name}: starting values must be positive and finite, got {x0}")
    if not math.isfinite(penalizer) or penalizer < 0:
        raise FitError(f"{model_name}: penalizer must be a finite number >= 0, got {penalizer}")
    if not (math.isfinite(n_observations) and n_observations > 0):
        raise FitError(f"{model_name}: n_observations must be > 0, got {n_observations}")
    lo, hi = log_bounds
    scale = 1.0 / n_observations

    def objective(log_theta: FloatArray) -> float:
        theta = np.exp(log_theta)
        value = float(neg_log_likelihood(theta)) * scale + penalizer * float(theta @ theta)
        # L-BFGS-B cannot recover from a NaN; +inf makes the line search step back instead.
        return value if math.isfinite(value) else math.inf

    def objective_grad(log_theta: FloatArray) -> FloatArray:
        assert gradient is not None
        theta = np.exp(log_theta)
        g = np.asarray(gradient(theta), dtype=np.float64) * scale + 2.0 * penalizer * theta
        return g * theta  # chain rule: d/dlog(theta) = theta * d/dtheta

    log_start = np.clip(np.log(start), lo, hi)
    if not math.isfinite(objective(log_start)):
        raise FitError(
            f"{model_name}: the log-likelihood is not finite at the starting values {x0}; "
            "check the data for NaN, infinite or out-of-range values"
        )
    jac: Gradient | str = objective_grad if gradient is not None else "3-point"
    options = {"maxiter": max_iterations, "ftol": 1e-15, "gtol": gradient_tolerance}
    bounds = [(lo, hi)] * len(names)

    res = minimize(objective, log_start, jac=jac, method="L-BFGS-B", bounds=bounds, options=options)
    iterations = int(res.nit)
    converged = bool(res.success)
    if not converged and np.all(np.isfinite(res.x)):
        # L-BFGS-B often stops with "abnormal termination in line search" right at the optimum
        # when the objective is flat to machine precision; one restart from there settles it.
        res2 = minimize(
            objective, res.x, jac=jac, method="L-BFGS-B", bounds=bounds, options=options
        )
        iterations += int(res2.nit)
        if res2.fun <= res.fun:
            res = res2
        converged = bool(res2.success) or _projected_gradient_small(
            objective, objective_grad if gradient is not None else None, res.x, bounds
        )
    if not math.isfinite(float(res.fun)) or not np.all(np.isfinite(res.x)):
        raise FitError(
            f"{model_name}: the optimiser ended on a non-finite log-likelihood ({res.message}); "
            "the data may be degenerate (e.g. no repeat customers or all-identical rows)"
        )
    if not converged:
        raise FitError(
            f"{model_name}: the optimiser did not converge after {iterations} iterations "
            f"({res.message}); try a penalizer > 0 or check the data"
        )
    at_bound = [n for n, v in zip(names, res.x, strict=True) if v <= lo + 1e-6 or v >= hi - 1e-6]
    if at_bound:
        raise FitError(
            f"{model_name}: parameter(s) {', '.join(at_bound)} ran to the edge of the allowed "
            f"range (exp({lo:.1f})..exp({hi:.1f})); the data cannot identify them. Check for "
            "degenerate data (too few customers, no repeat purchases) or use a penalizer > 0"
        )

    theta = np.exp(res.x)
    nll = float(neg_log_likelihood(theta))
    if not math.isfinite(nll):
        raise FitError(f"{model_name}: the log-likelihood is not finite at the fitted parameters")
    hessian = _hessian(neg_log_likelihood, gradient, theta)
    hessian += 2.0 * penalizer * n_observations * np.eye(len(names))
    errors = _standard_errors(hessian)
    return MLEResult(
        params={n: float(v) for n, v in zip(names, theta, strict=True)},
        log_likelihood=-nll,
        standard_errors={n: float(v) for n, v in zip(names, errors, strict=True)},
        converged=True,
        iterations=iterations,
    )


def _projected_gradient_small(
    objective: Objective,
    objective_grad: Gradient | None,
    x: FloatArray,
    bounds: list[tuple[float, float]],
    tolerance: float = 1e-5,
) -> bool:
    """Whether the projected gradient of the (mean) objective at ``x`` is below ``tolerance``."""
    if objective_grad is not None:
        g = objective_grad(x)
    else:
        g = np.empty_like(x)
        for i in range(x.size):
            h = 1e-6 * max(1.0, abs(x[i]))
            e = np.zeros_like(x)
            e[i] = h
            g[i] = (objective(x + e) - objective(x - e)) / (2 * h)
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    projected = np.clip(x - g, lo, hi) - x
    return bool(np.all(np.isfinite(projected)) and np.max(np.abs(projected)) < tolerance)


def _hessian(
    neg_log_likelihood: Objective, gradient: Gradient | None, theta: FloatArray
) -> FloatArray:
    """Numeric Hessian in natural units: forward differences of the gradient when available
    (k + 1 gradient evaluations; with a step near sqrt(machine epsilon) their error is far below
    what standard errors need), else central second differences of the objective."""
    k = theta.size
    h = np.empty((k, k))
    if gradient is not None:
        steps = 1.5e-8 * np.maximum(np.abs(theta), 1e-3)
        g0 = np.asarray(gradient(theta))
        for i in range(k):
            e = np.zeros(k)
            e[i] = steps[i]
            h[i] = (np.asarray(gradient(theta + e)) - g0) / steps[i]
    else:
        steps = 1e-4 * np.maximum(np.abs(theta), 1e-3)
        f0 = neg_log_likelihood(theta)
        for i in range(k):
            for j in range(i, k):
                ei = np.zeros(k)
                ej = np.zeros(k)
                ei[i] = steps[i]
                ej[j] = steps[j]
                if i == j:
                    fp = neg_log_likelihood(theta + ei)
                    fm = neg_log_likelihood(theta - ei)
                    h[i, i] = (fp - 2 * f0 + fm) / steps[i] ** 2
                else:
                    fpp = neg_log_likelihood(theta + ei + ej)
                    fpm = neg_log_likelihood(theta + ei - ej)
                    fmp = neg_log_likelihood(theta - ei + ej)
                    fmm = neg_log_likelihood(theta - ei - ej)
                    h[i, j] = h[j, i] = (fpp - fpm - fmp + fmm) / (4 * steps[i] * steps[j])
    return 0.5 * (h + h.T)


def _standard_errors(hessian: FloatArray) -> FloatArray:
    """Square roots of the diagonal of the inverse Hessian; nan where it is not positive."""
    if not np.all(np.isfinite(hessian)):
        return np.full(hessian.shape[0], np.nan)
    try:
        covariance = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        return np.full(hessian.shape[0], np.nan)
    diagonal = np.diag(covariance)
    with np.errstate(invalid="ignore"):
        return np.where(diagonal > 0, np.sqrt(np.abs(diagonal)), np.nan)
