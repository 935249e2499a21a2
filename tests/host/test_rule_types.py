"""Built-in rule types, each run through a real flow: which offers pass, and why others drop."""

from __future__ import annotations

from typing import Any

import pytest
from hostkit import decide, drops, flow, ids, inventory, qualify, rank, rule, score

from nextbest import FlowValidationError, Host

OFFERS = [
    {"id": "a", "priority": 60, "businessValue": 100},
    {"id": "b", "priority": 40, "businessValue": 100},
]


def run_rule(host: Host, rule_type: str, config: dict[str, Any], **req: Any) -> Any:
    doc = flow(inventory(), qualify(rule("r1", rule_type, config)), score(), rank())
    return decide(host, doc, OFFERS, **req)


def passes(host: Host, rule_type: str, config: dict[str, Any], **req: Any) -> bool:
    decision = run_rule(host, rule_type, config, **req)
    kept = ids(decision)
    assert kept in (["a", "b"], []), kept  # a global rule treats both offers alike
    return kept == ["a", "b"]


# -- segment_required ---------------------------------------------------------------------------
def test_segment_required_all_must_match(host: Host) -> None:
    cfg = {"requiredSegments": ["gold", "student"]}
    assert passes(host, "segment_required", cfg, segments=["student", "gold", "x"])
    assert not passes(host, "segment_required", cfg, segments=["gold"])


def test_segment_required_empty_list_passes(host: Host) -> None:
    assert passes(host, "segment_required", {"requiredSegments": []}, segments=[])


def test_segment_required_drop_names_missing_segments(host: Host) -> None:
    decision = run_rule(host, "segment_required", {"requiredSegments": ["gold"]}, segments=["x"])
    drop = drops(decision)["a"]
    assert (drop.node_id, drop.rule_id, drop.stage) == ("q", "r1", "eligibility")
    assert "gold" in drop.reason
    assert drop.inputs == {"segments": ["x"], "requiredSegments": ["gold"]}


# -- attribute_condition ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("operator", "value", "actual", "expected"),
    [
        ("eq", 5, 5, True),
        ("eq", 5, 6, False),
        ("neq", 5, 6, True),
        ("neq", 5, 5, False),
        ("gt", 5, 6, True),
        ("gt", 5, 5, False),
        ("gte", 5, 5, True),
        ("gte", 5, 4, False),
        ("lt", 5, 4, True),
        ("lt", 5, 5, False),
        ("lte", 5, 5, True),
        ("lte", 5, 6, False),
        ("in", ["x", "y"], "y", True),
        ("in", ["x", "y"], "z", False),
        ("not_in", ["x", "y"], "z", True),
        ("not_in", ["x", "y"], "x", False),
        ("contains", "pre", "premium", True),
        ("contains", "gold", "premium", False),
        ("contains", "b", ["a", "b"], True),
        ("starts_with", "pre", "premium", True),
        ("starts_with", "mium", "premium", False),
        ("regex", r"^\d{3}-", "123-45", True),
        ("regex", r"^\d{3}-", "12-345", False),
        ("exists", None, 0, True),
        ("not_exists", None, 0, False),
    ],
)
def test_attribute_condition_operators(
    host: Host, operator: str, value: Any, actual: Any, expected: bool
) -> None:
    cfg = {"attribute": "k", "operator": operator}
    if value is not None:
        cfg["value"] = value
    assert passes(host, "attribute_condition", cfg, attributes={"k": actual}) is expected


@pytest.mark.parametrize(
    ("operator", "value"),
    [
        ("eq", 1),
        ("neq", 1),
        ("gt", 1),
        ("gte", 1),
        ("lt", 1),
        ("lte", 1),
        ("in", [1]),
        ("not_in", [1]),
        ("contains", "x"),
        ("starts_with", "x"),
        ("regex", "x"),
    ],
)
def test_attribute_condition_missing_attribute_passes(
    host: Host, operator: str, value: Any
) -> None:
    cfg = {"attribute": "k", "operator": operator, "value": value}
    assert passes(host, "attribute_condition", cfg, attributes={"other": 1})


