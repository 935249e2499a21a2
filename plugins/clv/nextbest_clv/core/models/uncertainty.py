"""Per-customer intervals from a fit's parameter uncertainty (issue 12 §5).

The fitted log-parameters are asymptotically normal around the estimate with covariance equal to
the inverse of the observed information (minus the Hessian of the total log-likelihood in
log-space). Drawing parameter vectors from that normal, recomputing each customer's figures under
every draw and taking quantiles gives an interval per customer that reflects how well the data pin
down the parameters. It does *not* include the customer's own randomness (how many purchases they
will actually make): it is an interval for the expected value, not a prediction interval.

Everything here is pure: arrays and parameter dictionaries in, arrays out. Customers are processed
in chunks so memory stays bounded, and repeated (x, t_x, T[, m_x]) rows are computed once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import customer_arrays
from .clv import DAYS_PER_MONTH, customer_lifetime_value
from .errors import DataError, ModelError
from .gammagamma import GammaGammaModel

FloatArray = NDArray[np.float64]

#: Customers per chunk: draws x chunk floats for the CLV draws (200 x 131072 x 8 B = 210 MB).
DEFAULT_CHUNK = 1 << 17


class CustomerModel(Protocol):
    """What the intervals need from a transaction model (BG/NBD, Pareto/NBD, MBG/NBD)."""

    @property
    def params(self) -> dict[str, float]: ...

    def probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray: ...

    def conditional_expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray: ...


class Interval(NamedTuple):
    """Lower and upper end of a per-customer interval (one value per customer each)."""

    low: FloatArray
    high: FloatArray


class CustomerIntervals(NamedTuple):
    """Per-customer intervals; ``clv`` is ``None`` unless a spend model was given."""

    probability_alive: Interval
    expected_purchases: Interval
    clv: Interval | None


def log_parameter_covariance(
    params: dict[str, float],
    total_log_likelihood: Callable[[dict[str, float]], float],
    *,
    step: float = 1e-3,
) -> FloatArray:
    """Covariance of the log-parameters: inverse of minus the log-space Hessian at ``params``.

    Args:
        params: the fitted (maximum-likelihood) parameters, all positive.
        total_log_likelihood: total log-likelihood of the fitting data as a function of the
            parameters (e.g. ``sum(Model.from_params(**p).log_likelihood_of(...))``).
        step: central-difference step in log-space.

    Raises:
        ModelError: the Hessian is not finite or not negative definite (a flat direction: the
            data do not identify some parameter, so no interval can be given).
    """
    names = list(params)
    centre = np.log(np.array([params[n] for n in names], dtype=np.float64))
    k = centre.size

    def f(u: FloatArray) -> float:
        return float(total_log_likelihood(dict(zip(names, np.exp(u).tolist(), strict=True))))

    f0 = f(centre)
    hessian = np.empty((k, k))
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = step
        hessian[i, i] = (f(centre + ei) - 2.0 * f0 + f(centre - ei)) / step**2
        for j in range(i + 1, k):
            ej = np.zeros(k)
            ej[j] = step
            value = (
                f(centre + ei + ej)
                - f(centre + ei - ej)
                - f(centre - ei + ej)
                + f(centre - ei - ej)
            ) / (4.0 * step**2)
            hessian[i, j] = hessian[j, i] = value
    information = -hessian
    if not np.all(np.isfinite(information)):
        raise ModelError("the log-likelihood's curvature is not finite at the fitted parameters")
    try:
        covariance = np.linalg.inv(information)
        np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError as exc:
        raise ModelError(
            "the fit's information matrix is not positive definite (the data do not identify "
            f"every parameter of {names}); no parameter-uncertainty interval can be computed"
        ) from exc
    return np.asarray(0.5 * (covariance + covariance.T))


def transaction_covariance(
    model: Any, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """Log-parameter covariance of a fitted transaction model on its fitting data."""
    x, tx, big_t = customer_arrays(frequency, recency, T)
    model_type = type(model)

    def total(p: dict[str, float]) -> float:
        return float(np.sum(model_type.from_params(**p).log_likelihood_of(x, tx, big_t)))

    return log_parameter_covariance(model.params, total)


def spend_covariance(
    model: GammaGammaModel, frequency: ArrayLike, monetary_value: ArrayLike
) -> FloatArray:
    """Log-parameter covariance of a fitted Gamma-Gamma model on its repeat customers."""
    x = np.asarray(frequency, dtype=np.float64).ravel()
    m = np.asarray(monetary_value, dtype=np.float64).ravel()
    keep = (x > 0) & (m > 0)
    x, m = x[keep], m[keep]

    def total(p: dict[str, float]) -> float:
        return float(
            np.sum(GammaGammaModel.from_params(p["p"], p["q"], p["v"]).log_likelihood_of(x, m))
        )

    return log_parameter_covariance(model.params, total)


def parameter_draws(
    params: dict[str, float],
    covariance: ArrayLike,
    draws: int,
    rng: np.random.Generator,
) -> list[dict[str, float]]:
    """``draws`` parameter dictionaries from the log-normal around ``params``."""
    names = list(params)
    cov = np.asarray(covariance, dtype=np.float64)
    if cov.shape != (len(names), len(names)):
        raise DataError(
            f"covariance must be {len(names)}x{len(names)} for parameters {names}, "
            f"got shape {cov.shape}"
        )
    centre = np.log(np.array([params[n] for n in names], dtype=np.float64))
    sample = np.exp(rng.multivariate_normal(centre, cov, size=draws, method="cholesky"))
    return [dict(zip(names, row.tolist(), strict=True)) for row in sample]


def customer_intervals(
    model: CustomerModel,
    covariance: ArrayLike,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    horizon: float,
    level: float = 0.9,
    draws: int = 200,
    seed: int | np.random.Generator | None = None,
    spend_model: GammaGammaModel | None = None,
    spend_covariance: ArrayLike | None = None,
    monetary_value: ArrayLike | None = None,
    months: int = 12,
    discount_rate_monthly: float = 0.01,
    time_unit_days: float = 7.0,
    days_per_month: float = DAYS_PER_MONTH,
    chunk_size: int = DEFAULT_CHUNK,
) -> CustomerIntervals:
    """Equal-tailed ``level`` intervals per customer from ``draws`` parameter draws.

    Args:
        model: the fitted transaction model; its type's ``from_params`` builds each draw.
        covariance: covariance of its log-parameters (:func:`transaction_covariance`), in the
            order of ``model.params``.
        frequency, recency, T: per-customer x, t_x and T in the model's time unit.
        horizon: the expected-purchases horizon, in the model's time unit (> 0).
        level: interval probability, strictly between 0 and 1.
        draws: number of parameter draws (>= 10).
        seed: makes the draws (and so the intervals) reproducible.
        spend_model, spend_covariance, monetary_value: a fitted Gamma-Gamma model, the
            covariance of its log-parameters and each customer's average spend; all three give
            a CLV interval (spend parameters are drawn too, independently of the transaction
            parameters, as the two models are fitted separately).
        months, discount_rate_monthly, time_unit_days, days_per_month: as in
            :func:`customer_lifetime_value`.
        chunk_size: customers processed at once (bounds memory).

    Raises:
        DataError: invalid settings or customer arrays.
    """
    if not (isinstance(level, float | int) and not isinstance(level, bool) and 0 < level < 1):
        raise DataError(f"level must be a number strictly between 0 and 1, got {level!r}")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 10:
        raise DataError(f"draws must be a whole number >= 10, got {draws!r}")
    if not (isinstance(horizon, float | int) and math.isfinite(horizon) and horizon > 0):
        raise DataError(f"horizon must be a positive number, got {horizon!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise DataError(f"chunk_size must be a whole number >= 1, got {chunk_size!r}")
    spend_parts = (spend_model, spend_covariance, monetary_value)
    with_clv = all(p is not None for p in spend_parts)
    if not with_clv and any(p is not None for p in spend_parts):
        raise DataError(
            "a CLV interval needs spend_model, spend_covariance and monetary_value together"
        )
    x, tx, big_t = customer_arrays(frequency, recency, T)
    shape = x.shape
    x, tx, big_t = x.ravel(), tx.ravel(), big_t.ravel()
    m = np.zeros_like(x)
    if with_clv:
        m = np.broadcast_to(np.asarray(monetary_value, dtype=np.float64), shape).ravel()
        if not np.all(np.isfinite(m)):
            raise DataError("monetary_value contains NaN or infinite values")
    # The model figures depend on (x, t_x, T) only: compute them once per distinct triple, and
    # walk the customers in triple order so that each chunk holds whole runs of repeats.
    triples, triple_of = np.unique(np.column_stack([x, tx, big_t]), axis=0, return_inverse=True)
    triple_of = triple_of.ravel()
    order = np.argsort(triple_of, kind="stable")

    rng = np.random.default_rng(seed)
    model_type: Any = type(model)
    drawn_params = parameter_draws(model.params, covariance, draws, rng)
    models = [model_type.from_params(**p) for p in drawn_params]
    spends: list[GammaGammaModel] = []
    if with_clv:
        assert spend_model is not None and spend_covariance is not None
        spends = [
            GammaGammaModel.from_params(p["p"], p["q"], p["v"])
            for p in parameter_draws(spend_model.params, spend_covariance, draws, rng)
        ]
    tail = (1.0 - level) / 2.0
    quantiles = np.array([tail, 1.0 - tail])

    n = x.size
    alive = np.empty((2, n))
    purchases = np.empty((2, n))
    clv = np.empty((2, n)) if with_clv else None
    for start in range(0, n, chunk_size):
        customers = order[start : start + chunk_size]
        local, local_of = np.unique(triple_of[customers], return_inverse=True)
        bx, btx, bt = triples[local, 0], triples[local, 1], triples[local, 2]
        size = local.size
        a = np.empty((draws, size))
        e = np.empty((draws, size))
        c = np.empty((draws, customers.size)) if with_clv else None
        for d, drawn in enumerate(models):
            a[d] = drawn.probability_alive(bx, btx, bt)
            e[d] = drawn.conditional_expected_purchases(horizon, bx, btx, bt)
            if c is not None:
                # CLV = (discounted expected purchases) x (expected spend): the first factor per
                # triple (one unit of spend), the second per customer.
                per_unit = customer_lifetime_value(
                    drawn,
                    bx,
                    btx,
                    bt,
                    1.0,
                    months=months,
                    discount_rate_monthly=discount_rate_monthly,
                    time_unit_days=time_unit_days,
                    days_per_month=days_per_month,
                )
                spend = spends[d].conditional_expected_average_profit(x[customers], m[customers])
                c[d] = per_unit[local_of] * spend
        alive[:, customers] = np.quantile(a, quantiles, axis=0)[:, local_of]
        purchases[:, customers] = np.quantile(e, quantiles, axis=0)[:, local_of]
        if c is not None and clv is not None:
            clv[:, customers] = np.quantile(c, quantiles, axis=0)

    def back(values: FloatArray) -> Interval:
        return Interval(values[0].reshape(shape), values[1].reshape(shape))

    return CustomerIntervals(
        probability_alive=back(alive),
        expected_purchases=back(purchases),
        clv=back(clv) if clv is not None else None,
    )
