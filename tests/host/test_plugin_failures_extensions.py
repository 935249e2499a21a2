"""Plugins raising during a decision (isolate vs fail), and the extension-point hooks."""

from __future__ import annotations

from typing import Any

import pytest
from hostkit import (
    CountingPlugin,
    counting,
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

from nextbest import ContextProvider, DecisionError, ValueProvider, hookimpl

OFFERS = [
    {"id": "a", "priority": 80, "weight": 50, "businessValue": 100},
    {"id": "b", "priority": 60, "weight": 50, "businessValue": 50},
    {"id": "c", "priority": 40, "weight": 50, "businessValue": 80},
]
FAIL = {"settings": {"onPluginError": "fail"}}


def pw_flow(*middle: dict[str, Any], after_rank: tuple = (), **extra: Any) -> dict[str, Any]:
    return flow(
        inventory(), *middle, score(method="priority_weighted"), rank(), *after_rank, **extra
    )


# -- raising plugins --------------------------------------------------------------------------
def test_raising_rule_evaluator_drops_the_offer(make_host: Any) -> None:
    h = make_host(CountingPlugin())
    doc = pw_flow(qualify(counting("boom", fail=True, scope="offer", scopeId="b")))
    decision = decide(h, doc, OFFERS)
    assert ids(decision) == ["a", "c"]
    assert decision.trace is not None
    (failure,) = decision.trace.failures
    assert failure.plugin == "CountingPlugin"
    assert failure.hook == "rule type counting"
    assert failure.error == "RuntimeError: counting rule boom exploded"
    assert (failure.offer_id, failure.action) == ("b", "offer dropped")
    drop = drops(decision)["b"]
    assert (drop.rule_id, drop.plugin) == ("boom", "CountingPlugin")
    assert "exploded" in drop.reason
    quiet = decide(h, doc, OFFERS, explain=False)  # isolation does not depend on the trace
    assert ids(quiet) == ["a", "c"] and quiet.trace is None


def test_raising_rule_evaluator_fails_the_decision_under_fail_policy(make_host: Any) -> None:
    h = make_host(CountingPlugin())
    doc = pw_flow(qualify(counting("boom", fail=True)), **FAIL)
    with pytest.raises(DecisionError) as info:
        decide(h, doc, OFFERS)
    message = str(info.value)
    assert "'CountingPlugin'" in message and "rule type counting" in message
    assert "exploded" in message and "onPluginError: fail" in message


class KnobConfig(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    knob: float


class FlakyValues:
    """A value provider that raises for offer b and adds 1.0 to impact's exponent otherwise."""

    @hookimpl
    def register_value_providers(self, register: Any) -> None:
        register(ValueProvider("flaky", "impact", KnobConfig, self._compute))

    @staticmethod
    def _compute(req: Any) -> float | None:
        if req.offer.id == "b":
            raise ValueError("no value for b")
        return req.config.knob


def test_raising_value_provider_skips_its_term(make_host: Any) -> None:
    h = make_host(FlakyValues())
    doc = flow(inventory(), score(knob=1.0), rank())
    decision = decide(h, doc, OFFERS)
    trace = decision.trace
    assert trace is not None
    # b keeps the plain impact exponent (neutral: no term), c's exponent is 0.3 + 1.0
    assert trace.scores["b"].weights["impact"] == pytest.approx(0.3)
    assert trace.scores["c"].weights["impact"] == pytest.approx(1.3)
    b_plain = 0.5**0.4 * 1.0**0.2 * 0.5**0.3 * 0.6**0.1
    assert scores(decision)["b"] == pytest.approx(b_plain)
    (failure,) = trace.failures
    assert (failure.plugin, failure.offer_id) == ("FlakyValues", "b")
    assert "flaky" in failure.hook and failure.error == "ValueError: no value for b"
    assert "neutral" in failure.action
    with pytest.raises(DecisionError, match="FlakyValues"):
        decide(h, flow(inventory(), score(knob=1.0), rank(), **FAIL), OFFERS)


class BrokenContext:
    @hookimpl
    def register_context(self, register: Any) -> None:
        register(ContextProvider("broken", self._resolve, prefixes=("customer.broken.",)))

    @staticmethod
    def _resolve(ctx: Any) -> dict[str, Any]:
        raise ConnectionError("store unreachable")


def test_raising_context_provider_gives_null_names(make_host: Any) -> None:
    h = make_host(BrokenContext())
    doc = pw_flow(
        qualify(rule("r", "expression", {"expression": "coalesce(customer.broken.x, 1) == 1"}))
    )
    decision = decide(h, doc, OFFERS)
    assert ids(decision) == ["a", "b", "c"]
    trace = decision.trace
    assert trace is not None
    (failure,) = trace.failures
    assert (failure.plugin, failure.hook) == ("BrokenContext", "register_context")
    assert failure.error == "ConnectionError: store unreachable"
    assert failure.action == "names resolve to null"
    assert trace.context == {"customer.broken.x": None}
    with pytest.raises(DecisionError, match="store unreachable"):
        decide(h, {**doc, **FAIL}, OFFERS)


class RaisingExtensions:
    @hookimpl
    def pre_score(self, decision: Any, candidates: Any) -> None:
        raise RuntimeError("pre")

    @hookimpl
    def score_override(self, decision: Any, candidate: Any) -> float | None:
        raise RuntimeError("override")

    @hookimpl
    def post_rank(self, decision: Any, ranked: Any) -> list[Any] | None:
        raise RuntimeError("post")


def test_raising_extension_hooks_are_ignored(make_host: Any) -> None:
    h = make_host(RaisingExtensions())
    doc = flow(
        inventory(),
        extension("pre_score"),
        score(method="priority_weighted"),
        extension("score_override"),
        rank(),
        extension("post_rank"),
    )
    decision = decide(h, doc, OFFERS)
    assert ids(decision) == ["a", "b", "c"]
    assert scores(decision) == pytest.approx({"a": 0.4, "b": 0.3, "c": 0.2})
    assert decision.trace is not None
    got = [(f.plugin, f.hook, f.offer_id, f.action) for f in decision.trace.failures]
    assert got == [
        ("RaisingExtensions", "pre_score", None, "hook ignored (its changes undone)"),
        ("RaisingExtensions", "score_override", "a", "score kept"),
        ("RaisingExtensions", "score_override", "b", "score kept"),
        ("RaisingExtensions", "score_override", "c", "score kept"),
        ("RaisingExtensions", "post_rank", None, "order kept"),
    ]
    with pytest.raises(DecisionError, match="pre_score"):
        decide(h, {**doc, **FAIL}, OFFERS)


# -- extension points -------------------------------------------------------------------------
class Shaper:
    """pre_score drops c and halves b's fit; reads the request through the DecisionView."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}

    @hookimpl
    def pre_score(self, decision: Any, candidates: Any) -> None:
        self.seen = {
            "tenant": decision.tenant_id,
            "flow": decision.flow_key,
            "customer": decision.request.customer_id,
            "tier": decision.get("attributes.tier"),
            "ids": [c.offer_id for c in candidates],
        }
        for cand in candidates:
            if cand.offer_id == "c":
                cand.drop("c is out of stock")
            elif cand.offer_id == "b":
                cand.adjust_fit(0.5, "b is seasonal")


def test_pre_score_drop_and_adjust_fit(make_host: Any) -> None:
    shaper = Shaper()
    h = make_host(shaper)
    doc = flow(
        inventory(), extension("pre_score", "shape"), score(method="priority_weighted"), rank()
    )
    decision = decide(h, doc, OFFERS, attributes={"tier": "gold"})
    assert shaper.seen == {
        "tenant": "t1",
        "flow": "t",
        "customer": "c1",
        "tier": "gold",
        "ids": ["a", "b", "c"],
    }
    assert scores(decision) == pytest.approx({"a": 0.4, "b": 0.3 * 0.5})
    drop = drops(decision)["c"]
    assert (drop.node_id, drop.reason) == ("shape", "c is out of stock")
    assert (drop.stage, drop.plugin) == ("pre_score", "Shaper")
    assert decision.trace is not None
    assert decision.trace.scores["b"].fit_multiplier == 0.5
    assert decision.trace.adjustments["b"] == [
        {
            "nodeId": "shape",
            "ruleId": None,
            "stage": "pre_score",
            "multiplier": 0.5,
            "fitMultiplier": 0.5,
            "reason": "b is seasonal",
            "inputs": {},
            "plugin": "Shaper",
        }
    ]


def test_adjust_fit_clamps_like_soft_rules() -> None:
    from nextbest import Candidate, Offer

    cand = Candidate(Offer(id="x"))
    cand.adjust_fit(0.01)
    assert cand.fit_multiplier == 0.1
    cand.adjust_fit(50)
    assert cand.fit_multiplier == 1.0


class Override:
    def __init__(self, target: str, value: float | None) -> None:
        self.target, self.value = target, value

    @hookimpl
    def score_override(self, decision: Any, candidate: Any) -> float | None:
        return self.value if candidate.offer_id == self.target else None


class OverrideToo(Override):
    pass


def test_score_override_replaces_score_first_answer_wins(make_host: Any) -> None:
    h = make_host(Override("c", 0.9), OverrideToo("c", 0.05))
    doc = flow(inventory(), score(method="priority_weighted"), extension("score_override"), rank())
    decision = decide(h, doc, OFFERS)
    assert ids(decision) == ["c", "a", "b"]
    assert scores(decision)["c"] == 0.9  # the plugin loaded first answers first
    assert decision.trace is not None
    assert decision.trace.scores["c"].sources["override"] == "Override"
    assert decision.trace.scores["c"].score == 0.9


def test_score_override_rejects_negative_scores(make_host: Any) -> None:
    h = make_host(Override("c", -1.0))
    doc = flow(inventory(), score(method="priority_weighted"), extension("score_override"), rank())
    decision = decide(h, doc, OFFERS)
    assert scores(decision)["c"] == pytest.approx(0.2)
    assert decision.trace is not None and decision.trace.failures[0].action == "score kept"


class Reverse:
    @hookimpl
    def post_rank(self, decision: Any, ranked: Any) -> list[Any] | None:
        return list(reversed(ranked))[:2]


class DropFirst:
    @hookimpl
    def post_rank(self, decision: Any, ranked: Any) -> list[Any] | None:
        return ranked[1:]


class Foreign:
    @hookimpl
    def post_rank(self, decision: Any, ranked: Any) -> list[Any] | None:
        from nextbest import Candidate, Offer

        return [Candidate(Offer(id="intruder")), *ranked]


def test_post_rank_reorders_in_plugin_order(make_host: Any) -> None:
    doc = pw_flow(after_rank=(extension("post_rank"),))
    decision = decide(make_host(Reverse(), DropFirst()), doc, OFFERS)
    # Reverse first: [c, b]; then DropFirst: [b]
    assert ids(decision) == ["b"]
    assert [i.rank for i in decision.items] == [1]
    assert ids(decide(make_host(DropFirst(), Reverse()), doc, OFFERS)) == ["c", "b"]


def test_post_rank_with_foreign_candidates_keeps_order(make_host: Any) -> None:
    decision = decide(make_host(Foreign()), pw_flow(after_rank=(extension("post_rank"),)), OFFERS)
    assert ids(decision) == ["a", "b", "c"]
    assert decision.trace is not None
    assert decision.trace.failures[0].plugin == "Foreign"
    assert "subset" in decision.trace.failures[0].error
