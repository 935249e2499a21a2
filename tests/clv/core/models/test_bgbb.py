"""BG/BB (issue 12, section 3): the published donations fit, lifetimes' predictions, the
closed forms against direct sums, and simulation with known parameters."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from nextbest_clv.core.models.bgbb import BetaGeoBetaBinomModel
from nextbest_clv.core.models.errors import DataError, FitError
from nextbest_clv.core.models.fit_quality import calibration_histogram
from scipy.special import betaln

PUBLISHED = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}  # FHS 2010


@pytest.fixture(scope="module")
def donations(lifetimes: ModuleType) -> tuple[np.ndarray, ...]:
    from lifetimes.datasets import load_donations

    df = load_donations()
    return tuple(
        df[c].to_numpy(dtype=float) for c in ("frequency", "recency", "periods", "weights")
    )


def test_the_donations_fit_reproduces_the_published_parameters(
    donations: tuple[np.ndarray, ...],
) -> None:
    x, tx, n, w = donations
    model = BetaGeoBetaBinomModel.fit(x, tx, n, weights=w)
    for name, value in PUBLISHED.items():
        assert model.params[name] == pytest.approx(value, abs=6e-4)
    assert model.log_likelihood == pytest.approx(-33225.6, abs=0.05)  # FHS 2010, table 2
    assert model.n_customers == 11_104
    assert all(np.isfinite(v) and v > 0 for v in model.standard_errors.values())
    # The expected histogram of the 1996 cohort's six opportunities follows the data.
    counts = np.repeat(x, w.astype(int))
    hist = calibration_histogram(model, counts, np.full(counts.size, 6.0), max_count=6)
    assert np.all(np.abs(hist.expected - hist.actual) / counts.size < 0.01)


def test_predictions_match_lifetimes(
    lifetimes: ModuleType, donations: tuple[np.ndarray, ...]
) -> None:
    import pandas as pd

    x, tx, n, _ = donations
    model = BetaGeoBetaBinomModel.from_params(**PUBLISHED)
    reference = lifetimes.BetaGeoBetaBinomFitter()
    reference.params_ = pd.Series(PUBLISHED)
    np.testing.assert_allclose(
        model.probability_alive(x, tx, n),
        reference.conditional_probability_alive(1, x, tx, n),
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        model.conditional_expected_purchases(5, x, tx, n),
        reference.conditional_expected_number_of_purchases_up_to_time(5, x, tx, n),
        rtol=1e-10,
    )


@pytest.mark.parametrize("gamma", [0.657, 1.0, 1.0 + 3e-6, 4.0])
def test_closed_forms_against_direct_sums(gamma: float) -> None:
    model = BetaGeoBetaBinomModel.from_params(1.204, 0.750, gamma, 2.783)
    a, b, g, d = model.alpha, model.beta, model.gamma, model.delta
    alive = np.exp(betaln(g, d + np.arange(1, 41)) - betaln(g, d))  # P(alive at t), t = 1..40
    np.testing.assert_allclose(
        model.expected_purchases([1, 6, 40]), a / (a + b) * np.cumsum(alive)[[0, 5, 39]], rtol=1e-9
    )
    k = np.arange(0, 11)
    pmf = model.probability_of_purchases(10, k)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-12)
    assert (k * pmf).sum() == pytest.approx(float(model.expected_purchases(10)), rel=1e-10)
    # Conditional expectation: sum over the coming opportunities of E[p (alive then) | data].
    x, tx, n, m = 3.0, 5.0, 6.0, 4
    ll = float(model.log_likelihood_of(x, tx, n))
    direct = sum(
        np.exp(betaln(a + x + 1, b + n - x) - betaln(a, b) + betaln(g, d + t) - betaln(g, d) - ll)
        for t in range(7, 7 + m)
    )
    assert float(model.conditional_expected_purchases(m, x, tx, n)) == pytest.approx(direct, 1e-9)


def test_simulated_customers_give_back_their_parameters() -> None:
    truth = BetaGeoBetaBinomModel.from_params(**PUBLISHED)
    sample = truth.sample(np.full(40_000, 8.0), seed=4)
    hist = calibration_histogram(truth, sample.frequency, sample.n_periods, max_count=8)
    share = hist.expected / 40_000
    assert np.all(np.abs(hist.actual - hist.expected) <= 4 * np.sqrt(40_000 * share) + 1)
    fit = BetaGeoBetaBinomModel.fit(sample.frequency, sample.recency, sample.n_periods)
    for name, value in PUBLISHED.items():  # within four standard errors
        assert abs(fit.params[name] - value) < 4 * fit.standard_errors[name], name


def test_bad_input_is_refused() -> None:
    model = BetaGeoBetaBinomModel.from_params(**PUBLISHED)
    with pytest.raises(DataError, match="recency"):
        model.probability_alive(3, 2, 6)  # three transactions by opportunity 2
    with pytest.raises(DataError):
        model.conditional_expected_purchases(1.5, 1, 1, 6)
    with pytest.raises(FitError, match="nobody"):
        BetaGeoBetaBinomModel.fit([0, 0], [0, 0], [6, 6])
