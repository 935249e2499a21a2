"""Pareto/NBD: published CDNOW figures, parity with lifetimes, extreme customers, errors."""

from __future__ import annotations

import math
import warnings
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from nextbest_clv.core.models.clv import customer_lifetime_value
from nextbest_clv.core.models.errors import DataError, FitError
from nextbest_clv.core.models.paretonbd import ParetoNBDModel, _terms, pareto_nbd_log_likelihood
from nextbest_clv.core.models.summary import CustomerSummary
from scipy.integrate import quad
from scipy.special import gammaln

# Pareto/NBD on the CDNOW sample (Fader, Hardie & Lee 2005, and Fader & Hardie's note).
PUBLISHED = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
PUBLISHED_LL = -9595.0
# Parameters for "daily" customers with long histories: mean purchase rate r/alpha = 1/7 per
# day, mean lifetime of a few years; max/min(alpha, beta) ~ 126 puts z close to 1.
DAILY = {"r": 0.5, "alpha": 3.5, "s": 0.6, "beta": 440.0}


@pytest.fixture(scope="module")
def cdnow_paretonbd(cdnow_summary: CustomerSummary) -> ParetoNBDModel:
    s = cdnow_summary
    return ParetoNBDModel.fit(s.frequency, s.recency, s.T)


@pytest.fixture(scope="module")
def lifetimes_pnbd(lifetimes: ModuleType, cdnow_summary: CustomerSummary) -> Any:
    s = cdnow_summary
    # lifetimes draws its starting point from the global numpy RNG: seed it for a repeatable
    # test, and put the global state back afterwards.
    state = np.random.get_state()
    np.random.seed(0)
    try:
        return lifetimes.ParetoNBDFitter().fit(s.frequency, s.recency, s.T)
    finally:
        np.random.set_state(state)


def _lifetimes_at(lifetimes: ModuleType, params: dict[str, float]) -> Any:
    import pandas as pd

    fitter = lifetimes.ParetoNBDFitter()
    fitter.params_ = pd.Series(params)
    fitter.predict = fitter.conditional_expected_number_of_purchases_up_to_time
    return fitter


def _reference_log_likelihood(
    r: float, alpha: float, s: float, beta: float, x: float, t_x: float, T: float
) -> float:
    """The likelihood with the integral I done by adaptive quadrature (scaled by its start)."""
    p = r + x

    def log_f(tau: float) -> float:
        return -p * math.log(alpha + tau) - (s + 1) * math.log(beta + tau)

    log_start = log_f(t_x)
    log_i = -math.inf
    if t_x < T:
        value, _ = quad(
            lambda tau: math.exp(log_f(tau) - log_start),
            t_x,
            T,
            epsabs=0.0,
            epsrel=1e-13,
            limit=500,
        )
        log_i = log_start + math.log(value)
    log_alive = -p * math.log(alpha + T) - s * math.log(beta + T)
    head = gammaln(p) - gammaln(r) + r * math.log(alpha) + s * math.log(beta)
    return float(head + np.logaddexp(log_alive, math.log(s) + log_i))


# ---- CDNOW: published figures and lifetimes ----------------------------------------------


def test_cdnow_fit_matches_published_estimates(cdnow_paretonbd: ParetoNBDModel) -> None:
    for name, value in PUBLISHED.items():
        assert round(cdnow_paretonbd.params[name], 3) == pytest.approx(value, abs=1e-9), name
    assert round(cdnow_paretonbd.log_likelihood, 1) == PUBLISHED_LL
    assert cdnow_paretonbd.n_customers == 2357


def test_cdnow_fit_matches_lifetimes_to_four_significant_figures(
    cdnow_paretonbd: ParetoNBDModel, lifetimes_pnbd: Any, cdnow_summary: CustomerSummary
) -> None:
    # lifetimes starts Nelder-Mead from a random point (np.random.normal(1, 0.05)) and stops at
    # a loose tolerance, so its 4th digit depends on the start (s = 0.6062..0.6063, beta =
    # 11.666..11.671 over starts): compare as 4-significant-figure agreement, i.e. a relative
    # difference below 5e-4, not as rounded strings.
    for name, value in cdnow_paretonbd.params.items():
        theirs = float(lifetimes_pnbd.params_[name])
        assert abs(value - theirs) <= 5e-4 * abs(theirs), (name, value, theirs)
    # and ours is at least as good an optimum of the same likelihood
    s = cdnow_summary
    theirs_ll = pareto_nbd_log_likelihood(
        *(float(lifetimes_pnbd.params_[k]) for k in PUBLISHED), s.frequency, s.recency, s.T
    ).sum()
    assert cdnow_paretonbd.log_likelihood >= theirs_ll - 1e-9


