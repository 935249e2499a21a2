"""MBG/NBD (issue 12, section 3): lifetimes' fit and predictions on CDNOW, the relations to
BG/NBD, and simulation with known parameters."""

from __future__ import annotations

import warnings
from types import ModuleType

import numpy as np
import pytest
from nextbest_clv.core.models.mbgnbd import ModifiedBetaGeoModel
from nextbest_clv.core.models.summary import CustomerSummary

PARAMS = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}


def test_the_cdnow_fit_and_predictions_match_lifetimes(
    lifetimes: ModuleType, cdnow_summary: CustomerSummary
) -> None:
    import pandas as pd

    s = cdnow_summary
    model = ModifiedBetaGeoModel.fit(s.frequency, s.recency, s.T)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = lifetimes.ModifiedBetaGeoFitter().fit(s.frequency, s.recency, s.T)
    for name, value in reference.params_.items():
        assert model.params[name] == pytest.approx(value, rel=1e-4)
    reference.params_ = pd.Series(model.params)
    x, tx, big_t = s.frequency, s.recency, s.T
    np.testing.assert_allclose(
        model.probability_alive(x, tx, big_t),
        reference.conditional_probability_alive(x, tx, big_t),
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        model.conditional_expected_purchases(10.0, x, tx, big_t),
        reference.conditional_expected_number_of_purchases_up_to_time(10.0, x, tx, big_t),
        rtol=1e-8,
    )
    for t in (1.0, 39.0):
        assert float(model.expected_purchases(t)) == pytest.approx(
            float(reference.expected_number_of_purchases_up_to_time(t)), rel=1e-8
        )
        for n in (0, 1, 5):
            assert float(model.probability_of_purchases(t, n)) == pytest.approx(
                float(reference.probability_of_n_purchases_up_to_time(t, n)), rel=1e-8
            )


def test_count_probabilities_are_a_distribution_with_the_right_means() -> None:
    model = ModifiedBetaGeoModel.from_params(**PARAMS)
    n = np.arange(0, 3000)
    p = model.probability_of_purchases(39.0, n)
    assert p.sum() == pytest.approx(1.0, abs=1e-10)
    assert (n * p).sum() == pytest.approx(float(model.expected_purchases(39.0)), rel=1e-8)
    q = model.conditional_probability_of_purchases(20.0, n, 3, 20.0, 39.0)
    assert q.sum() == pytest.approx(1.0, abs=1e-10)
    assert (n * q).sum() == pytest.approx(
        float(model.conditional_expected_purchases(20.0, 3, 20.0, 39.0)), rel=1e-8
    )
    # One-time buyers are not certainly alive (unlike BG/NBD).
    assert float(model.probability_alive(0, 0, 39.0)) < 1


def test_simulated_customers_give_back_their_parameters() -> None:
    truth = ModifiedBetaGeoModel.from_params(**PARAMS)
    sample = truth.sample(np.random.default_rng(2).uniform(20, 60, 30_000), seed=6)
    fit = ModifiedBetaGeoModel.fit(sample.frequency, sample.recency, sample.T)
    for name, value in PARAMS.items():
        assert abs(fit.params[name] - value) < 4 * fit.standard_errors[name], name


def test_the_analytic_gradient_equals_finite_differences() -> None:
    from nextbest_clv.core.models.mbgnbd import _log_likelihood, _log_likelihood_gradient

    rng = np.random.default_rng(0)
    x = rng.integers(0, 10, 200).astype(float)
    big_t = rng.uniform(0.5, 80, 200)
    tx = np.where(x > 0, rng.uniform(0, 1, 200) * big_t, 0.0)
    for params in ((0.5, 6.0, 0.9, 1.6), (2.0, 0.3, 3.0, 0.2), (0.05, 40.0, 0.1, 9.0)):
        p = np.array(params)
        grad = _log_likelihood_gradient(params, x, tx, big_t).sum(axis=1)
        for i in range(4):
            h = np.zeros(4)
            h[i] = 1e-6 * p[i]
            up = _log_likelihood(tuple(p + h), x, tx, big_t).sum()
            down = _log_likelihood(tuple(p - h), x, tx, big_t).sum()
            assert grad[i] == pytest.approx((up - down) / (2 * h[i]), rel=1e-5, abs=1e-6)
