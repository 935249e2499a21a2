"""Computed fields in phase 1 and phase 3, and the contents of the explanation trace."""

from __future__ import annotations

from typing import Any

import pytest
from hostkit import (
    compute,
    decide,
    drops,
    flow,
    ids,
    inventory,
    qualify,
    rank,
    rule,
    score,
    scores,
)

from nextbest import Host

OFFERS = [
    {"id": "a", "name": "Alpha", "priority": 80, "weight": 50, "businessValue": 100},
    {"id": "b", "name": "Beta", "priority": 50, "weight": 40, "businessValue": 40},
]


def test_phase1_field_is_visible_to_rules_and_scoring(host: Host) -> None:
    doc = flow(
        inventory(),
        compute(("boosted", "businessValue * 2 + coalesce(metrics.extra, 0)")),
        qualify(rule("big", "expression", {"expression": "boosted > 100"})),
        score(formulas={"impact": "boosted"}, maxValue=400),
        rank(),
    )
    decision = decide(host, doc, OFFERS, metrics={"extra": 20})
    assert ids(decision) == ["a"]  # b: 40*2+20 = 100, not > 100
    assert drops(decision)["b"].inputs == {"boosted": 100}
    trace = decision.trace
    assert trace is not None
    assert trace.scores["a"].factors["impact"] == pytest.approx(220 / 400)
    assert trace.scores["a"].sources["impact"] == "formula"
    assert trace.computed["a"] == {"boosted": 220}
    assert decision.items[0].personalization == {"boosted": 220}


def test_phase3_fields_see_score_and_rank(host: Host) -> None:
    doc = flow(
        inventory(),
        score(method="priority_weighted"),
        rank(),
        compute(
            ("pct", "round(score * 100)", "integer"),
            ("label", "concat(name, ' #', rank, ' (', pct, '%)')", "string"),
            node_id="out",
        ),
    )
    decision = decide(host, doc, OFFERS)
    assert [item.personalization for item in decision.items] == [
        {"pct": 40, "label": "Alpha #1 (40%)"},
        {"pct": 20, "label": "Beta #2 (20%)"},
    ]


def test_later_fields_of_a_node_see_earlier_ones_and_response_selects(host: Host) -> None:
    doc = flow(
        inventory(),
        compute(("x", "priority / 10"), ("y", "x + 1")),
        score(method="priority_weighted"),
        rank(),
        {"type": "response", "id": "resp", "config": {"fields": ["y"]}},
    )
    decision = decide(host, doc, OFFERS)
    assert decision.items[0].personalization == {"y": 9.0}


@pytest.mark.parametrize(
    ("formula", "output_type", "expected"),
    [
        ("'3.5'", "number", 3.5),
        ("7", "number", 7.0),
        ("2.6", "integer", 3),
        ("5", "string", "5"),
        ("0", "boolean", False),
        ("'x'", "boolean", True),
        ("'3'", "any", "3"),
    ],
)
def test_output_type_conversion(host: Host, formula: str, output_type: str, expected: Any) -> None:
    doc = flow(inventory(), compute(("v", formula, output_type)), score(), rank())
    decision = decide(host, doc, OFFERS[:1])
    value = decision.items[0].personalization["v"]
    assert value == expected and type(value) is type(expected)


def test_failing_conversion_is_null_with_trace_entry(host: Host) -> None:
    doc = flow(inventory(), compute(("v", "'abc'", "number")), score(), rank())
    decision = decide(host, doc, OFFERS[:1])
    assert decision.items[0].personalization == {"v": None}
    assert decision.trace is not None
    (failure,) = decision.trace.failures
    assert (failure.plugin, failure.hook, failure.offer_id) == ("formula", "computed field v", "a")
    assert "cannot convert to number" in failure.error


def test_failing_formula_is_null_with_trace_entry_and_no_exception(host: Host) -> None:
    doc = flow(
        inventory(),
        compute(("ratio", "businessValue / metrics.zero"), ("after", "coalesce(ratio, -1)")),
        score(),
        rank(),
    )
    decision = decide(host, doc, OFFERS, metrics={"zero": 0})
    assert ids(decision) == ["a", "b"]
    assert decision.items[0].personalization == {"ratio": None, "after": -1}
    assert decision.trace is not None
    failures = decision.trace.failures
    assert {(f.plugin, f.hook, f.offer_id, f.action) for f in failures} == {
        ("formula", "computed field ratio", "a", "value is null"),
        ("formula", "computed field ratio", "b", "value is null"),
    }
    assert "ZeroDivisionError" in failures[0].error


@pytest.mark.timeout(20)
def test_runtime_power_bomb_fails_fast_as_null(host: Host) -> None:
    doc = flow(inventory(), compute(("boom", "metrics.n ** metrics.n > 1")), score(), rank())
    decision = decide(host, doc, OFFERS[:1], metrics={"n": 4000000})
    assert decision.items[0].personalization == {"boom": None}
    assert decision.trace is not None
    assert "4096 bits" in decision.trace.failures[0].error


