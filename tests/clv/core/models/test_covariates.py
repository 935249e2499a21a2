"""Covariate BG/NBD and Gamma-Gamma: recovery on simulated data, the no-covariate case,
gradients, the likelihood-ratio test and input errors."""

from __future__ import annotations

import numpy as np
import pytest
from nextbest_clv.core.models.bgnbd import BetaGeoModel
from nextbest_clv.core.models.covariates import (
    CovariateFit,
    _bgnbd_objective,
    _gammagamma_objective,
    _paretonbd_objective,
    conditional_expected_purchases,
    expected_spend,
    fit_bgnbd_covariates,
    fit_gammagamma_covariates,
    fit_paretonbd_covariates,
    paretonbd_customer_log_likelihood,
    probability_alive,
)
from nextbest_clv.core.models.errors import DataError, FitError
from nextbest_clv.core.models.gammagamma import GammaGammaModel
from nextbest_clv.core.models.paretonbd import ParetoNBDModel, pareto_nbd_log_likelihood

TRUE = {"r": 0.8, "alpha": 5.0, "a": 0.6, "b": 2.5}
GAMMA_P, GAMMA_A, GAMMA_B = 0.5, 0.4, -0.3


def simulate_bgnbd(
    n: int, seed: int, gp: float, ga: float, gb: float, horizon: float = 52.0
) -> tuple[np.ndarray, ...]:
    """Customers from the covariate BG/NBD (vectorised over customers)."""
    rng = np.random.default_rng(seed)
    zp = rng.normal(size=n)
    zd = rng.binomial(1, 0.5, size=n).astype(float)
    lam = rng.gamma(TRUE["r"], 1.0 / (TRUE["alpha"] * np.exp(-gp * zp)))
    drop = rng.beta(TRUE["a"] * np.exp(ga * zd), TRUE["b"] * np.exp(gb * zd))
    x = np.zeros(n)
    tx = np.zeros(n)
    t = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.nonzero(active)[0]
        t[idx] += rng.exponential(1.0 / lam[idx])
        bought = t[idx] <= horizon
        done = idx[~bought]
        active[done] = False
        idx = idx[bought]
        x[idx] += 1
        tx[idx] = t[idx]
        active[idx[rng.random(idx.size) < drop[idx]]] = False
    return x, tx, np.full(n, horizon), zp[:, None], zd[:, None]


@pytest.fixture(scope="module")
def effects() -> tuple[tuple[np.ndarray, ...], CovariateFit]:
    data = simulate_bgnbd(20_000, 7, GAMMA_P, GAMMA_A, GAMMA_B)
    x, tx, big_t, zp, zd = data
    return data, fit_bgnbd_covariates(x, tx, big_t, zp, zd, ["z"], ["d"])


def test_bgnbd_recovers_coefficients_within_three_standard_errors(
    effects: tuple[tuple[np.ndarray, ...], CovariateFit],
) -> None:
    _, fit = effects
    truth = {
        ("purchase", "z"): GAMMA_P,
        ("dropout_a", "d"): GAMMA_A,
        ("dropout_b", "d"): GAMMA_B,
    }
    for (process, name), value in truth.items():
        se = fit.standard_errors[process][name]
        assert 0 < se < 0.2
        assert abs(fit.coefficients[process][name] - value) < 3 * se, (process, name)
    for name, value in TRUE.items():
        assert abs(fit.params[name] - value) < 3 * fit.standard_errors["params"][name], name


def test_lr_test_rejects_with_real_effects(
    effects: tuple[tuple[np.ndarray, ...], CovariateFit],
) -> None:
    _, fit = effects
    assert fit.lr_test["df"] == 3
    assert fit.lr_test["pValue"] < 1e-10
    assert fit.lr_test["statistic"] > 100


def test_lr_test_does_not_reject_without_effects() -> None:
    p_values = []
    for seed in range(5):
        x, tx, big_t, zp, zd = simulate_bgnbd(4_000, 100 + seed, 0.0, 0.0, 0.0)
        fit = fit_bgnbd_covariates(x, tx, big_t, zp, zd, ["z"], ["d"])
        p_values.append(fit.lr_test["pValue"])
    # Under the null each p-value is uniform: P(two or more of five below 0.05) is about 2%.
    assert sum(p < 0.05 for p in p_values) <= 1, p_values
    assert all(0 <= p <= 1 for p in p_values)


