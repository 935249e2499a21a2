"""Hostile or broken input must not hang or crash a decision: formula DoS, regex backtracking,
plugins returning the wrong things, negative exponent terms, plugin formula functions under the
failure policy, and flow validation reporting as much as it can at once."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
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
    scores,
)
from pydantic import BaseModel, ConfigDict

from nextbest import (
    ContextProvider,
    DecisionError,
    FlowValidationError,
    Host,
    PluginError,
    RuleOutcome,
    RuleType,
    ValueProvider,
    hookimpl,
)
from nextbest.cli import build_cli
from nextbest.expressions import DEFAULT_FUNCTIONS, EvaluationError, compile_expression

OFFERS = [
    {"id": "a", "priority": 80, "weight": 50, "businessValue": 100, "propensity": 0.5},
    {"id": "b", "priority": 60, "weight": 50, "businessValue": 0, "propensity": 0.5},
]


@pytest.mark.timeout(5)
def test_round_with_huge_ndigits_fails_fast() -> None:
    expr = compile_expression("round(x, -1000000000)", functions=DEFAULT_FUNCTIONS)
    with pytest.raises(EvaluationError, match="ndigits"):
        expr.evaluate({"x": 1})
    assert compile_expression("round(x, 2)", functions=DEFAULT_FUNCTIONS).evaluate(
        {"x": 1.237}
    ) == (1.24)


def _regex_flow(pattern: str, attribute: str = "email") -> dict[str, Any]:
    return flow(
        inventory(),
        qualify(
            rule(
                "r",
                "attribute_condition",
                {"attribute": attribute, "operator": "regex", "value": pattern},
            )
        ),
        score(method="priority_weighted"),
        rank(),
    )


@pytest.mark.parametrize(
    ("pattern", "matching", "other"),
    [
        (r"^(a+)+$", "aaaa", "aaa!"),
        (r"(.*,)*x", "a,b,x", ",,,,"),
        (r"(?:\w+\.)+com", "mail.example.com", "a.b.org"),
        (r"^\d{3}-\d{4}$", "555-1234", "5551234"),
    ],
)
def test_regex_with_nested_repeats_loads_and_matches(
    host: Host, pattern: str, matching: str, other: str
) -> None:
    """RE2 matches without backtracking, so nested repeats are no longer refused."""
    doc = _regex_flow(pattern)
    assert ids(decide(host, doc, OFFERS[:1], attributes={"email": matching})) == ["a"]
    assert ids(decide(host, doc, OFFERS[:1], attributes={"email": other})) == []


@pytest.mark.parametrize(
    ("pattern", "mentions"),
    [
        (r"(a)\1", "no backreferences"),  # RE2 cannot match backreferences in linear time
        (r"a(?=b)", "lookaround"),
        (r"(?<!x)y", "lookaround"),
        ("(", "missing )"),
        (r"(a|b)*a(a|b){600}", "too complex"),  # linear, but 600 states per character
        (r"\pL+", "too complex"),
        ("a" * 1001, "too long"),
    ],
)
def test_regex_that_re2_refuses_is_a_load_error_naming_the_field(
    host: Host, pattern: str, mentions: str
) -> None:
    with pytest.raises(FlowValidationError) as caught:
        host.load_flow(_regex_flow(pattern))
    issue = caught.value.issues[0]
    assert issue.path == "nodes[1].config.rules[0].config.value"
    assert mentions in issue.message


class _BrokenText:
    """A context provider answering text that is not valid Unicode (requests cannot carry it:
    their attributes follow the stored-document rules)."""

    @hookimpl
    def register_context(self, register: Any) -> None:
        register(ContextProvider("broken", lambda req: {"broken.email": "\ud800abc"},
                                 names=frozenset({"broken.email"})))  # fmt: skip


def test_regex_against_text_that_is_not_valid_unicode_fails_the_condition(make_host: Any) -> None:
    h = make_host(_BrokenText())
    condition = {"metric": "broken.email", "operator": "regex", "value": "abc"}
    doc = flow(
        inventory(),
        qualify(rule("r", "metric_condition", condition)),
        score(method="priority_weighted"),
        rank(),
    )
    decision = decide(h, doc, OFFERS[:1])
    assert ids(decision) == []
    assert "cannot compare" in drops(decision)["a"].reason


def test_regex_against_a_very_long_value_fails_the_condition(host: Host) -> None:
    doc = _regex_flow("^[a-z]+$", attribute="code")
    assert ids(decide(host, doc, OFFERS[:1], attributes={"code": "abc"})) == ["a"]
    long = decide(host, doc, OFFERS[:1], attributes={"code": "a" * 5000})
    assert ids(long) == []
    assert "longer than 1000" in drops(long)["a"].reason


class _Knob(BaseModel):
    model_config = ConfigDict(extra="forbid")
    knob: float | None = None


class _NegativeTerm:
    @hookimpl
    def register_value_providers(self, register: Any) -> None:
        register(ValueProvider("neg", "impact", _Knob, lambda req: -0.5))


def test_negative_exponent_term_never_divides_by_a_zero_factor(make_host: Any) -> None:
    h = make_host(_NegativeTerm())
    doc = flow(inventory(), score(method="formula", knob=1.0), rank())
    for explain in (False, True):
        decision = decide(h, doc, OFFERS, explain=explain)
        # the impact exponent 0.3 - 0.5 is clamped to 0: b's zero impact no longer matters
        assert ids(decision) == ["a", "b"]
    trace = decide(h, doc, OFFERS).trace
    assert trace is not None and trace.scores["a"].weights["impact"] == 0.0


class _BadReturns:
    @hookimpl
    def register_context(self, register: Any) -> None:
        register(
            ContextProvider(
                "listy", lambda req: ["not", "a", "mapping"], names=frozenset({"customer.listy"})
            )
        )

    @hookimpl
    def register_rule_types(self, register: Any) -> None:
        register(
            RuleType(
                "halfish", _Knob, lambda cfg, ctx: RuleOutcome(False, multiplier="half"), "match"
            )
        )  # type: ignore[arg-type]
        register(RuleType("weird", _Knob, lambda cfg, ctx: "yes", "eligibility"))  # type: ignore[arg-type]


def test_plugins_returning_the_wrong_things_are_isolated(make_host: Any) -> None:
    h = make_host(_BadReturns())
    doc = flow(
        inventory(),
        qualify(
            rule("h", "halfish", {}, scope="offer", scopeId="a"),
            rule("w", "weird", {}, scope="offer", scopeId="b"),
        ),
        compute(("v", "coalesce(customer.listy, 1)")),
        score(method="priority_weighted"),
        rank(),
    )
    decision = decide(h, doc, OFFERS)
    assert ids(decision) == []  # both offers dropped, the decision completed
    failures = {(f.plugin, f.offer_id) for f in decision.trace.failures}
    assert ("_BadReturns", "a") in failures and ("_BadReturns", "b") in failures
    assert any(f.hook == "register_context" for f in decision.trace.failures)
    with pytest.raises(DecisionError, match="returned"):
        decide(h, {**doc, "settings": {"onPluginError": "fail"}}, OFFERS)


class _BoomFunction:
    @hookimpl
    def register_functions(self, register: Any) -> None:
        def boom(x: Any) -> Any:
            raise RuntimeError("pricing service down")

        register("boom", boom)


@pytest.mark.parametrize("where", ["compute", "filter", "expression"])
def test_plugin_function_failures_follow_the_plugin_policy(make_host: Any, where: str) -> None:
    h = make_host(_BoomFunction())
    if where == "compute":
        middle = [compute(("m", "boom(1)"))]
    elif where == "filter":
        middle = [{"type": "filter", "id": "f", "config": {"expression": "boom(1) > 0"}}]
    else:
        middle = [qualify(rule("e", "expression", {"expression": "boom(1) > 0"}))]
    doc = flow(inventory(), *middle, score(method="priority_weighted"), rank())
    decision = decide(h, doc, OFFERS[:1])
    assert [(f.plugin, f.hook) for f in decision.trace.failures] == [
        ("_BoomFunction", "function boom")
    ]
    with pytest.raises(DecisionError, match="pricing service down"):
        decide(h, {**doc, "settings": {"onPluginError": "fail"}}, OFFERS[:1])


def test_builtin_function_errors_stay_formula_errors_under_fail_policy(host: Host) -> None:
    doc = flow(
        inventory(),
        compute(("m", "log(0)")),
        score(method="priority_weighted"),
        rank(),
        settings={"onPluginError": "fail"},
    )
    decision = decide(host, doc, OFFERS[:1])
    assert decision.items[0].personalization == {"m": None}
    assert [f.plugin for f in decision.trace.failures] == ["formula"]


class _DropThenRaise:
    @hookimpl
    def pre_score(self, decision: Any, candidates: Any) -> None:
        candidates[0].drop("half-done")
        candidates[1].adjust_fit(0.2, "half-done")
        raise RuntimeError("crashed midway")


def test_failing_pre_score_plugin_changes_are_undone(make_host: Any) -> None:
    h = make_host(_DropThenRaise())
    doc = flow(inventory(), extension("pre_score"), score(method="priority_weighted"), rank())
    decision = decide(h, doc, OFFERS)
    assert ids(decision) == ["a", "b"]
    assert scores(decision) == pytest.approx({"a": 0.4, "b": 0.3})  # no drop, no fit change


class _RaisingRegistration:
    @hookimpl
    def register_functions(self, register: Any) -> None:
        raise KeyError("missing config")


def test_a_plugin_failing_to_register_is_named() -> None:
    with pytest.raises(PluginError, match=r"_RaisingRegistration.*register_functions"):
        Host(plugins=[_RaisingRegistration()])


def test_validate_reports_structure_order_and_formula_errors_at_once(tmp_path: Any) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "key: x\nversion: 2\nnodes:\n"
        "  - {type: score, id: s}\n"
        "  - {type: inventory, id: inv}\n"
        "  - type: qualify\n    id: q\n    config:\n      rules:\n"
        "        - {id: r0, ruleType: expression, config: {expression: 'x +'}}\n"
        "        - {id: r1, ruleType: attribute_condition, config: {attribute: a, operator: gt}}\n"
    )
    result = CliRunner().invoke(build_cli(), ["validate", str(path)])
    assert result.exit_code == 1
    out = result.output
    assert "nodes[2].config.rules[1].config.value" in out  # structure
    assert "node 'inv': the inventory node must be first" in out  # order
    assert "nodes[2].config.rules[0].config.expression" in out  # formula syntax


def test_validate_never_follows_a_document_that_is_a_string(tmp_path: Any) -> None:
    target = tmp_path / "other.yaml"
    target.write_text("key: x\n")
    path = tmp_path / "s.yaml"
    path.write_text(f'"{target}"\n')
    result = CliRunner().invoke(build_cli(), ["validate", str(path)])
    assert result.exit_code == 1
    assert "must be a mapping" in result.output
