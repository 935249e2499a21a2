"""Rule stages (hard drop, soft multiplier, ranking), evaluation order and rule scopes."""

from __future__ import annotations

from typing import Any

import pytest
from hostkit import (
    CountingPlugin,
    counting,
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

from nextbest import FlowValidationError, Host

OFFERS = [
    {"id": "a", "priority": 80, "weight": 50, "category": "cards", "subCategory": "credit"},
    {"id": "b", "priority": 60, "weight": 50, "category": "cards", "subCategory": "debit"},
    {"id": "c", "priority": 40, "weight": 50, "category": "loans"},
]


@pytest.fixture
def plugin() -> CountingPlugin:
    return CountingPlugin()


@pytest.fixture
def chost(make_host: Any, plugin: CountingPlugin) -> Host:
    return make_host(plugin)


def run(h: Host, *rules: dict[str, Any], offers: list[dict] | None = None, **req: Any) -> Any:
    doc = flow(inventory(), qualify(*rules), score(method="priority_weighted"), rank())
    return decide(h, doc, offers or OFFERS, **req)


# -- stages -----------------------------------------------------------------------------------
@pytest.mark.parametrize("stage", ["eligibility", "fit"])
def test_hard_stages_drop_the_offer(chost: Host, stage: str) -> None:
    decision = run(chost, counting("r", passed=False, stage=stage))
    assert ids(decision) == []
    drop = drops(decision)["a"]
    assert (drop.node_id, drop.rule_id, drop.stage, drop.reason) == ("q", "r", stage, "tag r")
    assert drop.plugin == "CountingPlugin"


@pytest.mark.parametrize(
    ("legacy", "stage"),
    [("qualification", "eligibility"), ("applicability", "fit"), ("suitability", "match")],
)
def test_legacy_stage_aliases(chost: Host, legacy: str, stage: str) -> None:
    decision = run(chost, counting("r", passed=False, stage=legacy))
    trace = decision.trace
    assert trace is not None
    if stage == "match":
        assert ids(decision) == ["a", "b", "c"]
        assert trace.adjustments["a"][0]["stage"] == "match"
    else:
        assert ids(decision) == []
        assert drops(decision)["a"].stage == stage


def test_match_stage_multiplies_fit_with_default_half(chost: Host) -> None:
    decision = run(chost, counting("soft", passed=False, stage="match"))
    # priority_weighted = (priority/100)*(weight/100)*fit = 0.8*0.5*0.5
    assert scores(decision) == pytest.approx({"a": 0.2, "b": 0.15, "c": 0.1})


def test_match_multiplier_from_rule_and_from_outcome(chost: Host) -> None:
    by_rule = run(chost, counting("soft", passed=False, stage="match", multiplier=0.8))
    by_outcome = run(
        chost,
        rule(
            "soft",
            "counting",
            {"tag": "t", "passed": False, "multiplier": 0.3},
            stage="match",
            multiplier=0.8,
        ),
    )
    assert scores(by_rule)["a"] == pytest.approx(0.4 * 0.8)
    assert scores(by_outcome)["a"] == pytest.approx(0.4 * 0.3)  # the outcome's own wins


def test_match_multipliers_compound_and_clamp_at_0_1(chost: Host) -> None:
    decision = run(
        chost,
        counting("s1", passed=False, stage="match", multiplier=0.4),
        counting("s2", passed=False, stage="match", multiplier=0.5),
        counting("s3", passed=False, stage="match", multiplier=0.3),
    )
    trace = decision.trace
    assert trace is not None
    fits = [adj["fitMultiplier"] for adj in trace.adjustments["a"]]
    assert fits == pytest.approx([0.4, 0.2, 0.1])  # 0.2 * 0.3 = 0.06 -> clamped to 0.1
    assert trace.scores["a"].fit_multiplier == pytest.approx(0.1)
    assert scores(decision)["a"] == pytest.approx(0.4 * 0.1)


def test_match_multiplier_above_one_is_clamped_to_one(chost: Host) -> None:
    decision = run(
        chost,
        rule("s", "counting", {"tag": "s", "passed": False, "multiplier": 3.0}, stage="match"),
    )
    assert scores(decision)["a"] == pytest.approx(0.4)


def test_zero_rule_multiplier_clamps_to_floor(chost: Host) -> None:
    decision = run(chost, counting("s", passed=False, stage="match", multiplier=0.0))
    assert scores(decision)["a"] == pytest.approx(0.4 * 0.1)


def test_passing_match_rule_leaves_fit_alone(chost: Host) -> None:
    decision = run(chost, counting("s", passed=True, stage="match", multiplier=0.2))
    assert scores(decision)["a"] == pytest.approx(0.4)
    assert decision.trace is not None and decision.trace.adjustments == {}


def test_ranking_stage_is_stored_not_applied(chost: Host, plugin: CountingPlugin) -> None:
    decision = run(chost, counting("r", passed=False, stage="ranking"))
    assert ids(decision) == ["a", "b", "c"]
    assert plugin.calls == []


def test_inactive_rules_are_not_evaluated(chost: Host, plugin: CountingPlugin) -> None:
    decision = run(chost, counting("r", passed=False, status="inactive"))
    assert ids(decision) == ["a", "b", "c"]
    assert plugin.calls == []


def test_rules_run_by_priority_descending_then_document_order(
    chost: Host, plugin: CountingPlugin
) -> None:
    run(
        chost,
        counting("low", priority=1),
        counting("high", priority=10),
        counting("mid1", priority=5),
        counting("mid2", priority=5),
        offers=OFFERS[:1],
    )
    assert plugin.tags("a") == ["high", "mid1", "mid2", "low"]


def test_first_hard_failure_ends_evaluation(chost: Host, plugin: CountingPlugin) -> None:
    decision = run(
        chost,
        counting("after", priority=1),
        counting("soft", passed=False, stage="match", priority=30),
        counting("first", priority=20),
        counting("stops", passed=False, stage="fit", priority=10),
        counting("never", passed=False, priority=5),
        offers=OFFERS[:1],
    )
    assert plugin.tags("a") == ["soft", "first", "stops"]  # a soft failure does not stop
    assert drops(decision)["a"].rule_id == "stops"


# -- scopes -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scope", "scope_id", "req", "applies_to"),
    [
        ("global", None, {}, {"a", "b", "c"}),
        ("category", "cards", {}, {"a", "b"}),
        ("subcategory", "debit", {}, {"b"}),
        ("offer", "c", {}, {"c"}),
        ("channel", "web", {"channel": "web"}, {"a", "b", "c"}),
        ("channel", "web", {"channel": "app"}, set()),
        ("channel", "web", {}, set()),
        ("segment", "gold", {"segments": ["x", "gold"]}, {"a", "b", "c"}),
        ("segment", "gold", {"segments": ["x"]}, set()),
    ],
)
def test_rule_scopes(
    chost: Host,
    plugin: CountingPlugin,
    scope: str,
    scope_id: str | None,
    req: dict,
    applies_to: set[str],
) -> None:
    extra = {"scope": scope} | ({"scopeId": scope_id} if scope_id else {})
    decision = run(chost, counting("r", passed=False, **extra), **req)
    assert {oid for _, oid in plugin.calls} == applies_to
    assert set(ids(decision)) == {"a", "b", "c"} - applies_to


@pytest.mark.parametrize("scope", ["category", "subcategory", "offer", "channel", "segment"])
def test_scoped_rule_needs_scope_id(host: Host, scope: str) -> None:
    doc = flow(
        inventory(),
        qualify(rule("r", "segment_required", {}, scope=scope)),
        score(),
        rank(),
    )
    with pytest.raises(FlowValidationError) as info:
        host.load_flow(doc)
    (issue,) = info.value.issues
    assert issue.path == "nodes[1].config.rules[0]"
    assert "needs a scopeId" in issue.message


def test_unknown_stage_is_a_load_error(host: Host) -> None:
    doc = flow(
        inventory(), qualify(rule("r", "segment_required", {}, stage="maybe")), score(), rank()
    )
    with pytest.raises(FlowValidationError) as info:
        host.load_flow(doc)
    assert [i.path for i in info.value.issues] == ["nodes[1].config.rules[0].stage"]