def test_cdnow_standard_errors_are_finite_and_positive(cdnow_paretonbd: ParetoNBDModel) -> None:
    se = cdnow_paretonbd.standard_errors
    assert set(se) == set(PUBLISHED)
    assert all(math.isfinite(v) and v > 0 for v in se.values())
    # r is well determined on CDNOW, beta much less so (a flat likelihood in that direction).
    assert se["r"] < 0.1 * cdnow_paretonbd.r < se["beta"]


def test_btyd_walkthrough_spot_values() -> None:
    # R BTYD walkthrough: E[X(52) | x=26, t_x=30.86, T=31] = 25.46, P(alive) = 0.9979.
    model = ParetoNBDModel.from_params(**PUBLISHED)
    expected = float(model.conditional_expected_purchases(52, 26, 30.86, 31))
    alive = float(model.probability_alive(26, 30.86, 31))
    assert round(expected, 2) == 25.46
    assert round(alive, 4) == 0.9979


def test_predictions_match_lifetimes_at_same_parameters(
    lifetimes: ModuleType, cdnow_paretonbd: ParetoNBDModel, cdnow_summary: CustomerSummary
) -> None:
    s = cdnow_summary
    reference = _lifetimes_at(lifetimes, cdnow_paretonbd.params)
    rng = np.random.default_rng(5)
    idx = np.sort(rng.choice(s.frequency.size, 500, replace=False))
    x, t_x, big_t = s.frequency[idx], s.recency[idx], s.T[idx]
    for t in (1.0, 39.0, 52.0):
        ours = cdnow_paretonbd.conditional_expected_purchases(t, x, t_x, big_t)
        theirs = reference.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, big_t)
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=0)
    np.testing.assert_allclose(
        cdnow_paretonbd.probability_alive(x, t_x, big_t),
        reference.conditional_probability_alive(x, t_x, big_t),
        rtol=1e-6,
        atol=0,
    )
    t = np.array([1.0, 10.0, 39.0, 78.0])
    np.testing.assert_allclose(
        cdnow_paretonbd.expected_purchases(t),
        reference.expected_number_of_purchases_up_to_time(t),
        rtol=1e-6,
        atol=0,
    )


def test_cdnow_holdout_prediction_total(
    lifetimes: ModuleType, cdnow_paretonbd: ParetoNBDModel, cdnow_summary: CustomerSummary
) -> None:
    s = cdnow_summary
    assert s.duration_holdout is not None and s.frequency_holdout is not None
    ours = cdnow_paretonbd.conditional_expected_purchases(
        s.duration_holdout, s.frequency, s.recency, s.T
    )
    reference = _lifetimes_at(lifetimes, cdnow_paretonbd.params)
    theirs = reference.conditional_expected_number_of_purchases_up_to_time(
        s.duration_holdout, s.frequency, s.recency, s.T
    )
    assert ours.sum() == pytest.approx(float(np.sum(theirs)), rel=1e-6)
    # A sanity bound against the data: 1,882 actual repeat purchase-days in weeks 40-78.
    assert s.frequency_holdout.sum() == 1882
    assert 0.8 < ours.sum() / 1882 < 1.05


