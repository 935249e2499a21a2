"""P(X(t) = n) for BG/NBD (against lifetimes and its own moments) and the calibration-fit
histogram (issue 12, section 2)."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from nextbest_clv.core.models.bgnbd import BetaGeoModel
from nextbest_clv.core.models.errors import DataError
from nextbest_clv.core.models.fit_quality import calibration_histogram, tracking_curve
from nextbest_clv.core.models.summary import CustomerSummary

PARAMS = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # FHL 2005, CDNOW


def test_probability_of_n_purchases_matches_lifetimes(lifetimes: ModuleType) -> None:
    import pandas as pd

    model = BetaGeoModel.from_params(**PARAMS)
    reference = lifetimes.BetaGeoFitter()
    reference.params_ = pd.Series(PARAMS)
    for t in (1.0, 10.0, 39.0, 78.0):
        for n in (0, 1, 2, 5, 10):
            expected = float(reference.probability_of_n_purchases_up_to_time(t, n))
            assert float(model.probability_of_purchases(t, n)) == pytest.approx(expected, 1e-8)


@pytest.mark.parametrize("params", [PARAMS, {"r": 0.243, "alpha": 4.414, "a": 0.3, "b": 0.5}])
def test_probabilities_sum_to_one_with_the_expected_mean(params: dict[str, float]) -> None:
    model = BetaGeoModel.from_params(**params)
    n = np.arange(0, 5000)
    for t in (0.5, 39.0, 200.0):
        p = model.probability_of_purchases(t, n)
        assert np.all(p >= 0) and p.sum() == pytest.approx(1.0, abs=1e-10)
        assert (n * p).sum() == pytest.approx(float(model.expected_purchases(t)), rel=1e-8)
    grid = model.probability_of_purchases(np.array([[1.0], [39.0]]), np.arange(3))
    assert grid.shape == (2, 3)
    with pytest.raises(DataError):
        model.probability_of_purchases(10.0, 1.5)


def test_the_calibration_histogram_of_a_known_model() -> None:
    model = BetaGeoModel.from_params(**PARAMS)
    big_t = np.random.default_rng(3).choice([27.0, 32.0, 39.0], size=20_000)
    sample = model.sample(big_t, seed=11)
    hist = calibration_histogram(model, sample.frequency, sample.T, max_count=7)
    assert hist.labels == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert hist.actual.sum() == hist.expected.sum() == pytest.approx(20_000)
    # The expected counts are sums of P(X(T_i) = n) over customers.
    direct = sum(model.probability_of_purchases(t, np.arange(7)) for t in sample.T)
    np.testing.assert_allclose(hist.expected[:7], direct, rtol=1e-10)
    # Data drawn from the model: each bucket within four binomial standard errors.
    share = hist.expected / 20_000
    sigma = np.sqrt(20_000 * share * (1 - share))
    assert np.all(np.abs(hist.actual - hist.expected) <= 4 * sigma + 1)


def test_the_calibration_histogram_on_cdnow(
    cdnow_summary: CustomerSummary, cdnow_bgnbd: BetaGeoModel
) -> None:
    s = cdnow_summary
    hist = calibration_histogram(cdnow_bgnbd, s.frequency, s.T, max_count=7)
    assert hist.actual.sum() == pytest.approx(hist.expected.sum()) == len(s.frequency)
    assert hist.actual[0] == np.count_nonzero(s.frequency == 0)
    # The fitted model reproduces the zero class closely (FHL 2005, figure 2).
    assert abs(hist.expected[0] - hist.actual[0]) / hist.actual[0] < 0.02
    assert hist.to_dict()["labels"][-1] == "7+"


def test_no_purchase_and_the_time_to_the_next_one_against_simulation() -> None:
    """Simulated continuations of customers with a known history agree with the closed
    forms: P(no purchase in the next t), and the median and mean wait of those alive."""
    model = BetaGeoModel.from_params(**PARAMS)
    rng = np.random.default_rng(5)
    x, tx, big_t, t = 3.0, 20.0, 39.0, 10.0
    # Posterior draws: lambda | alive ~ Gamma(r + x, alpha + T); alive with P(alive).
    n = 400_000
    alive = rng.random(n) < float(model.probability_alive(x, tx, big_t))
    lam = rng.gamma(PARAMS["r"] + x, 1 / (PARAMS["alpha"] + big_t), n)
    wait = rng.exponential(1 / lam)
    quiet = ~alive | (wait > t)
    p = float(model.probability_of_no_purchase(t, x, tx, big_t))
    assert abs(quiet.mean() - p) < 4 * np.sqrt(p * (1 - p) / n)
    median = float(model.time_to_next_purchase(x, big_t))
    assert abs(np.median(wait) - median) / median < 0.01
    mean = float(model.time_to_next_purchase(x, big_t, quantile=None))
    assert abs(wait.mean() - mean) / mean < 0.03
    assert float(model.time_to_next_purchase(0, big_t, quantile=None)) == np.inf  # r < 1
    with pytest.raises(DataError):
        model.time_to_next_purchase(x, big_t, quantile=1.0)


def test_the_tracking_curve_against_simulated_purchase_times() -> None:
    """Customers born over 12 weeks buy as the model says (Poisson while alive, a dropout
    chance after each purchase); their cumulative repeat purchases by week agree with the
    curve."""
    model = BetaGeoModel.from_params(**PARAMS)
    rng = np.random.default_rng(8)
    n = 20_000
    births = np.floor(rng.uniform(0, 12, n) * 7) / 7  # whole days, in weeks
    lam = rng.gamma(PARAMS["r"], 1 / PARAMS["alpha"], n)
    p = rng.beta(PARAMS["a"], PARAMS["b"], n)
    purchases = np.minimum(rng.geometric(p), 400)  # the purchase after which they drop out
    gaps = rng.exponential(1.0, (n, 400)) / lam[:, None]
    times = births[:, None] + np.cumsum(gaps, axis=1)
    made = np.arange(1, 401)[None, :] <= purchases[:, None]
    ends = np.arange(1.0, 79.0)
    simulated = np.array([np.count_nonzero(made & (times <= e)) for e in ends])
    curve = tracking_curve(model, births, ends)
    direct = [sum(float(model.expected_purchases(max(e - b, 0))) for b in births[:300])
              for e in ends[:3]]  # fmt: skip
    partial = tracking_curve(model, births[:300], ends[:3])
    np.testing.assert_allclose(partial.cumulative, direct, rtol=1e-10)
    np.testing.assert_allclose(np.cumsum(curve.increments), curve.cumulative)
    # Monte Carlo error: heavy-tailed rates; 5% over most of the curve.
    assert np.all(np.abs(simulated[10:] - curve.cumulative[10:]) / curve.cumulative[10:] < 0.05)
    with pytest.raises(DataError):
        tracking_curve(model, births, ends[::-1])
