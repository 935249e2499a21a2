"""Mandatory offers, customer-level rule memoisation, and field-level config error paths."""

from __future__ import annotations

from typing import Any

import pytest
from hostkit import decide, drops, flow, ids, inventory, issue_paths, qualify, rank, rule, score

from nextbest import FlowValidationError, Host, RuleContext, RuleOutcome, RuleType, hookimpl


def test_mandatory_offer_ranks_first_even_with_a_lower_score(host: Host) -> None:
    offers = [
        {"id": "big", "priority": 90, "weight": 90},
        {"id": "must", "priority": 10, "weight": 10, "mandatory": True},
        {"id": "mid", "priority": 50, "weight": 50},
    ]
    doc = flow(inventory(), score(method="priority_weighted"), rank(maxCandidates=2))
    decision = decide(host, doc, offers)
    assert ids(decision) == ["must", "big"]
    assert "below the cut-off of 2" in drops(decision)["mid"].reason


def _gated(bypassable: bool | None, stage: str = "eligibility") -> dict[str, Any]:
    extra = {} if bypassable is None else {"bypassable": bypassable}
    return flow(
        inventory(),
        qualify(
            rule(
                "gate",
                "attribute_condition",
                {"attribute": "age", "operator": "gte", "value": 18},
                stage=stage,
                **extra,
            )
        ),
        score(method="priority_weighted"),
        rank(),
    )


def test_mandatory_offer_bypasses_a_failing_bypassable_rule(host: Host) -> None:
    offers = [{"id": "must", "mandatory": True}, {"id": "other"}]
    # the default is bypassable: the mandatory offer skips the rule, the other one is dropped
    for bypassable in (None, True):
        assert ids(decide(host, _gated(bypassable), offers, attributes={"age": 12})) == ["must"]
    # a soft rule is bypassed too: the mandatory offer keeps its full fit
    out = decide(host, _gated(None, "match"), offers, attributes={"age": 12}, explain=True)
    adjustments = out.trace.adjustments
    assert adjustments["must"] == [
        {
            "nodeId": "q",
            "ruleId": "gate",
            "stage": "match",
            "bypassed": True,
            "reason": "mandatory offer: bypassable rule skipped",
            "plugin": "builtin",
        }
    ]
    assert adjustments["other"][0]["fitMultiplier"] == 0.5


def test_mandatory_offer_is_still_subject_to_non_bypassable_rules(host: Host) -> None:
    offers = [{"id": "must", "mandatory": True}, {"id": "other"}]
    doc = _gated(False)
    assert ids(decide(host, doc, offers, attributes={"age": 12})) == []
    assert ids(decide(host, doc, offers, attributes={"age": 30})) == ["must", "other"]
    explained = decide(host, doc, offers, attributes={"age": 12}, explain=True)
    assert {d.offer_id for d in explained.trace.drops} == {"must", "other"}
    assert "must" not in explained.trace.adjustments


class _Counter:
    def __init__(self, per_customer: bool) -> None:
        self.per_customer = per_customer
        self.calls = 0

    @hookimpl
    def register_rule_types(self, register: Any) -> None:
        register(
            RuleType(
                "tally",
                _TallyConfig,
                self._evaluate,
                "eligibility",
                per_customer=(lambda cfg: True) if self.per_customer else None,
            )
        )

    def _evaluate(self, cfg: Any, ctx: RuleContext) -> RuleOutcome:
        self.calls += 1
        return RuleOutcome(cfg.passed, reason="tally")


from pydantic import BaseModel  # noqa: E402


class _TallyConfig(BaseModel):
    passed: bool = True


@pytest.mark.parametrize(("per_customer", "expected_calls"), [(True, 1), (False, 6)])
def test_customer_level_rules_run_once_per_decision(
    make_host: Any, per_customer: bool, expected_calls: int
) -> None:
    counter = _Counter(per_customer)
    h = make_host(counter)
    offers = [{"id": f"o{i}"} for i in range(3)]
    # the same customer-level rule, written once per offer: one evaluation per decision
    rules = [
        rule(f"r{i}", "tally", {"passed": True}, scope="offer", scopeId=f"o{i}") for i in range(3)
    ]
    rules += [
        rule(f"g{i}", "tally", {"passed": True}, scope="offer", scopeId=f"o{i}") for i in range(3)
    ]
    doc = flow(inventory(), qualify(*rules), score(method="priority_weighted"), rank())
    assert sorted(ids(decide(h, doc, offers))) == ["o0", "o1", "o2"]
    assert counter.calls == expected_calls