def test_no_covariates_equals_plain_fit() -> None:
    x, tx, big_t, _, _ = simulate_bgnbd(3_000, 3, GAMMA_P, GAMMA_A, GAMMA_B)
    plain = BetaGeoModel.fit(x, tx, big_t)
    for purchase, dropout, names in (
        (None, None, ([], [])),
        (np.zeros((x.size, 2)), np.zeros((x.size, 1)), (["u", "v"], ["w"])),
    ):
        fit = fit_bgnbd_covariates(x, tx, big_t, purchase, dropout, *names)
        assert fit.log_likelihood == pytest.approx(plain.log_likelihood, rel=1e-8)
        for k, v in plain.params.items():
            assert fit.params[k] == pytest.approx(v, rel=1e-5)
        assert fit.lr_test["statistic"] == pytest.approx(0.0, abs=1e-6)


def _check_gradient(objective, theta: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    _, grad = objective(theta)
    numeric = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = 1e-6
        numeric[i] = (objective(theta + e)[0] - objective(theta - e)[0]) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-4)


def test_bgnbd_gradient_matches_finite_differences() -> None:
    x, tx, big_t, zp, zd = simulate_bgnbd(500, 5, GAMMA_P, GAMMA_A, GAMMA_B)
    zp2 = np.hstack([zp, zp**2])
    theta = np.array([np.log(0.7), np.log(4.0), np.log(0.5), np.log(2.0), 0.3, -0.1, 0.2, -0.4])
    _check_gradient(_bgnbd_objective(x, tx, big_t, zp2, zd), theta)


def simulate_spend(n: int, seed: int, gamma: float) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    p, q, v = 6.0, 4.0, 15.0
    nu = rng.gamma(q, 1.0 / (v * np.exp(gamma * z)))
    x = 1.0 + rng.poisson(2.0, size=n)
    m = rng.gamma(p * x, 1.0 / (x * nu))
    return x, m, z[:, None]


def test_gammagamma_recovers_spend_coefficient_and_matches_plain() -> None:
    x, m, z = simulate_spend(20_000, 11, 0.3)
    fit = fit_gammagamma_covariates(x, m, z, ["z"])
    se = fit.standard_errors["spend"]["z"]
    assert abs(fit.coefficients["spend"]["z"] - 0.3) < 3 * se
    for name, value in {"p": 6.0, "q": 4.0, "v": 15.0}.items():
        assert abs(fit.params[name] - value) < 3 * fit.standard_errors["params"][name], name
    assert fit.lr_test["pValue"] < 1e-10
    plain = GammaGammaModel.fit(x, m)
    zero = fit_gammagamma_covariates(x, m, np.zeros((x.size, 1)), ["zero"])
    assert zero.log_likelihood == pytest.approx(plain.log_likelihood, rel=1e-8)
    # A higher coefficient means a higher expected spend for a higher covariate.
    spend = expected_spend(fit, np.array([3.0, 3.0]), np.array([20.0, 20.0]), [[-1.0], [1.0]])
    assert spend[1] > spend[0]


def test_gammagamma_gradient_matches_finite_differences() -> None:
    x, m, z = simulate_spend(500, 2, 0.3)
    theta = np.array([np.log(5.0), np.log(3.0), np.log(12.0), 0.2])
    _check_gradient(_gammagamma_objective(x, m, z), theta)


def test_predictions_reduce_to_plain_model_without_covariates() -> None:
    x, tx, big_t, _, _ = simulate_bgnbd(2_000, 4, 0.0, 0.0, 0.0)
    plain = BetaGeoModel.fit(x, tx, big_t)
    fit = CovariateFit(
        "bgnbd", plain.params, {"purchase": {}, "dropout_a": {}, "dropout_b": {}}, {}, 0.0, 0
    )
    np.testing.assert_allclose(
        probability_alive(fit, x, tx, big_t), plain.probability_alive(x, tx, big_t), rtol=1e-10
    )
    np.testing.assert_allclose(
        conditional_expected_purchases(fit, 10.0, x, tx, big_t),
        plain.conditional_expected_purchases(10.0, x, tx, big_t),
        rtol=1e-8,
    )


def test_round_trip_to_dict(effects: tuple[tuple[np.ndarray, ...], CovariateFit]) -> None:
    _, fit = effects
    assert CovariateFit.from_dict(fit.to_dict()) == fit


