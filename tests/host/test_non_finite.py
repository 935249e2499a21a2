"""Infinity and NaN never enter a decision: a non-finite formula result is a failure (null plus
a trace entry; a load error naming the formula's path when it is constant), and so is every other
number that reaches the decision (context values, plugin functions, value providers, rule inputs,
fit adjustments). The decision then always encodes as strict JSON."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hostkit import (
    compute,
    decide,
    drops,
    extension,
    flow,
    ids,
    inventory,
    qualify,
    rank,
    rule,
    score,
)
from pydantic import BaseModel, ConfigDict, ValidationError

from nextbest import (
    ContextProvider,
    Decision,
    DecisionError,
    FlowValidationError,
    Host,
    RuleOutcome,
    RuleType,
    ValueProvider,
    hookimpl,
)

OFFER = {"id": "a", "priority": 80, "weight": 50, "businessValue": 100, "propensity": 0.5}


def strict_json(decision: Decision) -> Any:
    """The decision through a strict JSON round trip (no NaN or Infinity tokens)."""
    return json.loads(json.dumps(decision.to_dict(), allow_nan=False))


def failures(decision: Decision) -> list[tuple[str, str, str]]:
    assert decision.trace is not None
    return [(f.plugin, f.hook, f.error) for f in decision.trace.failures]


def priority_flow(*middle: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return flow(inventory(), *middle, score(method="priority_weighted"), rank(), **extra)


# -- constants: load errors naming the formula's path ------------------------------------------


@pytest.mark.parametrize(
    ("node", "path"),
    [
        (compute(("m", "1e308 * 10 + priority")), "nodes[1].config.fields[0].formula"),
        (compute(("m", "1e309")), "nodes[1].config.fields[0].formula"),
        (compute(("m", "-1e309 * priority")), "nodes[1].config.fields[0].formula"),
        (
            {"type": "filter", "id": "f", "config": {"expression": "priority < 1e308 * 1e308"}},
            "nodes[1].config.expression",
        ),
        (
            qualify(rule("e", "expression", {"expression": "priority > (1e308 + 1e308)"})),
            "nodes[1].config.rules[0].config.expression",
        ),
    ],
)
def test_a_constant_that_is_not_finite_is_a_load_error_naming_its_path(
    host: Host, node: dict[str, Any], path: str
) -> None:
    with pytest.raises(FlowValidationError) as caught:
        host.load_flow(priority_flow(node))
    assert [issue.path for issue in caught.value.issues] == [path]
    assert "not a finite number" in caught.value.issues[0].message


def test_a_constant_score_formula_that_is_not_finite_is_a_load_error(host: Host) -> None:
    doc = flow(inventory(), score(method="formula", formulas={"impact": "1e308 * 100"}), rank())
    with pytest.raises(FlowValidationError) as caught:
        host.load_flow(doc)
    assert [issue.path for issue in caught.value.issues] == ["nodes[1].config.formulas.impact"]


@pytest.mark.parametrize("value", [math.nan, math.inf, [1, -math.inf]])
@pytest.mark.parametrize("rule_type", ["attribute_condition", "metric_condition"])
def test_a_condition_value_that_is_not_finite_is_a_load_error(
    host: Host, rule_type: str, value: Any
) -> None:
    config: dict[str, Any] = {"operator": "in" if isinstance(value, list) else "gt"}
    config["value"] = value
    if rule_type == "attribute_condition":
        config["attribute"] = "x"
    else:
        config["metric"] = "metrics.x"
    with pytest.raises(FlowValidationError) as caught:
        host.load_flow(priority_flow(qualify(rule("r", rule_type, config))))
    assert caught.value.issues[0].path == "nodes[1].config.rules[0].config.value"
    assert "not finite" in caught.value.issues[0].message


# -- at decision time: null plus a trace entry --------------------------------------------------


def test_formula_results_that_are_not_finite_are_null_with_a_trace_entry(host: Host) -> None:
    doc = priority_flow(
        compute(
            ("over", "exp(709) * attributes.x"),
            ("cancel", "attributes.big * 10 - attributes.big * 10"),
            ("ok", "attributes.x * 2"),
        )
    )
    decision = decide(host, doc, [OFFER], attributes={"x": 10, "big": 1e308})
    assert decision.items[0].personalization == {"over": None, "cancel": None, "ok": 20}
    assert [(plugin, hook) for plugin, hook, _ in failures(decision)] == [
        ("formula", "computed field over"),
        ("formula", "computed field cancel"),
    ]
    assert all("not a finite number" in error for _, _, error in failures(decision))
    strict_json(decision)


def test_non_finite_filter_and_expression_rule_results_drop_with_a_reason(host: Host) -> None:
    for middle in (
        {"type": "filter", "id": "f", "config": {"expression": "exp(709) * attributes.x > 1"}},
        qualify(rule("e", "expression", {"expression": "exp(709) * attributes.x > 1"})),
    ):
        decision = decide(host, priority_flow(middle), [OFFER], attributes={"x": 10})
        assert ids(decision) == []
        assert "not a finite number" in json.dumps(strict_json(decision)["trace"])
    assert drops(decision)["a"].reason.startswith("formula failed")


@pytest.mark.parametrize(
    "formula", ["exp(709) * offer.businessValue", "round(priority) * 2 ** 4000"]
)
def test_score_dimension_formulas_that_are_not_finite_fall_back(host: Host, formula: str) -> None:
    """Not finite, or finite but beyond a float (an int of 4000 bits used to crash the score)."""
    doc = flow(inventory(), score(method="formula", formulas={"impact": formula}), rank())
    decision = decide(host, doc, [OFFER])
    assert decision.items[0].score > 0  # impact fell back to businessValue
    assert failures(decision)[0][:2] == ("formula", "score impact formula")
    doc = flow(inventory(), score(method="formula", formulas={"propensity": formula}), rank())
    decision = decide(host, doc, [OFFER])
    assert decision.trace is not None
    assert decision.trace.scores["a"].sources["propensity"] == "offer"
    strict_json(decision)


def test_request_values_that_are_not_finite_are_null_with_a_trace_entry(host: Host) -> None:
    doc = priority_flow(
        qualify(rule("m", "metric_condition", {"metric": "metrics.spend", "operator": "gt",
                                                "value": 1, "missing": "pass"})),
        compute(("x", "coalesce(attributes.x, -1)"), ("s", "metrics.spend")),
    )  # fmt: skip
    decision = decide(host, doc, [OFFER], attributes={"x": 2}, metrics={"spend": math.nan})
    assert ids(decision) == ["a"]  # the NaN metric is missing, and missing passes
    assert decision.items[0].personalization == {"x": 2, "s": None}
    assert [hook for plugin, hook, _ in failures(decision) if plugin == "request"] == [
        "context metrics.spend"
    ]
    trace = strict_json(decision)["trace"]
    assert trace["context"]["metrics.spend"] is None


def test_request_attributes_that_are_not_finite_are_refused(host: Host) -> None:
    # attributes follow the stored-document rules (nextbest.store.document_problem)
    doc = priority_flow(compute(("x", "coalesce(attributes.x, -1)")))
    for attributes, where in (
        ({"x": math.inf}, "at x"),
        ({"n": {"a": [1.0, math.nan]}}, r"at n\.a\[1\]"),
    ):
        with pytest.raises(ValidationError, match=f"not finite {where}"):
            decide(host, doc, [OFFER], attributes=attributes)


def test_offer_attributes_that_are_not_finite_are_a_catalog_load_error(host: Host) -> None:
    offers = [OFFER, {**OFFER, "id": "b", "attributes": {"margin": {"q1": [0.5, math.nan]}}}]
    with pytest.raises(FlowValidationError) as caught:
        host.load_offers(offers)
    assert [(i.path, i.message) for i in caught.value.issues] == [
        ("offers[1].attributes", "holds a number that is not finite at margin.q1[1]")
    ]


def test_a_condition_never_passes_on_a_value_that_is_not_finite() -> None:
    """Rules check too, whatever reaches them (NaN != 1 is true in Python)."""
    from nextbest.builtin.rules import MetricConditionConfig, _Check, _compare

    check = _Check(MetricConditionConfig(metric="offer.attributes.m", operator="neq", value=1))
    assert _compare(check, 0.5) == (True, "")
    passed, reason = _compare(check, math.nan)
    assert not passed and "not a finite number" in reason


# -- plugins ------------------------------------------------------------------------------------


class _Knob(BaseModel):
    model_config = ConfigDict(extra="forbid")
    knob: float | None = None


class _NonFinitePlugin:
    """Every plugin contribution returns or carries a non-finite number."""

    @hookimpl
    def register_functions(self, register: Any) -> None:
        register("blowup", lambda x: math.inf)
        register("nan_list", lambda x: [1.0, math.nan])

    @hookimpl
    def register_context(self, register: Any) -> None:
        register(
            ContextProvider(
                "weird",
                lambda req: {"customer.weird": math.nan, "customer.fine": 2.0},
                names=frozenset({"customer.weird", "customer.fine"}),
            )
        )

    @hookimpl
    def register_rule_types(self, register: Any) -> None:
        def evaluate(cfg: _Knob, ctx: Any) -> RuleOutcome:
            return RuleOutcome(False, reason="nope", inputs={"seen": math.inf, "l": [math.nan]})

        register(RuleType("nan_inputs", _Knob, evaluate, "eligibility"))

    @hookimpl
    def register_value_providers(self, register: Any) -> None:
        register(ValueProvider("nan_term", "impact", _Knob, lambda req: math.nan))

    @hookimpl
    def pre_score(self, decision: Any, candidates: Any) -> None:
        candidates[0].adjust_fit(math.nan, "broken")


def test_plugin_numbers_that_are_not_finite_are_plugin_failures(make_host: Any) -> None:
    h = make_host(_NonFinitePlugin())
    doc = flow(
        inventory(),
        qualify(rule("n", "nan_inputs", {}, scope="offer", scopeId="b")),
        compute(
            ("f", "blowup(1)"),
            ("l", "nan_list(1)"),
            ("w", "customer.weird"),
            ("ok", "customer.fine"),
        ),
        extension("pre_score"),
        score(method="formula", knob=1.0),
        rank(),
    )
    offers = [OFFER, {**OFFER, "id": "b"}]
    decision = decide(h, doc, offers)
    assert ids(decision) == ["a"]
    assert decision.items[0].personalization == {"f": None, "l": None, "w": None, "ok": 2.0}
    hooks = {(plugin, hook) for plugin, hook, _ in failures(decision)}
    assert hooks == {
        ("_NonFinitePlugin", "register_context"),
        ("_NonFinitePlugin", "function blowup"),
        ("_NonFinitePlugin", "function nan_list"),
        ("_NonFinitePlugin", "pre_score"),
        ("_NonFinitePlugin", "value provider nan_term"),
    }
    data = strict_json(decision)
    assert data["trace"]["dropped"][0]["inputs"] == {"seen": None, "l": [None]}
    assert data["trace"]["scores"]["a"]["fitMultiplier"] == 1.0  # the NaN adjustment undone
    # the flow's policy applies to each of them
    for field in ("blowup(1)", "customer.weird"):
        strict = flow(inventory(), compute(("f", field)), score(method="priority_weighted"),
                      rank(), settings={"onPluginError": "fail"})  # fmt: skip
        with pytest.raises(DecisionError, match="not a finite number"):
            decide(h, strict, [OFFER])


class _FreeForm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: Any = None


class _FreeFormRule:
    @hookimpl
    def register_rule_types(self, register: Any) -> None:
        register(RuleType("free_form", _FreeForm, lambda cfg, ctx: True, "eligibility"))


def test_a_flow_document_is_checked_like_a_stored_one(make_host: Any) -> None:
    """Free-form parts of a flow (a plugin's config) get the store's document rules, so a flow
    that validates can also be saved: finite numbers, bounded depth."""
    h = make_host(_FreeFormRule())
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    h.load_flow(priority_flow(qualify(rule("r", "free_form", {"data": {"a": [1.5]}}))))
    for data, mentions in [
        ({"a": [1.0, math.inf]}, "not finite at nodes[1].config.rules[0].config.data.a[1]"),
        (deep, "nested more than 32 levels deep"),
    ]:
        with pytest.raises(FlowValidationError) as caught:
            h.load_flow(priority_flow(qualify(rule("r", "free_form", {"data": data}))))
        assert [(i.path, mentions in i.message) for i in caught.value.issues] == [("", True)]