def test_memoised_failure_still_drops_every_offer_with_its_reason(make_host: Any) -> None:
    counter = _Counter(per_customer=True)
    h = make_host(counter)
    doc = flow(
        inventory(),
        qualify(rule("no", "tally", {"passed": False})),
        score(method="priority_weighted"),
        rank(),
    )
    decision = decide(h, doc, [{"id": "a"}, {"id": "b"}])
    assert ids(decision) == []
    assert {d.offer_id: d.rule_id for d in decision.trace.drops} == {"a": "no", "b": "no"}
    assert counter.calls == 1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"attribute": "x", "operator": "gt"}, "needs a 'value'"),
        ({"attribute": "x", "operator": "in", "value": 3}, "needs a list"),
        ({"attribute": "x", "operator": "regex", "value": "("}, "invalid regular expression"),
    ],
)
def test_operator_value_errors_point_at_the_value(host: Host, config: dict, message: str) -> None:
    doc = flow(
        inventory(),
        qualify(rule("r", "attribute_condition", config)),
        score(method="priority_weighted"),
        rank(),
    )
    with pytest.raises(FlowValidationError) as caught:
        host.load_flow(doc)
    assert issue_paths(caught.value) == ["nodes[1].config.rules[0].config.value"]
    assert message in str(caught.value)


class _Exploding:
    @hookimpl
    def register_rule_types(self, register: Any) -> None:
        register(
            RuleType(
                "boom", _TallyConfig, self._evaluate, "eligibility", per_customer=lambda c: True
            )
        )

    def _evaluate(self, cfg: Any, ctx: RuleContext) -> RuleOutcome:
        raise RuntimeError("customer service down")


def test_raising_customer_level_rule_drops_each_offer_that_reaches_it(make_host: Any) -> None:
    h = make_host(_Exploding())
    offers = [{"id": "a"}, {"id": "b"}, {"id": "c"}]
    doc = flow(
        inventory(),
        qualify(
            rule("boom", "boom", {}, scope="offer", scopeId="a"),
            rule("boom2", "boom", {}, scope="offer", scopeId="b"),
        ),
        score(method="priority_weighted"),
        rank(),
    )
    decision = decide(h, doc, offers)
    assert ids(decision) == ["c"]
    failed = {f.offer_id for f in decision.trace.failures}
    assert failed == {"a", "b"}
    assert "customer service down" in drops(decision)["a"].reason


def test_explain_does_not_change_scores(host: Host) -> None:
    offers = [
        {
            "id": f"o{i}",
            "priority": 10 + 7 * i,
            "weight": 50,
            "businessValue": 5 + 3 * i,
            "propensity": 0.1 + i / 20,
            "channels": ["web"] if i % 2 else [],
        }
        for i in range(12)
    ]
    doc = flow(
        inventory(),
        qualify(
            rule(
                "adult", "attribute_condition", {"attribute": "age", "operator": "gte", "value": 18}
            ),
            rule("soft", "expression", {"expression": "priority > 40"}, stage="match"),
        ),
        score(
            method="formula",
            weights={"propensity": 0.5, "relevance": 0.1, "impact": 0.3, "emphasis": 0.1},
        ),
        rank(maxCandidates=12),
    )
    flow_c, offers_c = host.load_flow(doc), host.load_offers(offers)
    plain = host.decide(
        "t",
        {"customerId": "c", "channel": "app", "attributes": {"age": 30}},
        flow=flow_c,
        offers=offers_c,
    )
    explained = host.decide(
        "t",
        {"customerId": "c", "channel": "app", "attributes": {"age": 30}, "explain": True},
        flow=flow_c,
        offers=offers_c,
    )
    assert [(i.offer_id, i.score) for i in plain.items] == [
        (i.offer_id, i.score) for i in explained.items
    ]
    assert len(plain.items) == 12
