"""The tallies of a simulation (pure), checked by hand: coverage, expected value and
conversions, the offer mix by rank, blocking rules, unpriced offers, the breakdown and the
comparison of two flows; and how the text report says unpriced offers."""

from __future__ import annotations

import pytest

from nextbest.commands.simulate import render_report
from nextbest.simulate.result import Comparison, FlowTally, Shown


def hand_checked() -> FlowTally:
    """Four customers under one flow:

    - c1 (segment high): gold #1 (0.5 x 40) and silver #2 (0.2 x 10): value 22, conv. 0.7
    - c2 (segment high): gold #1: value 20, conversions 0.5
    - c3 (segment low): nothing, blocked by cap and twice by budget (counted once)
    - c4 (segment low): bronze #1, no propensity: shown, unpriced, no value or conversions

    Overall: coverage 3/4, value 42, conversions 1.2, one unpriced offer shown."""
    tally = FlowTally("main", 3)
    gold, silver = Shown("gold", 1, 0.5, 40.0), Shown("silver", 2, 0.2, 10.0)
    tally.add("high", [gold, silver])
    tally.add("high", [gold])
    tally.add("low", [], ["cap", "budget", "budget"])
    tally.add("low", [Shown("bronze", 1, None, 99.0)])
    return tally


def test_the_overall_tally_by_hand() -> None:
    overall = hand_checked().to_dict()["overall"]
    assert overall["customers"] == 4
    assert overall["withOffer"] == 3 and overall["withoutOffer"] == 1
    assert overall["coverage"] == 0.75
    assert overall["expectedValue"] == 42.0
    assert overall["expectedConversions"] == pytest.approx(1.2)
    assert overall["unpricedOffersShown"] == 1
    assert overall["offerMix"] == {
        "gold": {"total": 2, "byRank": {"1": 2}},
        "bronze": {"total": 1, "byRank": {"1": 1}},
        "silver": {"total": 1, "byRank": {"2": 1}},
    }
    assert overall["blockingRules"] == [
        {"rule": "budget", "customers": 1},
        {"rule": "cap", "customers": 1},
    ]


def test_the_breakdown_by_hand() -> None:
    by_value = hand_checked().to_dict()["byValue"]
    assert list(by_value) == ["high", "low"]
    high, low = by_value["high"], by_value["low"]
    assert (high["customers"], high["coverage"], high["expectedValue"]) == (2, 1.0, 42.0)
    assert high["expectedConversions"] == pytest.approx(1.2)
    assert (low["customers"], low["coverage"], low["expectedValue"]) == (2, 0.5, 0.0)
    assert (low["expectedConversions"], low["unpricedOffersShown"]) == (0.0, 1)


def test_an_empty_tally_has_no_coverage() -> None:
    overall = FlowTally("main", 1).to_dict()["overall"]
    assert overall["customers"] == 0 and overall["coverage"] is None
    assert overall["expectedValue"] == 0.0 and overall["offerMix"] == {}


def test_the_comparison_by_hand() -> None:
    comparison = Comparison()
    comparison.add("c1", "gold", "gold")
    comparison.add("c2", "gold", None)
    comparison.add("c3", "gold", None)
    comparison.add("c4", None, "silver")
    out = comparison.to_dict()
    assert (out["customers"], out["topOfferChanged"], out["topOfferUnchanged"]) == (4, 3, 1)
    assert out["changes"] == [
        {"from": "gold", "to": "(none)", "customers": 2, "exampleCustomerIds": ["c2", "c3"]},
        {"from": "(none)", "to": "silver", "customers": 1, "exampleCustomerIds": ["c4"]},
    ]


def _result(tally: FlowTally) -> dict[str, object]:
    return {
        "tenantId": "acme",
        "asOf": "2026-06-30T12:00:00+00:00",
        "customers": 4,
        "tenantCustomers": 4,
        "by": "segment",
        "flows": [tally.to_dict()],
        "comparison": None,
        "controlGroup": {"wouldBeControl": 0},
    }


def test_the_text_report_says_unpriced_offers_with_a_hint() -> None:
    text = render_report(_result(hand_checked()))
    lines = [line for line in text.splitlines() if "without a propensity" in line]
    # overall and the low segment; not the high one, where every offer shown is priced
    assert len(lines) == 2
    assert lines[0].strip().startswith("1 offer shown without a propensity, left out")
    assert "give those offers a propensity in the catalog" in lines[0]


def test_the_text_report_is_silent_when_every_offer_is_priced() -> None:
    tally = FlowTally("main", 3)
    tally.add("high", [Shown("gold", 1, 0.5, 40.0)])
    assert "without a propensity" not in render_report(_result(tally))
