"""Transaction log -> per-customer (x, t_x, T, average repeat value), with a holdout split."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import numpy as np
import pytest
from nextbest_clv.core.models.errors import DataError
from nextbest_clv.core.models.summary import CustomerSummary, summarize_transactions

# A tiny hand-made log. Calibration ends 2020-01-20, observation 2020-02-10 (21 days later).
IDS = ["a", "a", "a", "a", "a", "b", "c", "a"]
DATES = [
    "2020-01-01",  # a: first day, two records on it (values 10 + 5 merge into one)
    "2020-01-01",
    "2020-01-08",  # a: repeat 1, 20
    "2020-01-15",  # a: repeat 2, 30
    "2020-02-01",  # a: holdout, 40
    "2020-01-10",  # b: one purchase only
    "2020-01-25",  # c: first purchase in the holdout -> not a calibration customer
    "2020-03-01",  # a: after the observation end -> ignored
]
VALUES = [10.0, 5.0, 20.0, 30.0, 40.0, 7.0, 9.0, 1000.0]


def _split(unit: str = "days") -> CustomerSummary:
    return summarize_transactions(
        IDS,
        np.array(DATES, dtype="datetime64[D]"),
        VALUES,
        calibration_end="2020-01-20",
        observation_end="2020-02-10",
        time_unit=unit,
    )


def test_hand_made_split_in_days() -> None:
    s = _split()
    assert s.customer_ids.tolist() == ["a", "b"]
    np.testing.assert_array_equal(s.frequency, [2, 0])
    np.testing.assert_array_equal(s.recency, [14, 0])
    np.testing.assert_array_equal(s.T, [19, 10])
    np.testing.assert_array_equal(s.monetary_value, [25.0, 0.0])  # (20 + 30) / 2; first excluded
    assert s.frequency_holdout is not None and s.monetary_value_holdout is not None
    np.testing.assert_array_equal(s.frequency_holdout, [1, 0])
    np.testing.assert_array_equal(s.monetary_value_holdout, [40.0, 0.0])
    assert s.duration_holdout == 21
    assert s.time_unit_days == 1.0
    assert len(s) == 2


def test_hand_made_split_in_weeks() -> None:
    s = _split("weeks")
    np.testing.assert_allclose(s.recency, [2.0, 0.0])
    np.testing.assert_allclose(s.T, [19 / 7, 10 / 7])
    assert s.duration_holdout == pytest.approx(3.0)
    assert s.time_unit_days == 7.0


def test_without_split_uses_everything_up_to_the_last_day() -> None:
    s = summarize_transactions(IDS, DATES, VALUES, time_unit="days")
    assert s.customer_ids.tolist() == ["a", "b", "c"]
    # a: days 1, 8, 15, Feb 1, Mar 1 -> 4 repeats; the end is the last day (2020-03-01).
    np.testing.assert_array_equal(s.frequency, [4, 0, 0])
    np.testing.assert_array_equal(s.recency, [60, 0, 0])
    np.testing.assert_array_equal(s.T, [60, 51, 36])
    assert s.monetary_value[0] == pytest.approx((20 + 30 + 40 + 1000) / 4)
    assert s.frequency_holdout is None and s.duration_holdout is None


def test_same_day_datetimes_merge_and_values_sum() -> None:
    stamps = np.array(
        ["2021-05-01T08:00", "2021-05-01T23:59", "2021-05-03T00:01", "2021-05-03T12:00"],
        dtype="datetime64[m]",
    )
    s = summarize_transactions([1, 1, 1, 1], stamps, [1.0, 2.0, 3.0, 4.0], time_unit="days")
    np.testing.assert_array_equal(s.frequency, [1])
    np.testing.assert_array_equal(s.recency, [2])
    np.testing.assert_array_equal(s.monetary_value, [7.0])


def test_python_dates_unsorted_input_and_no_values() -> None:
    dates = [dt.date(2022, 1, 9), dt.date(2022, 1, 2), dt.date(2022, 1, 2)]
    s = summarize_transactions([5, 5, 9], dates, time_unit=7)
    assert s.customer_ids.tolist() == [5, 9]
    np.testing.assert_array_equal(s.frequency, [1, 0])
    np.testing.assert_allclose(s.recency, [1.0, 0.0])
    np.testing.assert_allclose(s.T, [1.0, 1.0])
    np.testing.assert_array_equal(s.monetary_value, [0.0, 0.0])


def test_matches_a_naive_per_customer_computation_on_random_data() -> None:
    rng = np.random.default_rng(7)
    n = 3000
    ids = rng.integers(0, 300, n)
    days = np.datetime64("2020-01-01") + rng.integers(0, 200, n).astype("timedelta64[D]")
    values = rng.gamma(2.0, 10.0, n).round(2)
    cal_end, obs_end = np.datetime64("2020-05-01"), np.datetime64("2020-06-30")
    s = summarize_transactions(
        ids, days, values, calibration_end=cal_end, observation_end=obs_end, time_unit="days"
    )

    per_day: dict[int, dict[np.datetime64, float]] = defaultdict(lambda: defaultdict(float))
    for i, d, v in zip(ids.tolist(), days, values.tolist(), strict=True):
        if d <= obs_end:
            per_day[i][d] += v
    expected_ids = sorted(i for i, by_day in per_day.items() if min(by_day) <= cal_end)
    assert s.customer_ids.tolist() == expected_ids
    assert s.frequency_holdout is not None and s.monetary_value_holdout is not None
    for k, i in enumerate(expected_ids):
        cal = sorted((d, v) for d, v in per_day[i].items() if d <= cal_end)
        hold = [v for d, v in per_day[i].items() if d > cal_end]
        first, last = cal[0][0], cal[-1][0]
        assert s.frequency[k] == len(cal) - 1
        assert s.recency[k] == (last - first).astype(int)
        assert s.T[k] == (cal_end - first).astype(int)
        repeat = [v for _, v in cal[1:]]
        assert s.monetary_value[k] == pytest.approx(np.mean(repeat) if repeat else 0.0)
        assert s.frequency_holdout[k] == len(hold)
        assert s.monetary_value_holdout[k] == pytest.approx(np.mean(hold) if hold else 0.0)


def test_integer_and_string_ids_give_the_same_summary() -> None:
    rng = np.random.default_rng(8)
    ids = rng.integers(-50, 10_000, 20_000)
    days = np.datetime64("2019-03-01") + rng.integers(0, 400, ids.size).astype("timedelta64[D]")
    values = rng.gamma(2.0, 10.0, ids.size)
    kwargs = {"calibration_end": "2019-12-31", "observation_end": "2020-03-31"}
    by_int = summarize_transactions(ids, days, values, **kwargs)
    by_str = summarize_transactions(ids.astype(str), days, values, **kwargs)
    order = np.argsort(by_str.customer_ids.astype(int))
    np.testing.assert_array_equal(by_str.customer_ids.astype(int)[order], by_int.customer_ids)
    for field in ("frequency", "recency", "T", "monetary_value", "frequency_holdout"):
        np.testing.assert_allclose(
            getattr(by_str, field)[order], getattr(by_int, field), rtol=1e-12, err_msg=field
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"customer_ids": [], "dates": []}, "no transactions"),
        ({"customer_ids": [1, 2], "dates": ["2020-01-01"]}, "same length"),
        ({"customer_ids": [1], "dates": [np.datetime64("NaT")]}, "missing values"),
        ({"customer_ids": [1], "dates": ["not a date"]}, "dates must be dates"),
        ({"customer_ids": [1], "dates": ["2020-01-01"], "values": [np.nan]}, "NaN"),
        ({"customer_ids": [1], "dates": ["2020-01-01"], "values": [1.0, 2.0]}, "shape"),
        (
            {
                "customer_ids": [1],
                "dates": ["2020-01-01"],
                "calibration_end": "2020-02-01",
                "observation_end": "2020-01-15",
            },
            "after observation_end",
        ),
        ({"customer_ids": [1], "dates": ["2020-01-01"], "time_unit": "months"}, "time_unit"),
        (
            {"customer_ids": [1], "dates": ["2020-01-05"], "observation_end": "2020-01-01"},
            "no transactions on or before",
        ),
    ],
)
def test_invalid_input_raises_data_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DataError, match=message):
        summarize_transactions(**kwargs)


def test_cdnow_sample_summary_matches_the_literature(cdnow_summary: CustomerSummary) -> None:
    s = cdnow_summary
    assert len(s) == 2357
    assert int((s.frequency > 0).sum()) == 946
    assert s.T.max() == pytest.approx(38.857, abs=1e-3)
    assert s.customer_ids[0] == 1
    assert (s.frequency[0], round(s.recency[0], 2), round(s.T[0], 2)) == (2, 30.43, 38.86)
    assert s.frequency_holdout is not None
    assert s.frequency_holdout.sum() == 1882  # actual repeat purchase-days in weeks 40-78
    assert s.duration_holdout == pytest.approx(39.0)


def test_cdnow_summary_equals_lifetimes(
    cdnow_transactions: tuple[np.ndarray, np.ndarray, np.ndarray],
    cdnow_summary: CustomerSummary,
    lifetimes: object,
) -> None:
    import pandas as pd
    from lifetimes.utils import calibration_and_holdout_data

    ids, dates, values = cdnow_transactions
    frame = pd.DataFrame({"id": ids, "date": pd.to_datetime(dates), "value": values})
    # A monetary column is required: without it lifetimes 0.11.3 fails under pandas 3.
    ref = calibration_and_holdout_data(
        frame,
        "id",
        "date",
        calibration_period_end="1997-09-30",
        observation_period_end="1998-06-30",
        freq="D",
        freq_multiplier=7,
        monetary_value_col="value",
    ).sort_index()
    s = cdnow_summary
    np.testing.assert_array_equal(ref.index.to_numpy(), s.customer_ids)
    np.testing.assert_allclose(ref["frequency_cal"], s.frequency, rtol=0, atol=0)
    np.testing.assert_allclose(ref["recency_cal"], s.recency, rtol=1e-12)
    np.testing.assert_allclose(ref["T_cal"], s.T, rtol=1e-12)
    np.testing.assert_allclose(ref["monetary_value_cal"], s.monetary_value, rtol=1e-12)
    np.testing.assert_allclose(ref["frequency_holdout"], s.frequency_holdout, rtol=0, atol=0)
