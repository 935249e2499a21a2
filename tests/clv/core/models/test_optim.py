"""The shared maximum-likelihood driver on log-parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
from nextbest_clv.core.models._optim import fit_mle, split_value_and_gradient
from nextbest_clv.core.models.errors import FitError
from scipy.special import digamma, gammaln

RNG = np.random.default_rng(4)
COUNTS = RNG.poisson(3.7, 5000).astype(float)
GAMMA_DRAWS = RNG.gamma(2.5, 1.8, 4000)


def poisson_nll(theta: np.ndarray) -> float:
    lam = theta[0]
    return float(lam * COUNTS.size - COUNTS.sum() * math.log(lam) + gammaln(COUNTS + 1).sum())


def poisson_grad(theta: np.ndarray) -> np.ndarray:
    return np.array([COUNTS.size - COUNTS.sum() / theta[0]])


def gamma_nll(theta: np.ndarray) -> float:
    k, scale = theta
    y = GAMMA_DRAWS
    return float(-np.sum((k - 1) * np.log(y) - y / scale - gammaln(k) - k * math.log(scale)))


def gamma_grad(theta: np.ndarray) -> np.ndarray:
    k, scale = theta
    y = GAMMA_DRAWS
    return -np.array(
        [np.sum(np.log(y) - digamma(k) - math.log(scale)), np.sum(y / scale**2 - k / scale)]
    )


@pytest.mark.parametrize("gradient", [poisson_grad, None])
def test_poisson_rate_has_the_closed_form_estimate_and_standard_error(gradient: object) -> None:
    result = fit_mle(poisson_nll, gradient, {"rate": 1.0}, n_observations=COUNTS.size)
    mean = COUNTS.mean()
    assert result.params["rate"] == pytest.approx(mean, rel=1e-7)
    assert result.standard_errors["rate"] == pytest.approx(math.sqrt(mean / COUNTS.size), rel=1e-4)
    assert result.log_likelihood == pytest.approx(-poisson_nll(np.array([mean])), rel=1e-12)
    assert result.converged and result.iterations > 0


def test_numeric_and_analytic_gradients_agree_on_a_two_parameter_fit() -> None:
    start = {"k": 1.0, "scale": 1.0}
    analytic = fit_mle(gamma_nll, gamma_grad, start, n_observations=GAMMA_DRAWS.size)
    numeric = fit_mle(gamma_nll, None, start, n_observations=GAMMA_DRAWS.size)
    for name in start:
        assert analytic.params[name] == pytest.approx(numeric.params[name], rel=1e-6)
        assert analytic.standard_errors[name] == pytest.approx(
            numeric.standard_errors[name], rel=1e-3
        )
    # The score is zero at the optimum.
    theta = np.array(list(analytic.params.values()))
    np.testing.assert_allclose(gamma_grad(theta) / GAMMA_DRAWS.size, 0.0, atol=1e-6)


def test_penalizer_shrinks_towards_zero_and_is_scaled_per_observation() -> None:
    plain = fit_mle(poisson_nll, poisson_grad, {"rate": 1.0}, n_observations=COUNTS.size)
    penalized = fit_mle(
        poisson_nll, poisson_grad, {"rate": 1.0}, penalizer=0.05, n_observations=COUNTS.size
    )
    # Minimiser of rate - mean*ln(rate) + 0.05 rate^2: 0.1 rate^2 + rate - mean = 0.
    mean = COUNTS.mean()
    expected = (-1 + math.sqrt(1 + 0.4 * mean)) / 0.2
    assert penalized.params["rate"] == pytest.approx(expected, rel=1e-7)
    assert penalized.params["rate"] < plain.params["rate"]


def test_split_value_and_gradient_evaluates_once_per_point() -> None:
    calls = []

    def both(theta: np.ndarray) -> tuple[float, np.ndarray]:
        calls.append(theta.copy())
        return float(theta @ theta), 2 * theta

    value, gradient = split_value_and_gradient(both)
    point = np.array([1.0, 2.0])
    assert value(point) == 5.0
    np.testing.assert_array_equal(gradient(point), [2.0, 4.0])
    assert len(calls) == 1
    gradient(np.array([0.0, 1.0]))
    assert len(calls) == 2


def test_unbounded_likelihood_is_reported_not_returned() -> None:
    # The likelihood keeps rising with theta: no finite maximum.
    with pytest.raises(FitError, match="ran to the edge"):
        fit_mle(lambda t: -math.log(t[0]), lambda t: np.array([-1.0 / t[0]]), {"theta": 1.0})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x0": {"rate": -1.0}}, "starting values"),
        ({"x0": {}}, "no parameters"),
        ({"penalizer": -0.1}, "penalizer"),
        ({"n_observations": 0}, "n_observations"),
    ],
)
def test_invalid_settings_raise(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"x0": {"rate": 1.0}, **kwargs}
    with pytest.raises(FitError, match=message):
        fit_mle(poisson_nll, poisson_grad, **arguments)


def test_nan_likelihood_raises_with_a_hint() -> None:
    with pytest.raises(FitError, match="not finite at the starting values"):
        fit_mle(lambda t: float("nan"), None, {"theta": 1.0}, model_name="demo")
