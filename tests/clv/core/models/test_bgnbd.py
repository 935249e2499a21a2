"""BG/NBD: published CDNOW figures, parity with lifetimes, numerics and error handling."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from nextbest_clv.core.models import bgnbd as bgnbd_module
from nextbest_clv.core.models.bgnbd import BetaGeoModel, _Likelihood
from nextbest_clv.core.models.errors import DataError, FitError
from nextbest_clv.core.models.summary import CustomerSummary
from scipy.optimize import approx_fprime

# Fader, Hardie & Lee (2005), table of estimates for the CDNOW sample.
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_LL = -9582.4


def _sig4(value: float) -> float:
    return float(f"{value:.4g}")


@pytest.fixture(scope="module")
def lifetimes_bgf(lifetimes: ModuleType, cdnow_summary: CustomerSummary) -> Any:
    """lifetimes' BetaGeoFitter fitted on the same summary."""
    s = cdnow_summary
    return lifetimes.BetaGeoFitter().fit(s.frequency, s.recency, s.T)


@pytest.fixture()
def lifetimes_at_our_params(lifetimes: ModuleType, cdnow_bgnbd: BetaGeoModel) -> Any:
    """A lifetimes BetaGeoFitter holding exactly our fitted parameters."""
    import pandas as pd

    fitter = lifetimes.BetaGeoFitter()
    fitter.params_ = pd.Series(cdnow_bgnbd.params)
    return fitter


def test_fit_reproduces_published_estimates(cdnow_bgnbd: BetaGeoModel) -> None:
    for name, value in PUBLISHED.items():
        assert round(cdnow_bgnbd.params[name], 3) == value, name
    assert round(cdnow_bgnbd.log_likelihood, 1) == PUBLISHED_LL
    assert cdnow_bgnbd.n_customers == 2357


def test_fit_matches_lifetimes_to_four_significant_figures(
    cdnow_bgnbd: BetaGeoModel, lifetimes_bgf: Any
) -> None:
    for name, value in cdnow_bgnbd.params.items():
        assert _sig4(value) == _sig4(lifetimes_bgf.params_[name]), name


def test_standard_errors_match_lifetimes(cdnow_bgnbd: BetaGeoModel, lifetimes_bgf: Any) -> None:
    for name, se in cdnow_bgnbd.standard_errors.items():
        assert se == pytest.approx(lifetimes_bgf.standard_errors_[name], rel=1e-4), name


def test_customer_one_spot_values(cdnow_bgnbd: BetaGeoModel) -> None:
    # Hardie's spreadsheet: x = 2, t_x = 30.43, T = 38.86 -> 1.226 purchases in 39 weeks.
    expected = cdnow_bgnbd.conditional_expected_purchases(39, 2, 30.43, 38.86)
    assert round(float(expected), 3) == 1.226
    assert round(float(cdnow_bgnbd.probability_alive(2, 30.43, 38.86)), 4) == 0.7266


def test_holdout_prediction_total_matches_published_and_lifetimes(
    cdnow_bgnbd: BetaGeoModel, cdnow_summary: CustomerSummary, lifetimes_at_our_params: Any
) -> None:
    s = cdnow_summary
    ours = cdnow_bgnbd.conditional_expected_purchases(39, s.frequency, s.recency, s.T)
    assert round(float(ours.sum()), 1) == 1653.4
    ref = lifetimes_at_our_params.conditional_expected_number_of_purchases_up_to_time(
        39, s.frequency, s.recency, s.T
    )
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
    assert ours.sum() == pytest.approx(float(np.sum(ref)), rel=1e-6)


def test_probability_alive_matches_lifetimes(
    cdnow_bgnbd: BetaGeoModel, cdnow_summary: CustomerSummary, lifetimes_at_our_params: Any
) -> None:
    s = cdnow_summary
    sample = np.random.default_rng(3).choice(len(s), 300, replace=False)
    x, tx, big_t = s.frequency[sample], s.recency[sample], s.T[sample]
    ours = cdnow_bgnbd.probability_alive(x, tx, big_t)
    ref = lifetimes_at_our_params.conditional_probability_alive(x, tx, big_t)
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
    assert np.all(ours[x == 0] == 1.0)