def test_attribute_condition_missing_attribute_and_exists_operators(host: Host) -> None:
    assert not passes(host, "attribute_condition", {"attribute": "k", "operator": "exists"})
    assert passes(host, "attribute_condition", {"attribute": "k", "operator": "not_exists"})


def test_attribute_condition_incomparable_types_fail_with_reason(host: Host) -> None:
    cfg = {"attribute": "age", "operator": "gt", "value": 18}
    decision = run_rule(host, "attribute_condition", cfg, attributes={"age": "old"})
    assert ids(decision) == []
    drop = drops(decision)["a"]
    assert "cannot compare" in drop.reason
    assert drop.inputs == {"attribute": "age", "actual": "old", "operator": "gt", "value": 18}


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"attribute": "k", "operator": "in", "value": 3}, "needs a list"),
        ({"attribute": "k", "operator": "eq"}, "needs a 'value'"),
        ({"attribute": "k", "operator": "regex", "value": "("}, "invalid regular expression"),
        ({"attribute": "k", "operator": "like", "value": 1}, "Input should be"),
        ({"attribute": "", "operator": "eq", "value": 1}, "at least 1 character"),
    ],
)
def test_attribute_condition_config_errors(host: Host, cfg: dict, message: str) -> None:
    with pytest.raises(FlowValidationError) as info:
        host.load_flow(
            flow(inventory(), qualify(rule("r1", "attribute_condition", cfg)), score(), rank())
        )
    (issue,) = info.value.issues
    assert issue.path.startswith("nodes[1].config.rules[0].config")
    assert message in issue.message


# -- recency_check ------------------------------------------------------------------------------
def seen(days_ago: float) -> dict[str, Any]:
    from datetime import datetime, timedelta

    as_of = datetime.fromisoformat("2026-03-10T12:00:00+00:00")
    return {"lastSeenAt": (as_of - timedelta(days=days_ago)).isoformat()}