@pytest.mark.parametrize(
    ("purchase", "names", "message"),
    [
        (np.array([[np.nan], [1.0], [2.0], [0.0]]), ["z"], "NaN"),
        (np.ones((3, 1)), ["z"], "row"),
        (np.arange(8.0).reshape(4, 2), ["z"], "column"),
        (np.full((4, 1), 2.0), ["z"], "constant"),
        (np.arange(4.0)[:, None], [], "column"),
    ],
)
def test_bad_covariates_raise_clear_errors(
    purchase: np.ndarray, names: list[str], message: str
) -> None:
    x = np.array([1.0, 0.0, 3.0, 2.0])
    tx = np.array([5.0, 0.0, 20.0, 8.0])
    big_t = np.full(4, 30.0)
    with pytest.raises(FitError, match=message):
        fit_bgnbd_covariates(x, tx, big_t, purchase, None, names, [])


def test_prediction_with_wrong_covariates_raises(
    effects: tuple[tuple[np.ndarray, ...], CovariateFit],
) -> None:
    _, fit = effects
    with pytest.raises(DataError, match="column"):
        probability_alive(fit, [1.0], [2.0], [5.0], np.ones((1, 3)), np.ones((1, 1)))


PNBD = {"r": 0.8, "alpha": 5.0, "s": 0.7, "beta": 12.0}


def simulate_paretonbd(n: int, seed: int, gp: float, gd: float) -> tuple[np.ndarray, ...]:
    """Customers from the covariate Pareto/NBD observed 52 weeks."""
    rng = np.random.default_rng(seed)
    big_t = np.full(n, 52.0)
    zp = rng.normal(size=n)
    zd = rng.binomial(1, 0.5, size=n).astype(float)
    lam = rng.gamma(PNBD["r"], 1.0 / (PNBD["alpha"] * np.exp(-gp * zp)))
    mu = rng.gamma(PNBD["s"], 1.0 / (PNBD["beta"] * np.exp(-gd * zd)))
    end = np.minimum(rng.exponential(1.0 / mu), big_t)
    x = rng.poisson(lam * end).astype(float)
    # The last of x uniform purchase times on (0, end).
    tx = np.where(x > 0, end * rng.beta(np.maximum(x, 1.0), 1.0), 0.0)
    return x, tx, big_t, zp[:, None], zd[:, None]


def test_paretonbd_customer_likelihood_equals_plain_model() -> None:
    x, tx, big_t, _, _ = simulate_paretonbd(3_000, 1, 0.0, 0.0)
    n = x.size
    ll, _ = paretonbd_customer_log_likelihood(
        PNBD["r"], np.full(n, PNBD["alpha"]), PNBD["s"], np.full(n, PNBD["beta"]), x, tx, big_t
    )
    reference = pareto_nbd_log_likelihood(*PNBD.values(), x, tx, big_t)
    np.testing.assert_allclose(ll, reference, rtol=1e-10)


def test_paretonbd_recovers_coefficients_and_matches_plain_fit() -> None:
    x, tx, big_t, zp, zd = simulate_paretonbd(20_000, 3, 0.5, 0.4)
    fit = fit_paretonbd_covariates(x, tx, big_t, zp, zd, ["z"], ["d"])
    for process, name, value in (("purchase", "z", 0.5), ("dropout", "d", 0.4)):
        se = fit.standard_errors[process][name]
        assert abs(fit.coefficients[process][name] - value) < 3 * se, process
    for name, value in PNBD.items():
        assert abs(fit.params[name] - value) < 3 * fit.standard_errors["params"][name], name
    assert fit.lr_test["df"] == 2
    assert fit.lr_test["pValue"] < 1e-10
    # A positive dropout coefficient means earlier dropout: lower P(alive), same history.
    alive = probability_alive(
        fit, [2.0, 2.0], [30.0, 30.0], [52.0, 52.0], [[0.0], [0.0]], [[0.0], [1.0]]
    )
    assert alive[1] < alive[0]

    plain = ParetoNBDModel.fit(x, tx, big_t)
    zero = fit_paretonbd_covariates(x, tx, big_t, None, None)
    assert zero.log_likelihood == pytest.approx(plain.log_likelihood, rel=1e-8)
    np.testing.assert_allclose(
        probability_alive(zero, x, tx, big_t), plain.probability_alive(x, tx, big_t), rtol=1e-8
    )
    np.testing.assert_allclose(
        conditional_expected_purchases(zero, 10.0, x, tx, big_t),
        plain.conditional_expected_purchases(10.0, x, tx, big_t),
        rtol=1e-6,
    )


def test_paretonbd_gradient_matches_finite_differences() -> None:
    x, tx, big_t, zp, zd = simulate_paretonbd(500, 5, 0.5, 0.4)
    theta = np.array([np.log(0.7), np.log(4.0), np.log(0.6), np.log(10.0), 0.3, -0.2])
    _check_gradient(_paretonbd_objective(x, tx, big_t, zp, zd), theta)