def test_unconditional_expectation_matches_lifetimes(
    cdnow_bgnbd: BetaGeoModel, lifetimes_at_our_params: Any
) -> None:
    t = np.array([0.5, 4.0, 39.0, 78.0, 520.0])
    ref = lifetimes_at_our_params.expected_number_of_purchases_up_to_time(t)
    np.testing.assert_allclose(cdnow_bgnbd.expected_purchases(t), ref, rtol=1e-6)
    assert cdnow_bgnbd.expected_purchases(0.0) == 0.0


def test_log_likelihood_of_sums_to_the_fit(
    cdnow_bgnbd: BetaGeoModel, cdnow_summary: CustomerSummary
) -> None:
    s = cdnow_summary
    per_customer = cdnow_bgnbd.log_likelihood_of(s.frequency, s.recency, s.T)
    assert per_customer.shape == (2357,)
    assert per_customer.sum() == pytest.approx(cdnow_bgnbd.log_likelihood, rel=1e-12)


def test_analytic_gradient_matches_finite_differences(cdnow_summary: CustomerSummary) -> None:
    s = cdnow_summary
    weights = np.random.default_rng(0).integers(1, 4, len(s)).astype(float)
    likelihood = _Likelihood(s.frequency, s.recency, s.T, weights)
    for theta in ([0.3, 5.0, 0.7, 2.0], [1.5, 0.8, 3.0, 0.4]):
        point = np.array(theta)
        _, grad = likelihood.value_and_gradient(point)
        numeric = approx_fprime(point, lambda p: likelihood.value_and_gradient(p)[0], 1e-7)
        np.testing.assert_allclose(grad, numeric, rtol=2e-4, atol=1e-3)


def test_fit_in_days_is_the_fit_in_weeks_rescaled(
    cdnow_bgnbd: BetaGeoModel, cdnow_summary: CustomerSummary
) -> None:
    s = cdnow_summary
    in_days = BetaGeoModel.fit(s.frequency, s.recency * 7, s.T * 7)
    assert in_days.alpha == pytest.approx(cdnow_bgnbd.alpha * 7, rel=1e-6)
    for name in ("r", "a", "b"):
        assert in_days.params[name] == pytest.approx(cdnow_bgnbd.params[name], rel=1e-6)
    # Each purchase time is a density in time: the likelihood changes by 7^-x per customer.
    assert in_days.log_likelihood == pytest.approx(
        cdnow_bgnbd.log_likelihood - s.frequency.sum() * np.log(7), rel=1e-9
    )


def test_weights_equal_repeated_rows(cdnow_summary: CustomerSummary) -> None:
    s = cdnow_summary
    sl = slice(0, 600)
    x, tx, big_t = s.frequency[sl], s.recency[sl], s.T[sl]
    weighted = BetaGeoModel.fit(x, tx, big_t, weights=np.full(x.size, 2.0))
    doubled = BetaGeoModel.fit(np.r_[x, x], np.r_[tx, tx], np.r_[big_t, big_t])
    for name in weighted.params:
        assert weighted.params[name] == pytest.approx(doubled.params[name], rel=1e-5)


def test_penalized_fit_matches_lifetimes(
    lifetimes: ModuleType, cdnow_summary: CustomerSummary
) -> None:
    # lifetimes rescales time so that max(T) = 1 before applying its penalty.
    s = cdnow_summary
    scale = 1.0 / s.T.max()
    ref = lifetimes.BetaGeoFitter(penalizer_coef=0.01).fit(
        s.frequency, s.recency * scale, s.T * scale
    )
    ours = BetaGeoModel.fit(s.frequency, s.recency * scale, s.T * scale, penalizer=0.01)
    for name, value in ours.params.items():
        assert _sig4(value) == _sig4(ref.params_[name]), name


