"""Per-customer parameter-uncertainty intervals (nextbest_clv.core.models.uncertainty)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from nextbest_clv.core.models import (
    BetaGeoModel,
    DataError,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    customer_lifetime_value,
)
from nextbest_clv.core.models.uncertainty import (
    customer_intervals,
    spend_covariance,
    transaction_covariance,
)

TRUE = {
    BetaGeoModel: BetaGeoModel.from_params(0.8, 20.0, 0.5, 3.0),
    ParetoNBDModel: ParetoNBDModel.from_params(0.8, 20.0, 0.6, 15.0),
    ModifiedBetaGeoModel: ModifiedBetaGeoModel.from_params(0.8, 20.0, 0.5, 3.0),
}
TRUE_SPEND = GammaGammaModel.from_params(6.0, 4.0, 15.0)
# Reference customers (x, t_x, T in days) whose true figures the intervals should cover.
PROFILES = (
    np.array([0.0, 2.0, 6.0, 1.0]),
    np.array([0.0, 100.0, 150.0, 20.0]),
    np.array([120.0, 200.0, 160.0, 180.0]),
)
HORIZON = 90.0


def simulate(model: Any, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ages = np.random.default_rng(seed).integers(30, 300, n).astype(float)
    drawn = model.sample(ages, seed=seed + 1)
    return drawn.frequency, drawn.recency, drawn.T


def spends(x: np.ndarray, seed: int) -> np.ndarray:
    """Average spend of each customer's x repeat purchases under TRUE_SPEND (0 when x = 0)."""
    rng = np.random.default_rng(seed)
    nu = rng.gamma(TRUE_SPEND.q, 1.0 / TRUE_SPEND.v, x.size)
    xs = np.maximum(x, 1.0)
    return np.where(x > 0, rng.gamma(TRUE_SPEND.p * xs, 1.0 / (nu * xs)), 0.0)


def fitted(model_type: Any, n: int, seed: int) -> tuple[Any, np.ndarray, tuple[np.ndarray, ...]]:
    x, tx, t = simulate(TRUE[model_type], n, seed)
    model = model_type.fit(x, tx, t)
    return model, transaction_covariance(model, x, tx, t), (x, tx, t)


@pytest.mark.parametrize("model_type", [BetaGeoModel, ParetoNBDModel, ModifiedBetaGeoModel])
def test_intervals_cover_the_true_expected_values_at_about_the_nominal_rate(
    model_type: Any,
) -> None:
    # 24 independent data sets; each profile's interval covers the truth with probability ~0.9
    # if the asymptotic normal is right, so its cover count is ~ Binomial(24, 0.9):
    # P(count <= 16) = 0.004, so >= 17 fails a correct method in well under 1% of runs, and a
    # method that ignored parameter correlations or used the wrong scale would fall far below.
    seeds = range(24)
    truth = TRUE[model_type]
    true_alive = truth.probability_alive(*PROFILES)
    true_purchases = truth.conditional_expected_purchases(HORIZON, *PROFILES)
    covered_alive = np.zeros(PROFILES[0].size)
    covered_purchases = np.zeros(PROFILES[0].size)
    for seed in seeds:
        model, cov, _ = fitted(model_type, 3000, 100 + seed)
        got = customer_intervals(model, cov, *PROFILES, horizon=HORIZON, draws=200, seed=seed)
        covered_alive += (got.probability_alive.low <= true_alive) & (
            true_alive <= got.probability_alive.high
        )
        covered_purchases += (got.expected_purchases.low <= true_purchases) & (
            true_purchases <= got.expected_purchases.high
        )
    # Profile 0 (x = 0) is certainly alive under BG/NBD: P(alive) = 1 for every draw.
    assert np.all(covered_purchases >= 17), covered_purchases
    assert np.all(covered_alive >= 17), covered_alive
    # And not trivially wide: a 50% interval must miss the truth sometimes.
    misses = 0
    for seed in range(8):
        model, cov, _ = fitted(model_type, 3000, 200 + seed)
        got = customer_intervals(
            model, cov, *PROFILES, horizon=HORIZON, level=0.5, draws=200, seed=seed
        )
        low, high = got.expected_purchases
        misses += int(np.sum((true_purchases < low) | (true_purchases > high)))
    assert misses > 0


