"""RFM CLV record math: hand-computed numbers, exactness and single-versus-batch identity."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from nextbest_clv.core.rfm import (
    DAYS_PER_MONTH,
    SEGMENT_ORDER,
    DistributionSnapshot,
    RfmInputError,
    RfmRecord,
    RfmSettings,
    Segment,
    SnapshotMismatchError,
    build_snapshot,
    midrank_pct,
    score_batch,
    score_one,
)
from pydantic import ValidationError

DAY = 86_400.0
AS_OF = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def days_ago(days: float, as_of: float = AS_OF) -> float:
    return as_of - days * DAY


def one(batch_and_snapshot: tuple, i: int) -> RfmRecord:
    return batch_and_snapshot[0].record(i)


# --------------------------------------------------------------------------- percentiles


def test_midrank_pct_with_ties_is_hand_computed() -> None:
    xs = [1, 2, 2, 3]
    # pct(x) = (count(< x) + count(<= x)) / 8
    got = midrank_pct([0, 1, 2, 3, 4, 2.5], xs)
    assert got.tolist() == [0.0, 1 / 8, 4 / 8, 7 / 8, 1.0, 6 / 8]


def test_midrank_pct_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    xs = rng.integers(0, 20, 300).astype(float)
    q = rng.integers(-2, 23, 50).astype(float)
    want = [(np.sum(xs < x) + np.sum(xs <= x)) / (2 * len(xs)) for x in q]
    assert midrank_pct(q, xs).tolist() == want


def test_midrank_pct_rejects_empty_population() -> None:
    with pytest.raises(RfmInputError, match="at least one value"):
        midrank_pct([1.0], [])


# --------------------------------------------------------------------------- hand-computed


def test_one_customer_scores_50_and_is_high() -> None:
    result = score_batch([days_ago(2)], [days_ago(40)], [3], [99.0], AS_OF)
    record = one(result, 0)
    # Every percentile of the only customer is (0 + 1) / 2 = 0.5, so 100 * 0.5 = 50;
    # P75 = P25 = 50 and 50 >= 50.
    assert record == RfmRecord(
        recency_days=2,
        frequency=3,
        monetary=99.0,
        clv_score=50,
        segment=Segment.HIGH,
        churn_probability=1 / (1 + math.exp(-0.08 * (2 - 30))),
        # 99 / (40 / 30.4375) * 24 = 1807.9875 -> 1807.99
        predicted_revenue=1807.99,
    )
    assert result[0].counts == {"at_risk": 0, "high": 1, "medium": 0, "low": 0}


def test_all_equal_values_score_50_everywhere() -> None:
    n = 5
    batch, snapshot = score_batch([days_ago(3)] * n, [days_ago(3)] * n, [4] * n, [10.0] * n, AS_OF)
    assert batch.clv_score.tolist() == [50] * n
    assert batch.segments().tolist() == ["high"] * n
    assert (snapshot.score_high, snapshot.score_low) == (50.0, 50.0)
    # First interaction 3 days ago: monthsActive = max(1, 3 / 30.4375) = 1.
    assert batch.predicted_revenue.tolist() == [240.0] * n


def test_zero_monetary_ranks_lowest_and_predicts_zero_revenue() -> None:
    money = [0.0, -0.0, 10.0, 20.0]  # -0.0 is zero spend too and ties with 0.0
    batch, _ = score_batch([days_ago(1)] * 4, [days_ago(100)] * 4, [2, 2, 2, 2], money, AS_OF)
    # Recency and frequency tie (0.5 each); monetary pct of 0 is (0 + 2) / 8 = 0.25,
    # of 10 is (2 + 3) / 8 = 0.625, of 20 is (3 + 4) / 8 = 0.875.
    # 100 * (0.35*0.5 + 0.35*0.5 + 0.30*m) = 35 + 30m -> 42.5, 42.5, 53.75, 61.25
    assert batch.clv_score.tolist() == [43, 43, 54, 61]
    assert batch.predicted_revenue.tolist()[:2] == [0.0, 0.0]


def _worked_tenant() -> tuple:
    """The spec's worked example (customer 0) in a four-customer tenant, by hand:

    customer  R   F   M    first      R-pct  F-pct  M-pct  raw    score
    0         5   48  360  6 months   7/8    7/8    7/8    87.5   88
    1         10  2   10   3 months   5/8    3/8    3/8    46.25  46
    2         12  3   20   20 days    3/8    5/8    5/8    53.75  54
    3         20  1   0    21 days    1/8    1/8    1/8    12.5   13
    P75 of [13, 46, 54, 88] = 54 + 0.25 * 34 = 62.5; P25 = 13 + 0.75 * 33 = 37.75.
    """
    hour = 3600.0
    last = [days_ago(5) - hour, days_ago(10) - hour, days_ago(12), days_ago(20) - 23 * hour]
    first = [
        days_ago(6 * DAYS_PER_MONTH),
        days_ago(3 * DAYS_PER_MONTH),
        days_ago(20),
        days_ago(21),
    ]
    return score_batch(last, first, [48, 2, 3, 1], [360.0, 10.0, 20.0, 0.0], AS_OF)


def test_worked_example_from_the_spec() -> None:
    batch, snapshot = _worked_tenant()
    record = batch.record(0)
    assert record.recency_days == 5
    assert record.clv_score == 88
    assert round(record.churn_probability, 3) == 0.119
    assert record.predicted_revenue == 1440.00
    assert record.segment is Segment.HIGH
    assert record.clv_score >= snapshot.score_high


def test_worked_tenant_every_customer_by_hand() -> None:
    batch, snapshot = _worked_tenant()
    assert batch.recency_days.tolist() == [5, 10, 12, 20]
    assert batch.clv_score.tolist() == [88, 46, 54, 13]
    assert (snapshot.score_high, snapshot.score_low) == (62.5, 37.75)
    assert batch.segments().tolist() == ["high", "medium", "medium", "low"]
    # 10 / 3 * 24 = 80; 20 days active -> monthsActive 1 -> 20 * 24; zero spend -> 0.
    assert batch.predicted_revenue.tolist() == [1440.0, 80.0, 480.0, 0.0]
    assert batch.counts == {"at_risk": 0, "high": 1, "medium": 2, "low": 1}
    assert snapshot.n_customers == 4 and snapshot.as_of == AS_OF


def test_recency_is_floor_of_whole_days() -> None:
    us = 1e-6
    last = [days_ago(5) + us, days_ago(5), days_ago(5) - 0.5 * DAY, days_ago(0)]
    batch, _ = score_batch(last, last, [1] * 4, [1.0] * 4, AS_OF)
    assert batch.recency_days.tolist() == [4, 5, 5, 0]


def test_at_risk_overrides_a_high_score() -> None:
    # Customer 0 is best on frequency and monetary but 30 days quiet; customer 1 is 29 days quiet.
    last = [days_ago(30), days_ago(29)]
    batch, _ = score_batch(last, last, [50, 1], [500.0, 1.0], AS_OF)
    assert batch.clv_score[0] > batch.clv_score[1]
    assert batch.segments().tolist() == ["at_risk", "low"]
    assert batch.counts["at_risk"] == 1
    custom = RfmSettings(atRiskDays=31)
    batch, _ = score_batch(last, last, [50, 1], [500.0, 1.0], AS_OF, custom)
    assert batch.segments().tolist() == ["high", "low"]


@pytest.mark.parametrize(
    ("days", "check"),
    [
        (0, lambda p: round(p, 3) == 0.083),
        (5, lambda p: round(p, 3) == 0.119),
        (30, lambda p: p == 0.5),
        (90, lambda p: p > 0.99),
    ],
)
def test_churn_probability_at_spec_points(days: int, check) -> None:
    batch, snapshot = score_batch([days_ago(days)], [days_ago(days)], [1], [0.0], AS_OF)
    assert check(batch.churn_probability[0])
    single = score_one(days_ago(days), days_ago(days), 1, 0.0, AS_OF, snapshot)
    assert single.churn_probability == batch.churn_probability[0]


def test_churn_does_not_overflow_with_steep_settings() -> None:
    settings = RfmSettings(churnSlope=50.0, churnMidpointDays=100.0)
    batch, _ = score_batch([AS_OF], [AS_OF], [1], [0.0], AS_OF, settings)
    assert batch.churn_probability[0] == 0.0


def test_round_half_up_survives_float_error() -> None:
    # Two customers with equal monetary; customer 0 older and less frequent:
    # customer 0: 100*(0.35*1/4 + 0.35*1/4 + 0.30*2/4) = 32.5 exactly, but float gives
    # 32.49999999999999; customer 1: 100*(0.35*3/4 + 0.35*3/4 + 0.30*2/4) = 67.5.
    assert 100.0 * (0.35 * 0.25 + 0.35 * 0.25 + 0.3 * 0.5) < 32.5
    last = [days_ago(3), days_ago(1)]
    batch, snapshot = score_batch(last, last, [1, 2], [5.0, 5.0], AS_OF)
    assert batch.clv_score.tolist() == [33, 68]
    assert score_one(last[0], last[0], 1, 5.0, AS_OF, snapshot).clv_score == 33


def test_predicted_revenue_rounds_half_up_to_cents() -> None:
    # lifespan 1 month, first interaction today: predicted revenue = monetary, in cents.
    settings = RfmSettings(lifespanMonths=1)
    assert 1.005 * 100.0 < 100.5  # 1.005 is stored as 1.00499999999999989...
    money = [1.005, 0.125, 2.5, 7.994999]
    now = [AS_OF] * len(money)
    batch, _ = score_batch(now, now, [1] * len(money), money, AS_OF, settings)
    assert batch.predicted_revenue.tolist() == [1.01, 0.13, 2.5, 7.99]


def test_scores_equal_exact_decimal_formula_on_tied_data() -> None:
    rng = np.random.default_rng(11)
    n = 400
    last = AS_OF - rng.integers(0, 12, n) * DAY - rng.integers(0, 3, n) * 3600.0
    freq = rng.integers(1, 6, n)
    money = rng.integers(0, 5, n) * 12.5
    batch, _ = score_batch(last, last, freq, money, AS_OF)
    rec = batch.recency_days

    def twice_counts(x: np.ndarray) -> list[int]:
        return [int(np.sum(x < v) + np.sum(x <= v)) for v in x]

    cr, cf, cm = twice_counts(-rec), twice_counts(freq), twice_counts(money)
    w = (Fraction("0.35"), Fraction("0.35"), Fraction("0.30"))
    for i in range(n):
        exact = 100 * (w[0] * cr[i] + w[1] * cf[i] + w[2] * cm[i]) / (2 * n)
        assert batch.clv_score[i] == math.floor(exact + Fraction(1, 2)), i


def test_custom_weights_change_the_score() -> None:
    last = [days_ago(1), days_ago(9)]
    settings = RfmSettings(recencyWeight=1.0, frequencyWeight=0.0, monetaryWeight=0.0)
    batch, _ = score_batch(last, last, [1, 9], [1.0, 9.0], AS_OF, settings)
    assert batch.clv_score.tolist() == [75, 25]


# --------------------------------------------------------------------------- single vs batch


def _random_tied_tenant(seed: int, n: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    # Few distinct values everywhere (many ties), times on and next to day boundaries.
    last = AS_OF - rng.integers(0, 60, n) * DAY + rng.choice([0.0, -1e-6, -3600.0, -0.5], n)
    last = np.minimum(last, AS_OF)
    first = last - rng.integers(0, 400, n) * DAY
    freq = rng.integers(1, 8, n)
    money = rng.choice([0.0, 9.99, 10.0, 49.5, 120.0, 1e-3], n)
    return last, first, freq, money


def test_single_equals_batch_on_random_tied_data() -> None:
    last, first, freq, money = _random_tied_tenant(seed=7, n=3000)
    batch, snapshot = score_batch(last, first, freq, money, AS_OF)
    assert len(set(batch.clv_score.tolist())) > 10  # the data really spreads the scores
    assert all(batch.counts[s.value] > 0 for s in SEGMENT_ORDER)
    for i in range(len(batch)):
        single = score_one(
            float(last[i]), float(first[i]), int(freq[i]), float(money[i]), AS_OF, snapshot
        )
        assert single == batch.record(i), i


def test_recency_percentile_is_exact_at_later_as_of() -> None:
    last, first, freq, money = _random_tied_tenant(seed=5, n=800)
    snapshot = build_snapshot(last, freq, money, AS_OF)
    for shift in (1e-6, 0.5, 3600.0, 0.25 * DAY, DAY, DAY - 1e-6, 17.75 * DAY, 400 * DAY):
        later = AS_OF + shift
        fresh, _ = score_batch(last, first, freq, money, later)
        for i in range(len(last)):
            single = score_one(
                float(last[i]), float(first[i]), int(freq[i]), float(money[i]), later, snapshot
            )
            # Same recency and score as a full recomputation; only the score percentiles
            # (segment thresholds) stay those of the snapshot's as_of.
            assert single.recency_days == fresh.recency_days[i], (shift, i)
            assert single.clv_score == fresh.clv_score[i], (shift, i)
            assert single.churn_probability == fresh.churn_probability[i]
            assert single.predicted_revenue == fresh.predicted_revenue[i]


def test_build_snapshot_equals_the_batch_snapshot() -> None:
    last, first, freq, money = _random_tied_tenant(seed=2, n=500)
    _, from_batch = score_batch(last, first, freq, money, AS_OF)
    alone = build_snapshot(last, freq, money, AS_OF)
    assert np.array_equal(alone.last_at_us, from_batch.last_at_us)
    assert np.array_equal(alone.frequency, from_batch.frequency)
    assert np.array_equal(alone.monetary, from_batch.monetary)
    assert (alone.score_high, alone.score_low) == (from_batch.score_high, from_batch.score_low)
    assert np.all(np.diff(alone.last_at_us) >= 0) and np.all(np.diff(alone.monetary) >= 0)


def test_sort_and_unique_fallbacks_give_the_same_ranks() -> None:
    # Frequencies spanning more than the counting limit and recencies spanning more than the
    # churn table take the sort / unique paths; compare with brute force.
    far = 70_000  # days
    last = np.array([days_ago(0), days_ago(1), days_ago(far), days_ago(far), days_ago(1)])
    freq = np.array([1, 10**9, 10**9, 5, 1])
    money = np.array([1.0, 2.0, 2.0, 3.0, 1.0])
    batch, snapshot = score_batch(last, last, freq, money, AS_OF)
    pr = midrank_pct(-batch.recency_days, -batch.recency_days)
    pf, pm = midrank_pct(freq, freq), midrank_pct(money, money)
    raw = 100.0 * (0.35 * pr + 0.35 * pf + 0.3 * pm)
    assert batch.clv_score.tolist() == np.floor(raw + 0.5 + 1e-9).astype(int).tolist()
    assert snapshot.frequency.tolist() == sorted(freq.tolist())
    for i in range(5):
        assert score_one(last[i], last[i], freq[i], money[i], AS_OF, snapshot) == batch.record(i)


# --------------------------------------------------------------------------- inputs and errors


def test_customers_without_interactions_are_rejected() -> None:
    with pytest.raises(RfmInputError, match=r"frequency must be >= 1.*index 1 has 0"):
        score_batch([AS_OF, AS_OF], [AS_OF, AS_OF], [1, 0], [0.0, 0.0], AS_OF)
    with pytest.raises(RfmInputError, match="no customers to score"):
        score_batch([], [], [], [], AS_OF)
    _, snapshot = score_batch([AS_OF], [AS_OF], [1], [0.0], AS_OF)
    with pytest.raises(RfmInputError, match="no CLV record"):
        score_one(AS_OF, AS_OF, 0, 0.0, AS_OF, snapshot)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frequency": [1.5]}, "whole counts"),
        ({"monetary": [-1.0]}, "monetary must be finite and >= 0"),
        ({"monetary": [float("nan")]}, "monetary must be finite"),
        ({"last_at": [AS_OF + 1]}, "last_at must not be after as_of"),
        ({"last_at": [float("inf")]}, "last_at must be finite"),
        ({"first_at": [AS_OF + 1]}, "first_at must not be after last_at"),
        ({"first_at": [float("nan")]}, "first_at must be finite"),
        ({"monetary": [1.0, 2.0]}, "monetary has 2 values but last_at has 1"),
        ({"last_at": [[AS_OF]]}, "1-D"),
        ({"monetary": ["x"]}, "numeric"),
        ({"as_of": float("nan")}, "as_of must be finite"),
    ],
)
def test_bad_batch_inputs_raise_clear_errors(kwargs: dict, message: str) -> None:
    args = {
        "last_at": [AS_OF],
        "first_at": [AS_OF],
        "frequency": [1],
        "monetary": [1.0],
        "as_of": AS_OF,
    }
    args.update(kwargs)
    with pytest.raises(RfmInputError, match=message):
        score_batch(**args)


def test_bad_single_inputs_raise_clear_errors() -> None:
    _, snapshot = score_batch([AS_OF], [AS_OF], [1], [0.0], AS_OF)
    with pytest.raises(RfmInputError, match="whole count"):
        score_one(AS_OF, AS_OF, 1.5, 0.0, AS_OF, snapshot)  # type: ignore[arg-type]
    with pytest.raises(RfmInputError, match="monetary"):
        score_one(AS_OF, AS_OF, 1, -0.01, AS_OF, snapshot)
    with pytest.raises(RfmInputError, match="must not be after as_of"):
        score_one(AS_OF + 1, AS_OF, 1, 0.0, AS_OF, snapshot)
    with pytest.raises(RfmInputError, match=r"first_at .* must not be after last_at"):
        score_one(AS_OF - 10, AS_OF, 1, 0.0, AS_OF, snapshot)


def test_snapshot_rejects_settings_that_change_it() -> None:
    _, snapshot = score_batch([AS_OF], [AS_OF], [1], [0.0], AS_OF)
    other = RfmSettings(segmentHighPercentile=80)
    with pytest.raises(SnapshotMismatchError, match="segment_high_percentile; rebuild"):
        score_one(AS_OF, AS_OF, 1, 0.0, AS_OF, snapshot, other)
    # Settings that do not enter the snapshot are fine (churn, lifespan, at-risk, TTL).
    changed = RfmSettings(churnSlope=0.1, lifespanMonths=12, atRiskDays=10, cacheTtlSeconds=5)
    record = score_one(AS_OF - 20 * DAY, AS_OF - 20 * DAY, 1, 6.0, AS_OF, snapshot, changed)
    assert record.segment is Segment.AT_RISK and record.predicted_revenue == 72.0


def test_snapshot_is_immutable() -> None:
    _, snapshot = score_batch([AS_OF], [AS_OF], [1], [0.0], AS_OF)
    with pytest.raises(ValueError, match="read-only"):
        snapshot.monetary[0] = 5.0
    with pytest.raises(AttributeError):
        snapshot.as_of = 0.0  # type: ignore[misc]
    assert isinstance(snapshot, DistributionSnapshot)


# --------------------------------------------------------------------------- settings


def test_settings_defaults_and_camel_case_json() -> None:
    settings = RfmSettings()
    assert settings.model_dump(by_alias=True) == {
        "recencyWeight": 0.35,
        "frequencyWeight": 0.35,
        "monetaryWeight": 0.30,
        "atRiskDays": 30,
        "churnMidpointDays": 30.0,
        "churnSlope": 0.08,
        "lifespanMonths": 24.0,
        "segmentHighPercentile": 75.0,
        "segmentLowPercentile": 25.0,
        "cacheTtlSeconds": 300.0,
    }
    assert RfmSettings.model_validate({"atRiskDays": 14}).at_risk_days == 14
    assert RfmSettings(at_risk_days=14) == RfmSettings(atRiskDays=14)
    assert RfmSettings.model_validate_json(settings.model_dump_json(by_alias=True)) == settings


@pytest.mark.parametrize(
    ("data", "field", "rule"),
    [
        ({"recencyWeight": -0.1, "frequencyWeight": 0.8}, "recencyWeight", "greater than or equal"),
        ({"frequencyWeight": 0.5}, "", "must sum to 1"),
        ({"monetaryWeight": 0.3 + 1e-6}, "", "must sum to 1"),
        ({"atRiskDays": 0}, "atRiskDays", "greater than 0"),
        ({"atRiskDays": 1.5}, "atRiskDays", "integer"),
        ({"churnMidpointDays": 0}, "churnMidpointDays", "greater than 0"),
        ({"churnSlope": -0.08}, "churnSlope", "greater than 0"),
        ({"lifespanMonths": 0}, "lifespanMonths", "greater than 0"),
        ({"segmentHighPercentile": 100}, "segmentHighPercentile", "less than 100"),
        ({"segmentLowPercentile": 0}, "segmentLowPercentile", "greater than 0"),
        ({"segmentLowPercentile": 75}, "", "must be below segmentHighPercentile"),
        ({"cacheTtlSeconds": 0}, "cacheTtlSeconds", "greater than 0"),
        ({"churnSlope": float("nan")}, "churnSlope", "finite"),
        ({"weights": 1}, "weights", "Extra inputs are not permitted"),
    ],
)
def test_settings_validation_names_field_and_rule(data: dict, field: str, rule: str) -> None:
    with pytest.raises(ValidationError) as info:
        RfmSettings.model_validate(data)
    errors = info.value.errors()
    assert len(errors) == 1
    assert ".".join(str(p) for p in errors[0]["loc"]) == field
    assert rule in errors[0]["msg"]
    if not field:  # cross-field rules name the fields in the message
        assert "Weight" in errors[0]["msg"] or "Percentile" in errors[0]["msg"]


def test_weights_may_sum_to_one_within_tolerance() -> None:
    assert 0.6 + 0.3 + 0.1 != 1.0  # 0.9999999999999999 in floats
    settings = RfmSettings(recencyWeight=0.6, frequencyWeight=0.3, monetaryWeight=0.1)
    assert settings.recency_weight == 0.6


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError, match="frozen"):
        RfmSettings().churn_slope = 1.0  # type: ignore[misc]
