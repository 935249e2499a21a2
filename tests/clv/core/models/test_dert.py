"""Discounted expected residual transactions (issue 12, section 2): Pareto/NBD's closed form
against numerical integration of its conditional expectation, BG/NBD's quadrature against a
double integral over the posterior of (lambda, p)."""

from __future__ import annotations

import numpy as np
import pytest
from nextbest_clv.core.models.bgnbd import BetaGeoModel
from nextbest_clv.core.models.errors import DataError
from nextbest_clv.core.models.paretonbd import ParetoNBDModel
from scipy import integrate, special

CUSTOMERS = [(0, 0.0, 39.0), (2, 30.43, 38.86), (10, 35.0, 39.0), (1, 1.0, 1e-3 + 1.0)]


def _by_parts(model: ParetoNBDModel, delta: float, x: float, tx: float, big_t: float) -> float:
    """delta * integral_0^inf exp(-delta t) E[Y(t) | x, t_x, T] dt, by QUADPACK."""

    def f(t: float) -> float:
        return float(np.exp(-delta * t) * model.conditional_expected_purchases(t, x, tx, big_t))

    value, _ = integrate.quad(f, 0, np.inf, epsabs=0, epsrel=1e-11, limit=500)
    return delta * value


@pytest.mark.parametrize(
    "params",
    [
        {"r": 0.553, "alpha": 10.58, "s": 0.606, "beta": 11.67},  # FHL 2005, CDNOW
        {"r": 2.0, "alpha": 1.0, "s": 1.0, "beta": 3.0},
        {"r": 0.3, "alpha": 40.0, "s": 80.0, "beta": 5.0},  # scipy's U fails: quadrature
    ],
)
@pytest.mark.parametrize("delta", [0.0027, 0.05, 2.0])
def test_pareto_nbd_dert_against_numerical_integration(
    params: dict[str, float], delta: float
) -> None:
    model = ParetoNBDModel.from_params(**params)
    x, tx, big_t = (np.array(c) for c in zip(*CUSTOMERS, strict=True))
    got = model.discounted_expected_residual_transactions(delta, x, tx, big_t)
    expected = [_by_parts(model, delta, *c) for c in CUSTOMERS]
    np.testing.assert_allclose(got, expected, rtol=1e-8)


def _bgnbd_posterior(model: BetaGeoModel, delta: float, x: float, tx: float, big_t: float) -> float:
    """P(alive) E[lambda / (delta + p lambda)] over lambda ~ Gamma(r+x, alpha+T), p ~ Beta(a,
    b+x): each purchase is followed by another with probability 1 - p, so the discounted count
    of an alive customer with known rates is sum_k (1-p)^(k-1) (lambda/(lambda+delta))^k."""
    n, c = model.r + x, model.alpha + big_t

    def given_p(p: float) -> float:
        # E[lambda / (delta + p lambda)] = integral_0^inf e^(-delta u) E[lambda e^(-p lambda u)] du
        def f(u: float) -> float:
            return float(np.exp(-delta * u) * n / c * (c / (c + p * u)) ** (n + 1))

        value, _ = integrate.quad(f, 0, np.inf, epsabs=0, epsrel=1e-12, limit=500)
        return value

    wvar = (model.a - 1, model.b + x - 1)
    value, _ = integrate.quad(given_p, 0, 1, weight="alg", wvar=wvar, epsabs=0, epsrel=1e-10)
    return float(model.probability_alive(x, tx, big_t)) * value / special.beta(model.a, model.b + x)


@pytest.mark.parametrize(
    "params",
    [
        {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},  # FHL 2005, CDNOW
        {"r": 0.243, "alpha": 4.414, "a": 0.3, "b": 0.5},  # a + b < 1
        {"r": 3.0, "alpha": 2.0, "a": 2.0, "b": 20.0},
    ],
)
@pytest.mark.parametrize("delta", [0.0027, 0.1])
def test_bgnbd_dert_against_the_posterior_double_integral(
    params: dict[str, float], delta: float
) -> None:
    model = BetaGeoModel.from_params(**params)
    x, tx, big_t = (np.array(c) for c in zip(*CUSTOMERS[:3], strict=True))
    got = model.discounted_expected_residual_transactions(delta, x, tx, big_t)
    expected = [_bgnbd_posterior(model, delta, *c) for c in CUSTOMERS[:3]]
    np.testing.assert_allclose(got, expected, rtol=1e-7)


def test_dert_is_the_limit_of_undiscounted_expectations_and_rejects_bad_rates() -> None:
    model = ParetoNBDModel.from_params(r=0.553, alpha=10.58, s=0.606, beta=11.67)
    # A high rate counts only the near future: DERT ~ E[Y(t)] at t ~ 1/delta.
    fast = float(model.discounted_expected_residual_transactions(1e3, 2, 30.0, 39.0))
    rate = float(model.conditional_expected_purchases(1e-6, 2, 30.0, 39.0)) / 1e-6
    assert fast == pytest.approx(rate / 1e3, rel=1e-3)
    for bad in (0.0, -1.0, np.nan):
        with pytest.raises(DataError):
            model.discounted_expected_residual_transactions(bad, 2, 30.0, 39.0)
    bg = BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
    assert bg.discounted_expected_residual_transactions(0.01, [[1, 2]], [[5, 6]], 39.0).shape == (
        1,
        2,
    )
