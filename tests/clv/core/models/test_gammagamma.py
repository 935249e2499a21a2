"""Gamma-Gamma spend model: published CDNOW figures, parity with lifetimes, errors."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from nextbest_clv.core.models.errors import DataError, FitError
from nextbest_clv.core.models.gammagamma import GammaGammaModel
from nextbest_clv.core.models.summary import CustomerSummary
from scipy.optimize import approx_fprime


def _sig4(value: float) -> float:
    return float(f"{value:.4g}")


@pytest.fixture(scope="module")
def repeaters(cdnow_summary: CustomerSummary) -> tuple[np.ndarray, np.ndarray]:
    s = cdnow_summary
    keep = s.frequency > 0
    return s.frequency[keep], s.monetary_value[keep]


@pytest.fixture(scope="module")
def lifetimes_ggf(lifetimes: ModuleType, repeaters: tuple[np.ndarray, np.ndarray]) -> Any:
    return lifetimes.GammaGammaFitter().fit(*repeaters)


def test_fit_reproduces_published_estimates(cdnow_gammagamma: GammaGammaModel) -> None:
    # Fader & Hardie (2013): p = 6.25, q = 3.74, v (gamma) = 15.44 on the 946 repeaters.
    g = cdnow_gammagamma
    assert (round(g.p, 2), round(g.q, 2), round(g.v, 2)) == (6.25, 3.74, 15.44)
    assert round(g.log_likelihood, 4) == -4055.9177
    assert g.n_customers == 946


def test_fit_matches_lifetimes_to_four_significant_figures(
    cdnow_gammagamma: GammaGammaModel, lifetimes_ggf: Any
) -> None:
    for name, value in cdnow_gammagamma.params.items():
        assert _sig4(value) == _sig4(lifetimes_ggf.params_[name]), name


def test_zero_frequency_rows_are_ignored(
    cdnow_gammagamma: GammaGammaModel, repeaters: tuple[np.ndarray, np.ndarray]
) -> None:
    only = GammaGammaModel.fit(*repeaters)
    for name, value in only.params.items():
        assert value == pytest.approx(cdnow_gammagamma.params[name], rel=1e-10)


def test_expected_spend_matches_lifetimes(
    lifetimes: ModuleType, cdnow_gammagamma: GammaGammaModel, cdnow_summary: CustomerSummary
) -> None:
    import pandas as pd

    ref_model = lifetimes.GammaGammaFitter()
    ref_model.params_ = pd.Series(cdnow_gammagamma.params)
    s = cdnow_summary
    ours = cdnow_gammagamma.conditional_expected_average_profit(s.frequency, s.monetary_value)
    ref = ref_model.conditional_expected_average_profit(s.frequency, s.monetary_value)
    np.testing.assert_allclose(ours, np.asarray(ref, dtype=float), rtol=1e-6)
    # No repeat purchase: the population mean p v / (q - 1).
    zero = s.frequency == 0
    np.testing.assert_allclose(ours[zero], cdnow_gammagamma.mean_transaction_value, rtol=1e-12)


def test_log_likelihood_of_and_gradient(
    cdnow_gammagamma: GammaGammaModel, repeaters: tuple[np.ndarray, np.ndarray]
) -> None:
    per_customer = cdnow_gammagamma.log_likelihood_of(*repeaters)
    assert per_customer.sum() == pytest.approx(cdnow_gammagamma.log_likelihood, rel=1e-12)

    def total(theta: np.ndarray) -> float:
        return float(GammaGammaModel.from_params(*theta).log_likelihood_of(*repeaters).sum())

    at_optimum = np.array([cdnow_gammagamma.p, cdnow_gammagamma.q, cdnow_gammagamma.v])
    np.testing.assert_allclose(approx_fprime(at_optimum, total, 1e-6), 0.0, atol=2e-2)


def test_penalized_fit_matches_lifetimes(
    lifetimes: ModuleType, repeaters: tuple[np.ndarray, np.ndarray]
) -> None:
    ref = lifetimes.GammaGammaFitter(penalizer_coef=0.01).fit(*repeaters)
    ours = GammaGammaModel.fit(*repeaters, penalizer=0.01)
    for name, value in ours.params.items():
        assert _sig4(value) == _sig4(ref.params_[name]), name


def test_recovers_parameters_from_simulated_spend() -> None:
    rng = np.random.default_rng(21)
    p, q, v = 6.0, 4.0, 15.0
    n = 20_000
    x = rng.integers(1, 10, n).astype(float)
    nu = rng.gamma(q, 1.0 / v, n)
    # The mean of x Gamma(p, nu) values is Gamma(p x, nu x).
    m = rng.gamma(p * x, 1.0 / (nu * x))
    fit = GammaGammaModel.fit(x, m)
    for name, truth in {"p": p, "q": q, "v": v}.items():
        assert abs(fit.params[name] - truth) < 4 * fit.standard_errors[name], name


@pytest.mark.parametrize(
    ("frequency", "monetary", "message"),
    [
        ([], [], "no customers"),
        ([0, 0], [0.0, 0.0], "repeat customers"),
        ([1, 2], [np.nan, 3.0], "NaN"),
        ([1, 2], [-5.0, 3.0], "monetary_value <= 0"),
        ([1, 2.5], [5.0, 3.0], "whole numbers"),
    ],
)
def test_degenerate_or_invalid_data_raises_fit_error(
    frequency: list[float], monetary: list[float], message: str
) -> None:
    with pytest.raises(FitError, match=message):
        GammaGammaModel.fit(frequency, monetary)


def test_infinite_expectation_is_an_error_not_a_number() -> None:
    model = GammaGammaModel.from_params(2.0, 0.8, 10.0)
    assert math.isinf(model.mean_transaction_value)
    with pytest.raises(DataError, match="infinite"):
        model.conditional_expected_average_profit([0, 3], [0.0, 20.0])
    assert model.conditional_expected_average_profit(3, 20.0) == pytest.approx(
        2.0 * (10.0 + 60.0) / (6.0 + 0.8 - 1)
    )
    with pytest.raises(DataError, match="parameters"):
        GammaGammaModel.from_params(0.0, 1.0, 1.0)