def test_grid_of_horizons_equals_one_call_per_horizon(
    cdnow_bgnbd: BetaGeoModel, cdnow_summary: CustomerSummary
) -> None:
    s = cdnow_summary
    horizons = np.array([1.0, 4.345, 13.0, 52.0])
    grid = cdnow_bgnbd.conditional_expected_purchases(
        horizons[:, None], s.frequency, s.recency, s.T
    )
    assert grid.shape == (4, 2357)
    for row, t in zip(grid, horizons, strict=True):
        single = cdnow_bgnbd.conditional_expected_purchases(t, s.frequency, s.recency, s.T)
        np.testing.assert_allclose(row, single, rtol=1e-14)


def test_grid_of_horizons_with_continuous_times() -> None:
    # Distinct T everywhere: the grid is evaluated without de-duplication.
    model = BetaGeoModel.from_params(0.243, 4.414, 0.793, 2.426)
    sample = model.sample(np.random.default_rng(9).uniform(0.5, 80.0, 5000), seed=10)
    horizons = np.array([[2.0], [30.0]])
    grid = model.conditional_expected_purchases(horizons, *sample)
    for row, t in zip(grid, horizons[:, 0], strict=True):
        np.testing.assert_allclose(
            row, model.conditional_expected_purchases(t, *sample), rtol=1e-14
        )


@pytest.mark.parametrize(
    ("params", "table_used"),
    [
        ((0.243, 4.414, 0.793, 2.426), True),
        # z up to 0.99 with a steep 2F1: the tables fail their midpoint check, 2F1 is used.
        ((2.0, 0.5, 3.5, 0.6), False),
    ],
)
def test_tabulated_hypergeometric_matches_direct_evaluation(
    monkeypatch: pytest.MonkeyPatch, params: tuple[float, float, float, float], table_used: bool
) -> None:
    model = BetaGeoModel.from_params(*params)
    sample = model.sample(np.random.default_rng(13).uniform(0.1, 80.0, 6000), seed=14)
    horizons = (np.arange(1, 13) * 4.35)[:, None]
    monkeypatch.setattr(bgnbd_module, "_TABLE_MIN_SIZE", 10**12)
    direct = model.conditional_expected_purchases(horizons, *sample)
    monkeypatch.setattr(bgnbd_module, "_TABLE_MIN_SIZE", 1)
    tabulated = model.conditional_expected_purchases(horizons, *sample)
    np.testing.assert_allclose(tabulated, direct, rtol=1e-10, atol=1e-14)
    assert np.array_equal(tabulated, direct) is not table_used
    # Tables that fail their midpoint check are not used: the result is 2F1 itself.
    monkeypatch.setattr(bgnbd_module, "_TABLE_TOLERANCE", -1.0)
    np.testing.assert_array_equal(model.conditional_expected_purchases(horizons, *sample), direct)


def test_heavy_long_history_customers_stay_finite() -> None:
    model = BetaGeoModel.from_params(0.243, 4.414, 0.793, 2.426)
    x = np.array([0.0, 50.0, 500.0, 5000.0, 5000.0])
    tx = np.array([0.0, 99.0, 999.0, 9999.0, 10.0])
    big_t = np.array([1.0, 100.0, 1000.0, 10000.0, 10000.0])
    for t in (1.0, 52.0, 5200.0):
        expected = model.conditional_expected_purchases(t, x, tx, big_t)
        assert np.all(np.isfinite(expected)) and np.all(expected >= 0)
    alive = model.probability_alive(x, tx, big_t)
    assert np.all(np.isfinite(alive))
    assert alive[3] > 0.99  # bought just before T, thousands of times
    assert alive[4] < 1e-100  # bought 5,000 times, then nothing for 9,990 weeks
    ll = model.log_likelihood_of(x, tx, big_t)
    assert np.all(np.isfinite(ll))
    # A busy customer seen recently expects purchases at about their observed rate, x / T.
    rate = float(model.conditional_expected_purchases(10.0, 5000, 9999, 10000)) / 10.0
    assert rate == pytest.approx(0.5, rel=0.02)


