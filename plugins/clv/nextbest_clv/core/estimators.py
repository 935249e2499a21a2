"""Tenant-level model fits from a customer summary (pure: arrays in, fitted models out).

The transaction models (``bgnbd``, ``paretonbd``, ``mbgnbd``) come with a spend model:
Gamma-Gamma fitted on the repeat customers with a positive average value, or, when that fit is
impossible (no repeat values, q <= 1 so the mean spend does not exist, no convergence), the mean
repeat transaction value of the data (``SpendModel.gamma_gamma`` is then None and ``reason``
says why).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nextbest_clv.core.errors import ModelFitError, UnknownModelError
from nextbest_clv.core.models import (
    BetaGeoModel,
    DataError,
    FitError,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
)

__all__ = [
    "NEW_CUSTOMER_T",
    "TRANSACTION_MODELS",
    "SpendModel",
    "TransactionFit",
    "check_fit",
    "fit_spend_model",
    "fit_transaction_model",
    "prediction_T",
    "transaction_model_from_params",
]

#: Purchase-frequency models, by setting name.
TRANSACTION_MODELS: tuple[str, ...] = ("bgnbd", "paretonbd", "mbgnbd")
FloatArray = NDArray[np.float64]
TransactionFit = BetaGeoModel | ParetoNBDModel | ModifiedBetaGeoModel


def fit_transaction_model(
    name: str,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    penalizer: float = 0.0,
) -> TransactionFit:
    """Fit the purchase model ``name`` (one of :data:`TRANSACTION_MODELS`) to per-customer
    x, t_x, T; customers with T = 0 are left out (their likelihood is 1).

    Raises:
        UnknownModelError: another name.
        ModelFitError: the data cannot be fitted (e.g. nobody purchased twice), or the fit is
            degenerate (see :func:`check_fit`).
    """
    model_class = _transaction_class(name)
    x = np.asarray(frequency, dtype=np.float64)
    big_t = np.asarray(T, dtype=np.float64)
    # A customer first seen at the very end (T = 0, so x = 0) has likelihood 1: no information.
    seen = big_t > 0
    if not seen.all():
        x, big_t = x[seen], big_t[seen]
        recency = np.asarray(recency, dtype=np.float64)[seen]
    try:
        fit = model_class.fit(x, recency, big_t, penalizer=penalizer)
    except FitError as exc:
        # The optimiser's own failure: on data that cannot identify the model it may stop
        # without converging rather than "converge" to extremes (depends on SciPy's line search).
        raise ModelFitError(f"cannot fit {name}: {exc}. {_penalty_hint(penalizer)}") from exc
    except DataError as exc:
        raise ModelFitError(f"cannot fit {name}: {exc}") from exc
    recency = np.asarray(recency, dtype=np.float64)
    horizon = float(big_t.max())
    predictions = {
        "probability alive": fit.probability_alive(x, recency, big_t),
        "expected purchases over the observed period": fit.conditional_expected_purchases(
            horizon, x, recency, big_t
        ),
        # Customers first seen at the very end are not in the fit but are predicted for.
        "expected purchases of a customer first seen at the end": (
            fit.conditional_expected_purchases(horizon, 0.0, 0.0, NEW_CUSTOMER_T)
        ),
    }
    check_fit(name, dict(fit.params), dict(fit.standard_errors), predictions, penalizer)
    return fit


def check_fit(
    name: str,
    params: Mapping[str, float],
    standard_errors: Mapping[str, float],
    predictions: Mapping[str, ArrayLike],
    penalizer: float,
) -> None:
    """Reject a degenerate fit: the optimiser can "converge" with parameters run off to
    extremes (e.g. BG/NBD r = 8e6 on three customers who each bought again on the last day),
    which then predicts NaN or has no finite standard errors (a flat likelihood).

    Raises:
        ModelFitError: a parameter, standard error or prediction is not a finite number.
    """
    problems = [
        f"{what} of {int(np.count_nonzero(~np.isfinite(np.asarray(v, dtype=float))))} "
        "customer(s) is not finite"
        for what, v in predictions.items()
        if not np.all(np.isfinite(np.asarray(v, dtype=float)))
    ]
    bad_params = [k for k, v in params.items() if not math.isfinite(v)]
    bad_errors = [k for k, v in standard_errors.items() if not math.isfinite(v)]
    if bad_params:
        problems.append(f"parameter(s) {', '.join(bad_params)} not finite")
    if bad_errors:
        problems.append(f"standard error(s) of {', '.join(bad_errors)} not finite")
    if problems:
        shown = ", ".join(f"{k} = {v:.4g}" for k, v in params.items())
        raise ModelFitError(
            f"the {name} fit is degenerate ({shown}): {'; '.join(problems)}. "
            f"{_penalty_hint(penalizer)}"
        )


def _penalty_hint(penalizer: float) -> str:
    action = (
        f"use a larger penalty than {penalizer:g}"
        if penalizer > 0
        else "refit with a penalty, e.g. --penalizer 0.01"
    )
    return (
        "The data do not determine the model (too few customers or repeat purchases): "
        f"{action}, or use more data"
    )


#: T used to predict for customers first seen on the prediction day (T = 0, which the models
#: reject): the new-customer limit, within 1e-6 weeks.
NEW_CUSTOMER_T = 1e-6


def prediction_T(T: ArrayLike) -> FloatArray:
    """``T`` with zeros (customers first seen at the end) raised to :data:`NEW_CUSTOMER_T`."""
    return np.maximum(np.asarray(T, dtype=np.float64), NEW_CUSTOMER_T)


def transaction_model_from_params(name: str, params: dict[str, float]) -> TransactionFit:
    """A transaction model from stored parameters."""
    model_class = _transaction_class(name)
    if model_class is BetaGeoModel or model_class is ModifiedBetaGeoModel:
        return model_class.from_params(params["r"], params["alpha"], params["a"], params["b"])
    return ParetoNBDModel.from_params(params["r"], params["alpha"], params["s"], params["beta"])


def _transaction_class(
    name: str,
) -> type[BetaGeoModel] | type[ParetoNBDModel] | type[ModifiedBetaGeoModel]:
    if name == "bgnbd":
        return BetaGeoModel
    if name == "mbgnbd":
        return ModifiedBetaGeoModel
    if name == "paretonbd":
        return ParetoNBDModel
    raise UnknownModelError(
        f"unknown transaction model {name!r}: use one of {', '.join(TRANSACTION_MODELS)}"
    )


@dataclass(frozen=True)
class SpendModel:
    """Expected value per transaction: Gamma-Gamma, else the mean repeat value of the data.

    Attributes:
        gamma_gamma: the fitted Gamma-Gamma model, or None.
        mean_value: mean repeat-transaction value of the data it was fitted on.
        reason: why Gamma-Gamma is not used (None when it is).
    """

    gamma_gamma: GammaGammaModel | None
    mean_value: float
    reason: str | None = None

    def expected_value(self, frequency: ArrayLike, monetary_value: ArrayLike) -> FloatArray:
        """E[value per transaction | x, m_x] for each customer."""
        x = np.asarray(frequency, dtype=np.float64)
        if self.gamma_gamma is None:
            return np.full(x.shape, self.mean_value)
        m = np.where(x > 0, np.asarray(monetary_value, dtype=np.float64), 0.0)
        return self.gamma_gamma.conditional_expected_average_profit(x, m)

    def to_json(self) -> dict[str, Any]:
        """JSON of the spend model (stored with a fit)."""
        gg = self.gamma_gamma
        return {
            "model": "gammagamma" if gg is not None else "mean",
            "params": gg.params if gg is not None else None,
            "logLikelihood": _finite(gg.log_likelihood) if gg is not None else None,
            "customers": int(gg.n_customers) if gg is not None else None,
            "meanValue": self.mean_value,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> SpendModel:
        """The spend model of a stored fit."""
        params = doc.get("params")
        gg = GammaGammaModel.from_params(**params) if params else None
        return cls(gg, float(doc["meanValue"]), doc.get("reason"))


def fit_spend_model(
    frequency: ArrayLike, monetary_value: ArrayLike, *, penalizer: float = 0.0
) -> SpendModel:
    """Gamma-Gamma on the repeat customers with a positive average value (see module doc)."""
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary_value, dtype=np.float64)
    usable = (x > 0) & (m > 0)
    repeat = x > 0
    mean_value = float(np.dot(x[repeat], m[repeat]) / x[repeat].sum()) if repeat.any() else 0.0
    if not usable.any():
        return SpendModel(None, mean_value, "no repeat customer with a positive average value")
    try:
        gg = GammaGammaModel.fit(x[usable], m[usable], penalizer=penalizer)
    except (FitError, DataError) as exc:
        return SpendModel(None, mean_value, f"Gamma-Gamma fit failed: {exc}")
    if gg.q <= 1.0:
        return SpendModel(
            None, mean_value, f"Gamma-Gamma q = {gg.q:.4g} <= 1: the mean spend does not exist"
        )
    return SpendModel(gg, mean_value)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