def recency_flow(config: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return flow(inventory(), qualify(rule("rec", "recency_check", config, **kw)), score(), rank())


def test_recency_check_is_soft_by_default(host: Host) -> None:
    decision = decide(host, recency_flow({"minDays": 7}), OFFERS, offerHistory={"a": seen(3)})
    assert ids(decision) == ["b", "a"] or set(ids(decision)) == {"a", "b"}
    trace = decision.trace
    assert trace is not None
    (adj,) = trace.adjustments["a"]
    assert adj["ruleId"] == "rec" and adj["stage"] == "match"
    assert adj["multiplier"] == 0.5 and adj["fitMultiplier"] == 0.5
    assert adj["inputs"] == {"lastSeenDays": 3, "minDays": 7, "maxDays": None}
    assert "b" not in trace.adjustments  # never seen: passes
    assert trace.scores["a"].fit_multiplier == 0.5
    assert trace.scores["b"].fit_multiplier == 1.0


@pytest.mark.parametrize(
    ("config", "days_ago", "passed"),
    [
        ({"minDays": 7}, 7, True),
        ({"minDays": 7}, 6.9, False),  # 6 whole days
        ({"maxDays": 30}, 30, True),
        ({"maxDays": 30}, 31, False),
        ({"minDays": 2, "maxDays": 5}, 3, True),
        ({"minDays": 2, "maxDays": 5}, 1, False),
        ({"minDays": 2, "maxDays": 5}, 6, False),
    ],
)
def test_recency_check_bounds_as_hard_rule(
    host: Host, config: dict, days_ago: float, passed: bool
) -> None:
    doc = recency_flow(config, stage="eligibility")
    decision = decide(host, doc, OFFERS, offerHistory={"a": seen(days_ago)})
    assert ("a" in ids(decision)) is passed
    assert "b" in ids(decision)  # no history for b: passes


def test_recency_check_flow_uses_offer_history(host: Host) -> None:
    assert host.load_flow(recency_flow({"minDays": 1})).uses_offer_history
    assert not host.load_flow(flow()).uses_offer_history


@pytest.mark.parametrize(
    ("config", "message"),
    [({}, "minDays and/or maxDays"), ({"minDays": 5, "maxDays": 2}, "must not exceed")],
)
def test_recency_check_config_errors(host: Host, config: dict, message: str) -> None:
    with pytest.raises(FlowValidationError) as info:
        host.load_flow(recency_flow(config))
    assert info.value.issues[0].path == "nodes[1].config.rules[0].config"
    assert message in info.value.issues[0].message


# -- metric_condition ---------------------------------------------------------------------------
def test_metric_condition_compares_request_metric(host: Host) -> None:
    cfg = {"metric": "metrics.orders", "operator": "gte", "value": 3}
    assert passes(host, "metric_condition", cfg, metrics={"orders": 3})
    assert not passes(host, "metric_condition", cfg, metrics={"orders": 2})


def test_metric_condition_missing_metric_fails_unless_missing_pass(host: Host) -> None:
    cfg = {"metric": "metrics.orders", "operator": "gte", "value": 3}
    decision = run_rule(host, "metric_condition", cfg)
    assert ids(decision) == []
    assert "has no value" in drops(decision)["a"].reason
    assert passes(host, "metric_condition", {**cfg, "missing": "pass"})
    assert passes(host, "metric_condition", {"metric": "metrics.orders", "operator": "not_exists"})


def test_metric_condition_unknown_metric_is_a_load_error(host: Host) -> None:
    doc = flow(
        inventory(),
        qualify(rule("m", "metric_condition", {"metric": "nope.x", "operator": "exists"})),
        score(),
        rank(),
    )
    with pytest.raises(FlowValidationError) as info:
        host.load_flow(doc)
    assert info.value.issues[0].path == "nodes[1].config.rules[0].config"
    assert "nope.x" in info.value.issues[0].message


def test_metric_condition_names_are_customer_names(host: Host) -> None:
    doc = flow(
        inventory(),
        qualify(rule("m", "metric_condition", {"metric": "metrics.orders", "operator": "exists"})),
        score(),
        rank(),
    )
    assert "metrics.orders" in host.load_flow(doc).customer_names


# -- expression ---------------------------------------------------------------------------------
def test_expression_rule_sees_offer_and_customer_names(host: Host) -> None:
    cfg = {"expression": "priority > 50 and attributes.tier == 'gold'"}
    decision = run_rule(host, "expression", cfg, attributes={"tier": "gold"})
    assert ids(decision) == ["a"]
    drop = drops(decision)["b"]
    assert drop.inputs == {"priority": 40, "attributes.tier": "gold"}
    assert "False" in drop.reason


def test_expression_failing_at_decision_time_drops_with_reason(host: Host) -> None:
    decision = run_rule(host, "expression", {"expression": "metrics.x + 1 > 0"})
    assert ids(decision) == []
    assert "formula failed" in drops(decision)["a"].reason


def test_expression_compile_error_is_a_load_error(host: Host) -> None:
    with pytest.raises(FlowValidationError) as info:
        host.load_flow(
            flow(
                inventory(),
                qualify(rule("e", "expression", {"expression": "x.y > 1"})),
                score(),
                rank(),
            )
        )
    assert info.value.issues[0].path == "nodes[1].config.rules[0].config.expression"
    assert "unknown name 'x.y'" in info.value.issues[0].message


def test_rule_without_required_config_names_the_fields(host: Host) -> None:
    with pytest.raises(FlowValidationError) as info:
        host.load_flow(
            flow(inventory(), qualify(rule("r", "attribute_condition")), score(), rank())
        )
    paths = sorted(issue.path for issue in info.value.issues)
    assert paths == [
        "nodes[1].config.rules[0].config.attribute",
        "nodes[1].config.rules[0].config.operator",
    ]