def test_predictions_are_continuous_through_a_equal_one() -> None:
    # The closed form is 0/0 at a = 1; near it the model uses a symmetric limit. Compare with a
    # linear interpolation of values computed directly at a = 1 +/- 1e-3 (error ~ 1e-6 * f'').
    x, tx, big_t = np.array([0.0, 3.0]), np.array([0.0, 20.0]), np.array([30.0, 30.0])

    def at(a: float) -> np.ndarray:
        model = BetaGeoModel.from_params(0.3, 5.0, a, 2.0)
        return model.conditional_expected_purchases(26, x, tx, big_t)

    lo, hi = at(1.0 - 1e-3), at(1.0 + 1e-3)
    for a in (1.0 - 2e-5, 1.0, 1.0 + 3e-5):
        interpolated = lo + (hi - lo) * (a - (1.0 - 1e-3)) / 2e-3
        np.testing.assert_allclose(at(a), interpolated, rtol=2e-6)


def test_sampler_recovers_parameters() -> None:
    truth = BetaGeoModel.from_params(0.243, 4.414, 0.793, 2.426)
    big_t = np.random.default_rng(11).integers(7, 7 * 78, 100_000) / 7
    sample = truth.sample(big_t, seed=12)
    assert np.all(sample.recency <= sample.T) and np.all(sample.recency[sample.frequency == 0] == 0)
    fitted = BetaGeoModel.fit(*sample)
    for name, value in truth.params.items():
        assert abs(fitted.params[name] - value) < 4 * fitted.standard_errors[name], name
    # Same seed, same draw.
    again = truth.sample(big_t, seed=12)
    np.testing.assert_array_equal(again.frequency, sample.frequency)


def test_sampler_matches_the_model_expectation() -> None:
    truth = BetaGeoModel.from_params(0.5, 3.0, 0.8, 2.5)
    sample = truth.sample(np.full(200_000, 20.0), seed=5)
    expected = float(truth.expected_purchases(20.0))
    standard_error = sample.frequency.std() / math.sqrt(sample.frequency.size)
    assert abs(sample.frequency.mean() - expected) < 4 * standard_error


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (([], [], []), "no customers"),
        (([0, 0, 0], [0, 0, 0], [5, 6, 7]), "repeat customers"),
        (([1, np.nan], [1, 0], [5, 6]), "NaN"),
        (([1, 2], [6, 1], [5, 6]), "recency"),
        (([1, -1], [1, 0], [5, 6]), "whole numbers"),
        (([1.5, 2], [1, 1], [5, 6]), "whole numbers"),
        (([1, 2], [1, 1], [0, 6]), "T must be > 0"),
        (([0, 2], [1, 1], [5, 6]), "recency must be 0"),
        (([1, 2], [1, 1, 1], [5, 6]), "compatible shapes"),
    ],
)
def test_degenerate_or_invalid_data_raises_fit_error(
    data: tuple[list[float], list[float], list[float]], message: str
) -> None:
    with pytest.raises(FitError, match=message):
        BetaGeoModel.fit(*data)


def test_fit_error_is_a_value_error() -> None:
    assert issubclass(FitError, ValueError)


def test_from_params_validates_and_predictions_validate_inputs() -> None:
    with pytest.raises(DataError, match="parameters must be finite and > 0"):
        BetaGeoModel.from_params(0.2, -1.0, 0.7, 2.0)
    model = BetaGeoModel.from_params(0.2, 4.0, 0.7, 2.0)
    assert math.isnan(model.log_likelihood) and model.standard_errors == {}
    with pytest.raises(DataError, match="horizon"):
        model.conditional_expected_purchases(-1.0, 1, 1, 2)
    with pytest.raises(DataError, match="recency"):
        model.probability_alive(1, 3, 2)
