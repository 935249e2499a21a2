"""The CLV history's numbers on small hand-checked data (nextbest_clv.core.history)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from nextbest_clv.core.history import (
    decile_groups,
    migration_matrix,
    prediction_error,
    quantiles,
    score_histogram,
    value_histogram,
)


def test_migration_matrix_counts_movers_leavers_and_joiners() -> None:
    # segments 0..2; a stays 0, b 0->1, c 1->1, d 2->0, e leaves (was 2), f joins (in 1)
    matrix, left, joined = migration_matrix(
        ["a", "b", "c", "d", "e"], [0, 0, 1, 2, 2], ["f", "d", "c", "b", "a"], [1, 0, 1, 1, 0], 3
    )
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert left.tolist() == [0, 0, 1]
    assert joined.tolist() == [0, 1, 0]


def test_prediction_error_overall_by_decile_and_segment() -> None:
    out = prediction_error([100.0, 40.0, 0.0], [70.0, 40.0, 0.0], [0, 1, 1], ("x", "y"))
    assert (out["customers"], out["predicted"], out["actual"]) == (3, 140.0, 110.0)
    assert out["mae"] == pytest.approx(10.0)
    assert out["rmse"] == pytest.approx(math.sqrt(300.0))
    assert out["bias"] == pytest.approx(10.0)
    assert out["relativeError"] == pytest.approx(30.0 / 110.0)
    assert [(d["decile"], d["predicted"], d["actual"]) for d in out["deciles"]] == [
        (1, 100.0, 70.0),
        (2, 40.0, 40.0),
        (3, 0.0, 0.0),
    ]
    assert out["segments"]["x"]["bias"] == pytest.approx(30.0)
    assert out["segments"]["y"] == {
        "customers": 2,
        "predicted": 40.0,
        "actual": 40.0,
        "mae": 0.0,
        "rmse": 0.0,
        "bias": 0.0,
        "relativeError": 0.0,
    }


def test_prediction_error_without_actuals_has_no_relative_error() -> None:
    out = prediction_error([5.0], [0.0], [0], ("x",))
    assert out["relativeError"] is None and out["bias"] == 5.0


def test_deciles_highest_first_in_ten_nearly_equal_groups() -> None:
    groups = decile_groups(np.arange(25, dtype=float))
    assert len(groups) == 10
    assert [g.size for g in groups] == [3] * 5 + [2] * 5
    assert groups[0].tolist() == [24, 23, 22]


def test_quantiles_and_histograms() -> None:
    q = quantiles([0.0, 10.0, 20.0, 30.0, 40.0, float("nan")])
    assert (q["p0"], q["p25"], q["p50"], q["p100"]) == (0.0, 10.0, 20.0, 40.0)
    assert quantiles([])["p50"] is None
    hist = score_histogram([0, 9, 10, 99, 100])
    assert [b["count"] for b in hist] == [2, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    values = [float(v) for v in range(100)] + [1e6]
    bins = value_histogram(values, bins=4)
    high = float(np.percentile(values, 99))
    assert bins[0]["from"] == 0.0 and bins[3]["to"] == pytest.approx(high)
    assert bins[-1] == {"from": high, "to": None, "count": 1}
    assert sum(b["count"] for b in bins) == 101
    assert value_histogram([]) == []