def test_customer_lifetime_value_works_with_pareto_nbd(
    lifetimes: ModuleType, cdnow_paretonbd: ParetoNBDModel, cdnow_summary: CustomerSummary
) -> None:
    import pandas as pd
    from lifetimes.utils import _customer_lifetime_value

    s = cdnow_summary
    n = 300
    monetary = np.where(s.monetary_value[:n] > 0, s.monetary_value[:n], 20.0)
    ours = customer_lifetime_value(
        cdnow_paretonbd,
        s.frequency[:n],
        s.recency[:n],
        s.T[:n],
        monetary,
        months=12,
        discount_rate_monthly=0.01,
        time_unit_days=7.0,
        days_per_month=4.345 * 7.0,  # lifetimes' weeks per month
    )
    reference = _lifetimes_at(lifetimes, cdnow_paretonbd.params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # lifetimes' log(0) at x = 0
        theirs = _customer_lifetime_value(
            reference,
            pd.Series(s.frequency[:n]),
            pd.Series(s.recency[:n]),
            pd.Series(s.T[:n]),
            pd.Series(monetary),
            time=12,
            discount_rate=0.01,
            freq="W",
        )
    np.testing.assert_allclose(ours, theirs.to_numpy(), rtol=1e-6, atol=1e-9)


# ---- likelihood numerics -------------------------------------------------------------------


def test_log_likelihood_matches_quadrature_on_cdnow_rows(cdnow_summary: CustomerSummary) -> None:
    s = cdnow_summary
    rows = [0, 1, 2, 10, 100, 500, 1000, 2000]
    ours = pareto_nbd_log_likelihood(
        *PUBLISHED.values(), s.frequency[rows], s.recency[rows], s.T[rows]
    )
    for i, row in enumerate(rows):
        ref = _reference_log_likelihood(
            *PUBLISHED.values(), s.frequency[row], s.recency[row], s.T[row]
        )
        assert ours[i] == pytest.approx(ref, rel=1e-11)


@pytest.mark.parametrize(
    ("params", "x", "t_x", "T"),
    [
        # daily data, long histories, many purchases (alpha < beta branch, z ~ 0.99)
        (DAILY, 300, 2900.0, 3000.0),
        (DAILY, 700, 1500.0, 3000.0),
        (DAILY, 900, 3650.0, 3700.0),
        (DAILY, 200, 100.0, 4000.0),
        (DAILY, 1, 1.0, 3000.0),
        (DAILY, 0, 0.0, 5000.0),
        (DAILY, 2, 5.0, 4000.0),
        # the other branch (alpha > beta)
        ({"r": 0.6, "alpha": 400.0, "s": 0.5, "beta": 3.0}, 900, 2000.0, 3000.0),
        ({"r": 0.6, "alpha": 400.0, "s": 0.5, "beta": 3.0}, 1, 1.0, 3000.0),
        ({"r": 0.6, "alpha": 400.0, "s": 0.5, "beta": 3.0}, 0, 0.0, 3000.0),
        # CDNOW-like parameters, an extreme customer in days
        ({"r": 0.55, "alpha": 74.0, "s": 0.61, "beta": 81.7}, 500, 3000.0, 3650.0),
    ],
)
def test_extreme_customers_are_finite_and_exact(
    params: dict[str, float], x: int, t_x: float, T: float
) -> None:
    ours = float(pareto_nbd_log_likelihood(*params.values(), x, t_x, T))
    ref = _reference_log_likelihood(*params.values(), x, t_x, T)
    assert math.isfinite(ours)
    assert ours == pytest.approx(ref, rel=1e-11, abs=1e-12)
    model = ParetoNBDModel.from_params(**params)
    alive = float(model.probability_alive(x, t_x, T))
    expected = float(model.conditional_expected_purchases(365.0, x, t_x, T))
    assert 0.0 <= alive <= 1.0
    assert math.isfinite(expected) and expected >= 0.0


def test_lifetimes_breaks_where_we_do_not(lifetimes: ModuleType) -> None:
    # A customer whose last purchase is at T: P(alive) is exactly 1 (nothing since to doubt).
    # lifetimes' hyp2f1 route gives NaN there for a heavy buyer with a long history.
    x, t_x, big_t = np.array([500.0]), np.array([3000.0]), np.array([3000.0])
    reference = _lifetimes_at(lifetimes, DAILY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = reference.conditional_probability_alive(x, t_x, big_t)
    ours = ParetoNBDModel.from_params(**DAILY).probability_alive(x, t_x, big_t)
    assert np.isnan(theirs[0])
    assert ours[0] == 1.0


def test_vectorised_matches_one_at_a_time() -> None:
    x = np.array([0.0, 1.0, 5.0, 300.0])
    t_x = np.array([0.0, 3.0, 20.0, 1000.0])
    big_t = np.array([40.0, 40.0, 40.0, 1200.0])
    together = pareto_nbd_log_likelihood(*PUBLISHED.values(), x, t_x, big_t)
    apart = [
        float(pareto_nbd_log_likelihood(*PUBLISHED.values(), *row))
        for row in zip(x, t_x, big_t, strict=True)
    ]
    np.testing.assert_allclose(together, apart, rtol=1e-14)


@pytest.mark.parametrize(
    "params", [PUBLISHED, DAILY, {"r": 2.0, "alpha": 50.0, "s": 3.0, "beta": 5.0}]
)
def test_analytic_gradient_matches_finite_differences(params: dict[str, float]) -> None:
    rng = np.random.default_rng(11)
    model = ParetoNBDModel.from_params(**params)
    sample = model.sample(rng.uniform(10, 400, 200), seed=3)
    theta = tuple(params.values())
    terms = _terms(theta, sample.frequency, sample.recency, sample.T, with_grad=True)
    assert terms.gradient is not None
    analytic = terms.gradient.sum(axis=1)
    for i in range(4):
        h = 1e-6 * theta[i]
        up = list(theta)
        down = list(theta)
        up[i] += h
        down[i] -= h
        numeric = (
            pareto_nbd_log_likelihood(*up, sample.frequency, sample.recency, sample.T).sum()
            - pareto_nbd_log_likelihood(*down, sample.frequency, sample.recency, sample.T).sum()
        ) / (2 * h)
        assert analytic[i] == pytest.approx(numeric, rel=1e-5, abs=1e-6)


# ---- predictions -------------------------------------------------------------------------


def test_expected_purchases_continuous_at_s_equal_one() -> None:
    near = ParetoNBDModel.from_params(0.5, 10.0, 1.0 + 1e-9, 12.0)
    exact = ParetoNBDModel.from_params(0.5, 10.0, 1.0, 12.0)
    t = np.array([1.0, 39.0, 520.0])
    # s = 1: E[X(t)] = r/alpha * beta * log(1 + t/beta).
    np.testing.assert_allclose(exact.expected_purchases(t), 0.05 * 12.0 * np.log1p(t / 12.0))
    np.testing.assert_allclose(near.expected_purchases(t), exact.expected_purchases(t), rtol=1e-8)
    np.testing.assert_allclose(
        near.conditional_expected_purchases(t, 3, 20.0, 30.0),
        exact.conditional_expected_purchases(t, 3, 20.0, 30.0),
        rtol=1e-8,
    )


def test_conditional_expectation_broadcasts_horizons_against_customers() -> None:
    model = ParetoNBDModel.from_params(**PUBLISHED)
    x = np.array([0.0, 2.0, 7.0])
    t_x = np.array([0.0, 10.0, 30.0])
    big_t = np.array([38.0, 38.0, 38.0])
    horizons = np.array([[4.0], [13.0], [52.0]])
    grid = model.conditional_expected_purchases(horizons, x, t_x, big_t)
    assert grid.shape == (3, 3)
    np.testing.assert_allclose(grid[1], model.conditional_expected_purchases(13.0, x, t_x, big_t))
    assert np.all(np.diff(grid, axis=0) > 0)


def test_probability_alive_is_one_after_a_purchase_today() -> None:
    model = ParetoNBDModel.from_params(**PUBLISHED)
    assert model.probability_alive(np.array([4.0, 40.0]), 30.0, 30.0) == pytest.approx(1.0)
    # and decreases with the time since the last purchase
    alive = model.probability_alive(4, np.array([30.0, 20.0, 5.0]), 30.0)
    assert np.all(np.diff(alive) < 0)


def test_sample_is_seeded_and_fit_recovers_parameters() -> None:
    truth = ParetoNBDModel.from_params(**PUBLISHED)
    big_t = np.random.default_rng(0).uniform(26, 78, 8_000)
    first = truth.sample(big_t, seed=42)
    again = truth.sample(big_t, seed=42)
    np.testing.assert_array_equal(first.frequency, again.frequency)
    np.testing.assert_array_equal(first.recency, again.recency)
    assert np.all((first.recency <= first.T) & (first.recency >= 0))
    assert np.all(first.recency[first.frequency == 0] == 0)
    # The simulated mean frequency agrees with E[X(T)] averaged over the T's.
    assert first.frequency.mean() == pytest.approx(truth.expected_purchases(big_t).mean(), rel=0.05)
    fitted = ParetoNBDModel.fit(first.frequency, first.recency, first.T)
    for name, value in PUBLISHED.items():
        se = fitted.standard_errors[name]
        assert abs(fitted.params[name] - value) < 4 * se, (name, fitted.params[name], se)


# ---- penalty, construction and errors --------------------------------------------------------


def test_penalizer_shrinks_parameters(
    cdnow_summary: CustomerSummary, cdnow_paretonbd: ParetoNBDModel
) -> None:
    s = cdnow_summary
    shrunk = ParetoNBDModel.fit(s.frequency, s.recency, s.T, penalizer=0.01)
    size = sum(v * v for v in shrunk.params.values())
    assert size < sum(v * v for v in cdnow_paretonbd.params.values())
    assert shrunk.log_likelihood < cdnow_paretonbd.log_likelihood


def test_fit_without_repeat_purchases_raises() -> None:
    with pytest.raises(FitError, match="no customer has a repeat purchase"):
        ParetoNBDModel.fit([0, 0, 0], [0, 0, 0], [10, 20, 30])


def test_fit_rejects_invalid_data() -> None:
    with pytest.raises(FitError, match="recency"):
        ParetoNBDModel.fit([1, 2], [5, 50], [10, 20])
    with pytest.raises(FitError, match="no customers"):
        ParetoNBDModel.fit([], [], [])
    with pytest.raises(FitError, match="unknown initial"):
        ParetoNBDModel.fit([1, 2], [5, 10], [10, 20], initial_params={"gamma": 1.0})


def test_predictions_reject_invalid_input() -> None:
    model = ParetoNBDModel.from_params(**PUBLISHED)
    with pytest.raises(DataError, match="frequency"):
        model.probability_alive(-1, 0, 10)
    with pytest.raises(DataError, match="horizon"):
        model.conditional_expected_purchases(-1, 1, 2, 10)
    with pytest.raises(DataError, match="must be finite and > 0"):
        ParetoNBDModel.from_params(0.5, -1.0, 0.5, 1.0)