def test_intervals_contain_the_point_estimate_and_narrow_with_more_customers() -> None:
    widths = []
    for n in (1500, 15000):
        model, cov, (x, tx, t) = fitted(BetaGeoModel, n, 5)
        got = customer_intervals(model, cov, x, tx, t, horizon=HORIZON, seed=1)
        point_alive = model.probability_alive(x, tx, t)
        point = model.conditional_expected_purchases(HORIZON, x, tx, t)
        assert np.all(got.expected_purchases.low <= point + 1e-12)
        assert np.all(point <= got.expected_purchases.high + 1e-12)
        assert np.all(got.probability_alive.low <= point_alive + 1e-12)
        assert np.all(point_alive <= got.probability_alive.high + 1e-12)
        profiles = customer_intervals(model, cov, *PROFILES, horizon=HORIZON, seed=1)
        widths.append(profiles.expected_purchases.high - profiles.expected_purchases.low)
    # Standard errors shrink like 1/sqrt(n): ten times the customers, about a third the width.
    assert np.all(widths[1] < 0.6 * widths[0]), widths


def test_clv_interval_with_spend_draws_contains_the_point_clv_and_is_reproducible() -> None:
    model, cov, (x, tx, t) = fitted(BetaGeoModel, 2000, 9)
    m = spends(x, 9)
    spend = GammaGammaModel.fit(x[x > 0], m[x > 0])
    spend_cov = spend_covariance(spend, x, m)
    kwargs = dict(
        horizon=HORIZON,
        spend_model=spend,
        spend_covariance=spend_cov,
        monetary_value=m,
        time_unit_days=1.0,
        seed=3,
    )
    got = customer_intervals(model, cov, x, tx, t, **kwargs)  # type: ignore[arg-type]
    again = customer_intervals(model, cov, x, tx, t, **kwargs)  # type: ignore[arg-type]
    assert got.clv is not None and again.clv is not None
    np.testing.assert_array_equal(got.clv.low, again.clv.low)
    point = customer_lifetime_value(
        model, x, tx, t, spend.conditional_expected_average_profit(x, m), time_unit_days=1.0
    )
    assert np.all(got.clv.low <= point * (1 + 1e-9)) and np.all(point <= got.clv.high * (1 + 1e-9))
    assert np.mean(got.clv.high - got.clv.low) > 0
    other = customer_intervals(model, cov, x, tx, t, **{**kwargs, "seed": 4})  # type: ignore[arg-type]
    assert other.clv is not None and not np.array_equal(other.clv.low, got.clv.low)


def test_duplicate_rows_and_chunking_do_not_change_the_result() -> None:
    model, cov, (x, tx, t) = fitted(BetaGeoModel, 2000, 11)
    whole = customer_intervals(model, cov, x, tx, t, horizon=30.0, seed=2)
    chunked = customer_intervals(model, cov, x, tx, t, horizon=30.0, seed=2, chunk_size=7)
    np.testing.assert_allclose(whole.expected_purchases.low, chunked.expected_purchases.low)
    twice = customer_intervals(
        model, cov, np.r_[x, x], np.r_[tx, tx], np.r_[t, t], horizon=30.0, seed=2
    )
    np.testing.assert_allclose(twice.probability_alive.high[: x.size], whole.probability_alive.high)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"level": 1.0}, "level must be a number strictly between 0 and 1"),
        ({"level": "0.9"}, "level must be"),
        ({"draws": 5}, "draws must be a whole number >= 10"),
        ({"horizon": 0.0}, "horizon must be a positive number"),
        ({"monetary_value": np.ones(3)}, "needs spend_model, spend_covariance and monetary_value"),
    ],
)
def test_bad_settings_are_named(kwargs: dict[str, Any], message: str) -> None:
    model = TRUE[BetaGeoModel]
    args = {"horizon": 10.0, **kwargs}
    with pytest.raises(DataError, match=message):
        customer_intervals(model, np.eye(4) * 0.01, *PROFILES[:3], **args)


def test_wrong_covariance_shape_is_named() -> None:
    with pytest.raises(DataError, match="covariance must be 4x4"):
        customer_intervals(TRUE[BetaGeoModel], np.eye(3), *PROFILES, horizon=10.0)
