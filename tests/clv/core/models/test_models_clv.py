"""Discounted CLV over a horizon: lifetimes parity, its defining sum, and input checks."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from nextbest_clv.core.models import clv as clv_module
from nextbest_clv.core.models.bgnbd import BetaGeoModel
from nextbest_clv.core.models.clv import customer_lifetime_value
from nextbest_clv.core.models.errors import DataError
from nextbest_clv.core.models.gammagamma import GammaGammaModel
from nextbest_clv.core.models.paretonbd import ParetoNBDModel
from nextbest_clv.core.models.summary import CustomerSummary

LIFETIMES_WEEKS_PER_MONTH = 4.345


def test_matches_lifetimes_customer_lifetime_value(
    lifetimes: ModuleType,
    cdnow_bgnbd: BetaGeoModel,
    cdnow_gammagamma: GammaGammaModel,
    cdnow_summary: CustomerSummary,
) -> None:
    import pandas as pd

    s = cdnow_summary
    bgf = lifetimes.BetaGeoFitter()
    bgf.params_ = pd.Series(cdnow_bgnbd.params)
    bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time  # set by fit()
    ggf = lifetimes.GammaGammaFitter()
    ggf.params_ = pd.Series(cdnow_gammagamma.params)
    series = {k: pd.Series(v) for k, v in (("x", s.frequency), ("t", s.recency), ("T", s.T))}
    ref = ggf.customer_lifetime_value(
        bgf,
        series["x"],
        series["t"],
        series["T"],
        pd.Series(s.monetary_value),
        time=12,
        discount_rate=0.01,
        freq="W",
    )
    spend = cdnow_gammagamma.conditional_expected_average_profit(s.frequency, s.monetary_value)
    ours = customer_lifetime_value(
        cdnow_bgnbd,
        s.frequency,
        s.recency,
        s.T,
        spend,
        months=12,
        discount_rate_monthly=0.01,
        time_unit_days=7,
        days_per_month=7 * LIFETIMES_WEEKS_PER_MONTH,
    )
    np.testing.assert_allclose(ours, np.asarray(ref, dtype=float), rtol=1e-6)


def test_is_the_discounted_sum_of_monthly_purchases(
    cdnow_bgnbd: BetaGeoModel, cdnow_summary: CustomerSummary
) -> None:
    s = cdnow_summary
    x, tx, big_t = s.frequency[:50], s.recency[:50], s.T[:50]
    month = clv_module.DAYS_PER_MONTH / 7
    expected = np.zeros(50)
    previous = np.zeros(50)
    for m in range(1, 25):
        cumulative = cdnow_bgnbd.conditional_expected_purchases(m * month, x, tx, big_t)
        expected += 20.0 * (cumulative - previous) / 1.02**m
        previous = cumulative
    ours = customer_lifetime_value(
        cdnow_bgnbd, x, tx, big_t, 20.0, months=24, discount_rate_monthly=0.02
    )
    np.testing.assert_allclose(ours, expected, rtol=1e-12)
    undiscounted = customer_lifetime_value(
        cdnow_bgnbd, x, tx, big_t, 20.0, months=24, discount_rate_monthly=0.0
    )
    np.testing.assert_allclose(undiscounted, 20.0 * previous, rtol=1e-12)
    assert np.all(undiscounted >= ours)


def test_time_unit_days_gives_the_same_value(cdnow_summary: CustomerSummary) -> None:
    s = cdnow_summary
    weeks = BetaGeoModel.from_params(0.243, 4.414, 0.793, 2.426)
    days = BetaGeoModel.from_params(0.243, 4.414 * 7, 0.793, 2.426)  # alpha is a time scale
    in_weeks = customer_lifetime_value(weeks, s.frequency, s.recency, s.T, 30.0)
    in_days = customer_lifetime_value(
        days, s.frequency, s.recency * 7, s.T * 7, 30.0, time_unit_days=1
    )
    np.testing.assert_allclose(in_days, in_weeks, rtol=1e-9)


def test_works_with_pareto_nbd(cdnow_summary: CustomerSummary) -> None:
    s = cdnow_summary
    model = ParetoNBDModel.from_params(0.553, 10.578, 0.606, 11.669)
    ours = customer_lifetime_value(model, s.frequency, s.recency, s.T, 25.0, months=6)
    month = clv_module.DAYS_PER_MONTH / 7
    previous = np.zeros(len(s))
    expected = np.zeros(len(s))
    for m in range(1, 7):
        cumulative = model.conditional_expected_purchases(m * month, s.frequency, s.recency, s.T)
        expected += 25.0 * (cumulative - previous) / 1.01**m
        previous = cumulative
    np.testing.assert_allclose(ours, expected, rtol=1e-10)


def test_blocks_of_customers_give_the_same_result(
    monkeypatch: pytest.MonkeyPatch, cdnow_bgnbd: BetaGeoModel, cdnow_summary: CustomerSummary
) -> None:
    s = cdnow_summary
    whole = customer_lifetime_value(cdnow_bgnbd, s.frequency, s.recency, s.T, s.monetary_value)
    monkeypatch.setattr(clv_module, "_BLOCK", 100)
    blocked = customer_lifetime_value(cdnow_bgnbd, s.frequency, s.recency, s.T, s.monetary_value)
    np.testing.assert_allclose(blocked, whole, rtol=1e-14)


class _ScalarOnlyModel:
    """A transaction model that ignores the shape of t (does not broadcast)."""

    def conditional_expected_purchases(
        self, t: object, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        return np.ones_like(np.asarray(frequency, dtype=float))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"months": 0}, "months"),
        ({"months": 2.5}, "months"),
        ({"discount_rate_monthly": -1.0}, "discount_rate_monthly"),
        ({"time_unit_days": 0.0}, "time_unit_days"),
        ({"days_per_month": float("nan")}, "days_per_month"),
    ],
)
def test_invalid_settings_raise(kwargs: dict[str, float], message: str) -> None:
    model = BetaGeoModel.from_params(0.243, 4.414, 0.793, 2.426)
    with pytest.raises(DataError, match=message):
        customer_lifetime_value(model, [1, 0], [2, 0], [5, 5], 10.0, **kwargs)


def test_invalid_arrays_and_non_broadcasting_model_raise() -> None:
    model = BetaGeoModel.from_params(0.243, 4.414, 0.793, 2.426)
    with pytest.raises(DataError, match="monetary"):
        customer_lifetime_value(model, [1, 0], [2, 0], [5, 5], [10.0, np.nan])
    with pytest.raises(DataError, match="monetary"):
        customer_lifetime_value(model, [1, 0], [2, 0], [5, 5], [10.0, 1.0, 2.0])
    with pytest.raises(DataError, match="recency"):
        customer_lifetime_value(model, [1, 0], [6, 0], [5, 5], 10.0)
    with pytest.raises(DataError, match="must broadcast"):
        customer_lifetime_value(_ScalarOnlyModel(), [1, 0], [2, 0], [5, 5], 10.0)
