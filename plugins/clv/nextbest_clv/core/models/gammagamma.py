"""Gamma-Gamma model of the value of a customer's transactions.

Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value" (after Colombo & Jiang 1999).
Each of a customer's transaction values is Gamma(p, nu); nu varies across customers as
Gamma(q, v). The data per customer is the number x of (repeat) transactions and their average
value m_x; only customers with x > 0 carry information. The average value is assumed
independent of the transaction process, so the model pairs with BG/NBD or Pareto/NBD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import digamma, gammaln

from ._optim import fit_mle, split_value_and_gradient
from ._validation import positive_array, positive_params
from .errors import DataError, FitError

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class GammaGammaModel:
    """A Gamma-Gamma spend model with known parameters.

    Attributes:
        p: shape of the per-transaction value distribution.
        q, v: shape and rate of the distribution of its rate parameter across customers
            (``v`` is the paper's gamma).
        log_likelihood: total log-likelihood of the fit (``nan`` for ``from_params``).
        standard_errors: asymptotic standard errors of the fit, by parameter name.
        n_customers: number (total weight) of repeat customers the model was fitted on.
    """

    p: float
    q: float
    v: float
    log_likelihood: float = math.nan
    standard_errors: dict[str, float] = field(default_factory=dict)
    n_customers: float = 0.0

    def __post_init__(self) -> None:
        positive_params("Gamma-Gamma", p=self.p, q=self.q, v=self.v)

    @property
    def params(self) -> dict[str, float]:
        """The parameters as ``{"p": ..., "q": ..., "v": ...}``."""
        return {"p": self.p, "q": self.q, "v": self.v}

    @property
    def mean_transaction_value(self) -> float:
        """Population mean value per transaction, p v / (q - 1) (infinite when q <= 1)."""
        return self.p * self.v / (self.q - 1) if self.q > 1 else math.inf

    @classmethod
    def from_params(
        cls,
        p: float,
        q: float,
        v: float,
        *,
        log_likelihood: float = math.nan,
        standard_errors: dict[str, float] | None = None,
    ) -> GammaGammaModel:
        """A model with given parameters (a stored fit, published values)."""
        return cls(
            float(p),
            float(q),
            float(v),
            log_likelihood=float(log_likelihood),
            standard_errors=dict(standard_errors or {}),
        )

    @classmethod
    def fit(
        cls,
        frequency: ArrayLike,
        monetary_value: ArrayLike,
        *,
        penalizer: float = 0.0,
        weights: ArrayLike | None = None,
        initial_params: dict[str, float] | None = None,
    ) -> GammaGammaModel:
        """Maximum-likelihood fit on customers' repeat-transaction counts and average values.

        Rows with frequency 0 carry no spend information and are ignored, so the full customer
        summary can be passed as is.

        Raises:
            FitError: invalid data (NaN, negative), no repeat customers, a repeat customer with
                an average value <= 0, or no convergence.
        """
        x, m, w = _spend_arrays(frequency, monetary_value, weights, error=FitError)
        keep = x > 0
        if not keep.any():
            raise FitError(
                "Gamma-Gamma needs repeat customers (frequency > 0) with their average "
                f"repeat-transaction value; all {x.size} customers have frequency 0"
            )
        x, m, w = x[keep], m[keep], w[keep]
        if np.any(m <= 0):
            raise FitError(
                f"Gamma-Gamma needs positive average transaction values; {int((m <= 0).sum())} "
                "repeat customer(s) have monetary_value <= 0 (drop or correct them: refunds?)"
            )
        total = float(w.sum())
        log_m, log_x = np.log(m), np.log(x)
        mx = m * x
        # The part of the log-likelihood that does not depend on the parameters.
        constant = float(np.dot(w, -log_m))

        def value_and_gradient(theta: FloatArray) -> tuple[float, FloatArray]:
            p, q, v = (float(t) for t in theta)
            px = p * x
            log_vmx = np.log(v + mx)
            dig_pxq = digamma(px + q)
            ll = (
                np.dot(
                    w, gammaln(px + q) - gammaln(px) + px * (log_m + log_x - log_vmx) - q * log_vmx
                )
                + total * (q * math.log(v) - gammaln(q))
                + constant
            )
            d_p = np.dot(w, x * (dig_pxq - digamma(px) + log_m + log_x - log_vmx))
            d_q = np.dot(w, dig_pxq - log_vmx) + total * (math.log(v) - digamma(q))
            d_v = total * q / v - np.dot(w, (px + q) / (v + mx))
            return -float(ll), -np.array([d_p, d_q, d_v])

        start = initial_params or {"p": 1.0, "q": 2.0, "v": float(np.average(m, weights=w))}
        value, gradient = split_value_and_gradient(value_and_gradient)
        result = fit_mle(
            value,
            gradient,
            {k: start[k] for k in ("p", "q", "v")},
            penalizer=penalizer,
            n_observations=total,
            model_name="Gamma-Gamma",
        )
        par = result.params
        return cls(
            par["p"],
            par["q"],
            par["v"],
            log_likelihood=result.log_likelihood,
            standard_errors=result.standard_errors,
            n_customers=total,
        )

    def log_likelihood_of(self, frequency: ArrayLike, monetary_value: ArrayLike) -> FloatArray:
        """Per-customer log-density of the average value m_x given x (x > 0 and m_x > 0)."""
        x, m, _ = _spend_arrays(frequency, monetary_value, None, error=DataError)
        if np.any(x <= 0) or np.any(m <= 0):
            raise DataError("log_likelihood_of needs frequency > 0 and monetary_value > 0")
        p, q, v = self.p, self.q, self.v
        px = p * x
        return np.asarray(
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * math.log(v)
            + (px - 1) * np.log(m)
            + px * np.log(x)
            - (px + q) * np.log(v + m * x)
        )

    def conditional_expected_average_profit(
        self, frequency: ArrayLike, monetary_value: ArrayLike
    ) -> FloatArray:
        """E[value per transaction | x, m_x] = p (v + x m_x) / (p x + q - 1).

        A weighted average of the population mean p v / (q - 1) and the customer's own
        average; customers with x = 0 get the population mean (their m_x is ignored).

        Raises:
            DataError: invalid inputs, or q <= 1 with customers whose expectation is then
                infinite (p x + q <= 1).
        """
        x, m, _ = _spend_arrays(frequency, monetary_value, None, error=DataError)
        m = np.where(x > 0, m, 0.0)
        denominator = self.p * x + self.q - 1
        if np.any(denominator <= 0):
            raise DataError(
                f"the expected spend is infinite for customers with p*x + q <= 1 (q = {self.q:.4g}"
                " <= 1 means the population mean spend does not exist)"
            )
        return np.asarray(self.p * (self.v + x * m) / denominator)


def _spend_arrays(
    frequency: ArrayLike,
    monetary_value: ArrayLike,
    weights: ArrayLike | None,
    *,
    error: type[ValueError],
) -> tuple[FloatArray, FloatArray, FloatArray]:
    try:
        x, m = np.broadcast_arrays(
            np.asarray(frequency, dtype=np.float64), np.asarray(monetary_value, dtype=np.float64)
        )
    except ValueError as exc:
        raise error(f"frequency and monetary_value must have compatible shapes: {exc}") from exc
    if x.size == 0:
        raise error("no customers: frequency and monetary_value are empty")
    for name, arr in (("frequency", x), ("monetary_value", m)):
        if not np.all(np.isfinite(arr)):
            raise error(
                f"{name} contains {int((~np.isfinite(arr)).sum())} NaN or infinite value(s)"
            )
    if np.any(x < 0) or np.any(x != np.floor(x)):
        raise error("frequency must be whole numbers >= 0 (repeat transactions per customer)")
    if weights is None:
        w = np.ones(x.shape)
    else:
        w = np.broadcast_to(positive_array(weights, "weights", error=error), x.shape)
    return x.ravel(), m.ravel(), np.asarray(w, dtype=np.float64).ravel()