# -- the trace --------------------------------------------------------------------------------
FULL = flow(
    inventory(),
    qualify(
        rule(
            "gold", "segment_required", {"requiredSegments": ["gold"]}, scope="offer", scopeId="b"
        ),
        rule("fresh", "recency_check", {"minDays": 7}, multiplier=0.8),
    ),
    compute(("v2", "businessValue * 2")),
    score(),
    rank(),
    key="full",
)


def test_trace_contents(host: Host) -> None:
    decision = decide(
        host,
        FULL,
        [*OFFERS, {"id": "c", "priority": 30, "businessValue": 10}],
        segments=["silver"],
        offerHistory={"a": {"lastSeenAt": "2026-03-08T12:00:00Z"}},
    )
    assert ids(decision) == ["a", "c"]
    trace = decision.trace
    assert trace is not None
    drop = drops(decision)["b"]
    assert (drop.node_id, drop.rule_id, drop.stage) == ("q", "gold", "eligibility")
    assert drop.reason == "missing segments ['gold']"
    assert drop.inputs == {"segments": ["silver"], "requiredSegments": ["gold"]}
    assert drop.plugin == "builtin"
    (adj,) = trace.adjustments["a"]
    assert adj == {
        "nodeId": "q",
        "ruleId": "fresh",
        "stage": "match",
        "multiplier": 0.8,
        "fitMultiplier": 0.8,
        "reason": "offer last seen 2 day(s) ago; needs at least 7",
        "inputs": {"lastSeenDays": 2, "minDays": 7, "maxDays": None},
        "plugin": "builtin",
    }
    a = trace.scores["a"]
    assert a.fit_multiplier == 0.8
    assert set(a.factors) == set(a.weights) == {"propensity", "relevance", "impact", "emphasis"}
    assert a.score == pytest.approx(scores(decision)["a"])
    assert trace.computed == {"a": {"v2": 200}, "c": {"v2": 20}}  # b was dropped before
    assert [t["nodeId"] for t in trace.timings] == ["(context)", "inv", "q", "c", "sc", "rk"]
    assert all(t["ms"] >= 0 for t in trace.timings)
    assert [(t.get("candidatesIn"), t.get("candidatesOut")) for t in trace.timings[1:]] == [
        (0, 3),
        (3, 2),
        (2, 2),
        (2, 2),
        (2, 2),
    ]
    data = decision.to_dict()
    assert data["trace"]["dropped"][0]["ruleId"] == "gold"
    assert data["trace"]["scores"]["a"]["fitMultiplier"] == 0.8
    assert data["decisions"][0] == {
        "offerId": "a",
        "name": "Alpha",
        "rank": 1,
        "score": pytest.approx(a.score),
        "category": None,
        "personalization": {"v2": 200},
    }


def test_trace_records_resolved_context(host: Host) -> None:
    doc = flow(
        inventory(),
        qualify(rule("t", "expression", {"expression": "attributes.tier != 'x'"})),
        score(),
        rank(),
    )
    decision = decide(host, doc, OFFERS, attributes={"tier": "gold"})
    assert decision.trace is not None
    assert decision.trace.context == {"attributes.tier": "gold"}


def test_explain_off_gives_no_trace_and_same_result(host: Host) -> None:
    offers = [*OFFERS, {"id": "c", "priority": 30, "businessValue": 10}]
    kwargs: dict[str, Any] = {
        "segments": ["silver"],
        "offerHistory": {"a": {"lastSeenAt": "2026-03-08T12:00:00Z"}},
    }
    quiet = decide(host, FULL, offers, explain=False, **kwargs)
    loud = decide(host, FULL, offers, **kwargs)
    assert quiet.trace is None
    assert "trace" not in quiet.to_dict()
    assert [(i.offer_id, i.score, i.personalization) for i in quiet.items] == [
        (i.offer_id, i.score, i.personalization) for i in loud.items
    ]


def test_explain_defaults_to_off(host: Host) -> None:
    h_flow, offers = host.load_flow(flow()), host.load_offers(OFFERS)
    decision = host.decide("t1", {"customerId": "x"}, flow=h_flow, offers=offers)
    assert decision.trace is None


def test_add_flow_and_decide_by_key(host: Host) -> None:
    from nextbest import UnknownFlowError

    compiled, offers = host.load_flow(flow(key="main")), host.load_offers(OFFERS)
    host.add_flow("tenant-x", compiled, offers)
    assert ids(host.decide("tenant-x", {"customerId": "c"})) == ["a", "b"]
    assert (
        host.decide("tenant-x", {"customerId": "c", "decisionFlowKey": "main"}).flow_key == "main"
    )
    with pytest.raises(UnknownFlowError, match="no flow 'other'"):
        host.decide("tenant-x", {"customerId": "c", "decisionFlowKey": "other"})
    with pytest.raises(UnknownFlowError, match="no default flow"):
        host.decide("tenant-y", {"customerId": "c"})
