"""Pareto/NBD count probabilities, P(no purchase), the wait for the next purchase, the
calibration histogram and the tracking curve (issue 12, section 2), against lifetimes' closed
form, the model's own mean and simulation with known parameters."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from nextbest_clv.core.models.errors import DataError
from nextbest_clv.core.models.fit_quality import calibration_histogram, tracking_curve
from nextbest_clv.core.models.paretonbd import ParetoNBDModel
from nextbest_clv.core.models.summary import CustomerSummary

PARAMS = {"r": 0.553, "alpha": 10.58, "s": 0.606, "beta": 11.67}  # FHL 2005, CDNOW


def test_conditional_count_probabilities_match_lifetimes(lifetimes: ModuleType) -> None:
    import pandas as pd

    model = ParetoNBDModel.from_params(**PARAMS)
    reference = lifetimes.ParetoNBDFitter()
    reference.params_ = pd.Series(PARAMS)
    for x, tx, big_t in ((0, 0.0, 39.0), (2, 20.0, 39.0), (10, 35.0, 39.0), (1, 5.0, 12.0)):
        for t in (1.0, 10.0, 39.0, 78.0):
            for n in (0, 1, 2, 5):
                expected = reference.conditional_probability_of_n_purchases_up_to_time(
                    n, t, x, tx, big_t
                )
                got = float(model.conditional_probability_of_purchases(t, n, x, tx, big_t))
                # lifetimes' closed form cancels below ~1e-6; compare absolutely there.
                assert got == pytest.approx(float(expected), rel=1e-8, abs=1e-12)


@pytest.mark.parametrize(
    "params", [PARAMS, {"r": 5.0, "alpha": 1.0, "s": 0.05, "beta": 500.0},
               {"r": 0.05, "alpha": 500.0, "s": 5.0, "beta": 0.1}],
)  # fmt: skip
def test_probabilities_sum_to_one_with_the_expected_mean(params: dict[str, float]) -> None:
    model = ParetoNBDModel.from_params(**params)
    n = np.arange(0, 20_000)
    for t in (0.5, 39.0, 200.0):
        p = model.probability_of_purchases(t, n)
        assert np.all(p >= 0) and p.sum() == pytest.approx(1.0, abs=1e-9)
        assert (n * p).sum() == pytest.approx(float(model.expected_purchases(t)), rel=1e-7)
    assert model.probability_of_purchases(np.array([[1.0], [39.0]]), np.arange(3)).shape == (2, 3)
    assert float(model.probability_of_purchases(0.0, 0)) == 1.0
    with pytest.raises(DataError):
        model.probability_of_purchases(10.0, -1)


def test_no_purchase_and_the_wait_against_simulated_continuations() -> None:
    model = ParetoNBDModel.from_params(**PARAMS)
    rng = np.random.default_rng(21)
    x, tx, big_t, t = 4.0, 25.0, 39.0, 13.0
    n = 400_000
    alive = rng.random(n) < float(model.probability_alive(x, tx, big_t))
    lam = rng.gamma(PARAMS["r"] + x, 1 / (PARAMS["alpha"] + big_t), n)
    mu = rng.gamma(PARAMS["s"], 1 / (PARAMS["beta"] + big_t), n)
    wait = rng.exponential(1 / lam)
    death = rng.exponential(1 / mu)
    bought = alive & (wait <= np.minimum(t, death))
    p = float(model.probability_of_no_purchase(t, x, tx, big_t))
    assert abs((~bought).mean() - p) < 4 * np.sqrt(p * (1 - p) / n)
    # Two or more purchases in the window, counted by simulating the Poisson clock.
    second = wait + rng.exponential(1 / lam)
    two = alive & (second <= np.minimum(t, death))
    p2 = 1 - p - float(model.conditional_probability_of_purchases(t, 1, x, tx, big_t))
    assert abs(two.mean() - p2) < 4 * np.sqrt(p2 * (1 - p2) / n)
    median = float(model.time_to_next_purchase(x, big_t))
    assert abs(np.median(wait) - median) / median < 0.01
    mean = float(model.time_to_next_purchase(x, big_t, quantile=None))
    assert abs(wait.mean() - mean) / mean < 0.03


def test_the_calibration_histogram_of_simulated_customers() -> None:
    model = ParetoNBDModel.from_params(**PARAMS)
    big_t = np.random.default_rng(3).choice([27.0, 32.0, 39.0], size=20_000)
    sample = model.sample(big_t, seed=12)
    hist = calibration_histogram(model, sample.frequency, sample.T, max_count=7)
    assert hist.expected.sum() == pytest.approx(20_000)
    share = hist.expected / 20_000
    sigma = np.sqrt(20_000 * share * (1 - share))
    assert np.all(np.abs(hist.actual - hist.expected) <= 4 * sigma + 1)


def test_the_calibration_histogram_on_cdnow(cdnow_summary: CustomerSummary) -> None:
    s = cdnow_summary
    model = ParetoNBDModel.fit(s.frequency, s.recency, s.T)
    hist = calibration_histogram(model, s.frequency, s.T, max_count=7)
    assert abs(hist.expected[0] - hist.actual[0]) / hist.actual[0] < 0.02
    # Pareto/NBD under-predicts the one-timers a little on CDNOW (as BG/NBD does, FHL 2005).
    assert np.all(np.abs(hist.expected - hist.actual) / len(s.T) < 0.02)


def test_the_tracking_curve_against_simulated_purchase_times() -> None:
    model = ParetoNBDModel.from_params(**PARAMS)
    rng = np.random.default_rng(9)
    n = 20_000
    births = np.floor(rng.uniform(0, 12, n) * 7) / 7
    ends = np.arange(1.0, 79.0)
    sample = model.sample(np.full(n, 78.0), seed=rng)
    # Purchase times: a Poisson process of rate lambda until the lifetime (capped at 400).
    gaps = rng.exponential(1.0, (n, 400)) / sample.purchase_rate[:, None]
    times = np.cumsum(gaps, axis=1)
    made = times <= sample.lifetime[:, None]
    absolute = births[:, None] + times
    simulated = np.array([np.count_nonzero(made & (absolute <= e)) for e in ends])
    curve = tracking_curve(model, births, ends)
    assert np.all(np.abs(simulated[10:] - curve.cumulative[10:]) / curve.cumulative[10:] < 0.05)
