"""Score methods checked against hand-computed numbers, value providers, and ranking."""

from __future__ import annotations

from typing import Any

import pytest
from hostkit import decide, drops, flow, ids, inventory, qualify, rank, rule, score, scores
from pydantic import BaseModel, ConfigDict, Field

from nextbest import (
    ContextProvider,
    ContextRequest,
    FlowValidationError,
    Host,
    ValueProvider,
    ValueRequest,
    hookimpl,
)

# a fits the web channel; b is app-only. Largest businessValue among candidates: 200.
A = {"id": "a", "priority": 80, "weight": 50, "propensity": 0.5, "businessValue": 200,
     "channels": ["web"], "category": "cards"}  # fmt: skip
B = {"id": "b", "priority": 50, "weight": 40, "propensity": 0.2, "businessValue": 100,
     "channels": ["app"], "category": "loans"}  # fmt: skip


def prie(
    p: float, r: float, i: float, e: float, w: tuple[float, ...] = (0.4, 0.2, 0.3, 0.1)
) -> float:
    return p ** w[0] * r ** w[1] * i ** w[2] * e ** w[3]


def run(h: Host, offers: list[dict], *, profiles: dict | None = None, **cfg: Any) -> Any:
    extra = {"profiles": profiles} if profiles else {}
    doc = flow(inventory(), score(**cfg), rank(), **extra)
    return decide(h, doc, offers, channel="web")


# -- simple methods -----------------------------------------------------------------------------
def test_priority_weighted(host: Host) -> None:
    decision = run(host, [A, B], method="priority_weighted")
    assert scores(decision) == pytest.approx({"a": 0.8 * 0.5, "b": 0.5 * 0.4})
    assert decision.trace is not None
    assert decision.trace.scores["a"].factors == {"base": pytest.approx(0.4)}


def test_propensity_method_uses_offer_then_default(host: Host) -> None:
    no_prop = {**B, "id": "n", "propensity": None}
    decision = run(host, [A, no_prop], method="propensity")
    assert scores(decision) == pytest.approx({"a": 0.5, "n": 0.5})
    decision = run(host, [A, no_prop], method="propensity", defaultPropensity=0.1)
    assert scores(decision) == pytest.approx({"a": 0.5, "n": 0.1})


# -- PRIE ---------------------------------------------------------------------------------------
def test_prie_default_weights(host: Host) -> None:
    decision = run(host, [A, B])
    assert scores(decision) == pytest.approx(
        {"a": prie(0.5, 1.0, 1.0, 0.8), "b": prie(0.2, 0.5, 0.5, 0.5)}
    )
    trace = decision.trace
    assert trace is not None
    b = trace.scores["b"]
    assert b.method == "formula"
    assert b.factors == pytest.approx(
        {"propensity": 0.2, "relevance": 0.5, "impact": 0.5, "emphasis": 0.5}
    )
    assert b.weights == pytest.approx(
        {"propensity": 0.4, "relevance": 0.2, "impact": 0.3, "emphasis": 0.1}
    )
    assert b.fit_multiplier == 1.0
    assert b.sources == {
        "propensity": "offer",
        "relevance": "channel",
        "impact": "businessValue",
        "emphasis": "priority",
    }


def test_prie_max_value_normalises_impact(host: Host) -> None:
    decision = run(host, [A, B], maxValue=400)
    assert scores(decision) == pytest.approx(
        {"a": prie(0.5, 1.0, 0.5, 0.8), "b": prie(0.2, 0.5, 0.25, 0.5)}
    )
    decision = run(host, [A, B], maxValue=150)  # above maxValue: capped at 1
    assert scores(decision)["a"] == pytest.approx(prie(0.5, 1.0, 1.0, 0.8))


def test_prie_largest_candidate_is_taken_after_filtering(host: Host) -> None:
    decision = run(host, [B])  # alone, b's 100 is the largest value
    assert scores(decision) == pytest.approx({"b": prie(0.2, 0.5, 1.0, 0.5)})


def test_prie_relevance_penalty_and_placement(host: Host) -> None:
    decision = run(host, [A, B], relevancePenalty=0.2)
    assert scores(decision)["b"] == pytest.approx(prie(0.2, 0.2, 0.5, 0.5))
    placed = {**A, "placements": ["hero"]}
    doc = flow(inventory(), score(), rank())
    other = decide(host, doc, [placed], channel="web", placement="footer")
    assert scores(other) == pytest.approx({"a": prie(0.5, 0.5, 1.0, 0.8)})
    undeclared = {**A, "channels": []}
    assert scores(run(host, [undeclared])) == pytest.approx({"a": prie(0.5, 1.0, 1.0, 0.8)})


def test_prie_default_propensity_without_offer_propensity(host: Host) -> None:
    decision = run(host, [{**A, "propensity": None}])
    assert scores(decision) == pytest.approx({"a": prie(0.5, 1.0, 1.0, 0.8)})
    assert decision.trace is not None
    assert decision.trace.scores["a"].sources["propensity"] == "default"


@pytest.mark.parametrize(
    ("change", "dimension"),
    [
        ({"propensity": 0.0}, "propensity"),
        ({"businessValue": 0}, "impact"),
        ({"priority": 0}, "emphasis"),
    ],
)
def test_prie_zero_factor_eliminates(host: Host, change: dict, dimension: str) -> None:
    zero = {**B, "id": "z", "channels": [], **change}
    decision = run(host, [A, zero])
    assert ids(decision) == ["a"]
    drop = drops(decision)["z"]
    assert drop.node_id == "sc"
    assert f"{dimension} factor is 0" in drop.reason


def test_prie_zero_weight_ignores_zero_factor(host: Host) -> None:
    zero = {**A, "id": "z", "priority": 0}
    weights = {"propensity": 0.5, "relevance": 0.2, "impact": 0.3, "emphasis": 0.0}
    decision = run(host, [zero], weights=weights)
    assert scores(decision) == pytest.approx({"z": 0.5**0.5})


def test_prie_fit_multiplier_multiplies(host: Host) -> None:
    soft = rule("soft", "segment_required", {"requiredSegments": ["gold"]}, stage="match")
    doc = flow(inventory(), qualify({**soft, "multiplier": 0.6}), score(), rank())
    decision = decide(host, doc, [A], channel="web")
    assert scores(decision) == pytest.approx({"a": prie(0.5, 1.0, 1.0, 0.8) * 0.6})


def test_prie_profile_with_business_names(host: Host) -> None:
    profiles = {"growth": {"conversion": 0.5, "recency": 0.1, "margin": 0.3, "fairness": 0.1}}
    decision = run(host, [A, B], profiles=profiles, profile="growth")
    w = (0.5, 0.1, 0.3, 0.1)
    assert scores(decision) == pytest.approx(
        {"a": prie(0.5, 1.0, 1.0, 0.8, w), "b": prie(0.2, 0.5, 0.5, 0.5, w)}
    )
    assert decision.trace is not None
    assert decision.trace.scores["a"].profile == "growth"


def test_prie_partial_profile_takes_defaults_for_the_rest(host: Host) -> None:
    weights = {"propensity": 0.3, "relevance": 0.3}  # + impact 0.3, emphasis 0.1
    decision = run(host, [B], weights=weights)
    assert scores(decision) == pytest.approx({"b": prie(0.2, 0.5, 1.0, 0.5, (0.3, 0.3, 0.3, 0.1))})


def test_strategy_overrides_by_category_and_channel(host: Host) -> None:
    profiles = {
        "value": {"propensity": 0.1, "relevance": 0.1, "impact": 0.7, "emphasis": 0.1},
        "mobile": {"propensity": 0.7, "relevance": 0.1, "impact": 0.1, "emphasis": 0.1},
    }
    overrides = [{"category": "loans", "profile": "value"}, {"channel": "app", "profile": "mobile"}]
    doc = flow(inventory(), score(strategyOverrides=overrides), rank(), profiles=profiles)
    on_web = decide(host, doc, [A, B], channel="web")
    assert scores(on_web) == pytest.approx(
        {"a": prie(0.5, 1.0, 1.0, 0.8), "b": prie(0.2, 0.5, 0.5, 0.5, (0.1, 0.1, 0.7, 0.1))}
    )
    assert on_web.trace is not None
    assert on_web.trace.scores["b"].profile == "value"
    assert on_web.trace.scores["a"].profile is None
    on_app = decide(host, doc, [A, B], channel="app")  # category wins over channel for b
    assert scores(on_app) == pytest.approx(
        {
            "a": prie(0.5, 0.5, 1.0, 0.8, (0.7, 0.1, 0.1, 0.1)),
            "b": prie(0.2, 1.0, 0.5, 0.5, (0.1, 0.1, 0.7, 0.1)),
        }
    )


@pytest.mark.parametrize(
    ("doc_extra", "score_cfg", "path"),
    [
        ({}, {"weights": {"propensity": 0.5}}, "nodes[1].config.weights"),
        ({"profiles": {"p": {"margin": 0.9}}}, {"profile": "p"}, "profiles.p"),
    ],
)
def test_weights_must_sum_to_one(host: Host, doc_extra: dict, score_cfg: dict, path: str) -> None:
    with pytest.raises(FlowValidationError) as info:
        host.load_flow(flow(inventory(), score(**score_cfg), rank(), **doc_extra))
    (issue,) = info.value.issues
    assert issue.path == path
    assert "must sum to 1" in issue.message


def test_unknown_profile_and_mixed_names_are_load_errors(host: Host) -> None:
    doc = flow(
        inventory(),
        score(profile="nope", strategyOverrides=[{"channel": "web", "profile": "gone"}]),
        rank(),
        profiles={"mixed": {"propensity": 0.4, "margin": 0.6}},
    )
    with pytest.raises(FlowValidationError) as info:
        host.load_flow(doc)
    assert [i.path for i in info.value.issues] == ["profiles.mixed"]
    del doc["profiles"]
    with pytest.raises(FlowValidationError) as info:
        host.load_flow(doc)
    assert [i.path for i in info.value.issues] == [
        "nodes[1].config.profile",
        "nodes[1].config.strategyOverrides[0].profile",
    ]


# -- value providers ----------------------------------------------------------------------------
class BoostConfig(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")
    boost_weight: float = Field(alias="boostWeight", ge=0, le=1)


class BoostPlugin:
    """Adds ``impact^(Wi + boostWeight * customer.boost / 100)``; no boost: no term."""

    @hookimpl
    def register_context(self, register: Any) -> None:
        register(ContextProvider("boost", self._resolve, names=frozenset({"customer.boost"})))

    @hookimpl
    def register_value_providers(self, register: Any) -> None:
        register(
            ValueProvider(
                "boost",
                "impact",
                BoostConfig,
                self._compute,
                requires=lambda cfg: ("customer.boost",),
            )
        )

    @staticmethod
    def _resolve(ctx: ContextRequest) -> dict[str, Any]:
        return {"customer.boost": ctx.request.metrics.get("boost")}

    @staticmethod
    def _compute(req: ValueRequest) -> float | None:
        boost = req.lookup("customer.boost")
        if boost is None:
            return None
        return req.config.boost_weight * boost / 100  # type: ignore[attr-defined]


def test_value_provider_adds_exponent_term(make_host: Any) -> None:
    h = make_host(BoostPlugin())
    doc = flow(inventory(), score(boostWeight=0.5), rank())
    compiled = h.load_flow(doc)
    assert "customer.boost" in compiled.customer_names
    decision = decide(h, doc, [A, B], channel="web", metrics={"boost": 60})
    b_exp = (0.4, 0.2, 0.3 + 0.5 * 60 / 100, 0.1)
    assert scores(decision) == pytest.approx(
        {"a": prie(0.5, 1.0, 1.0, 0.8), "b": prie(0.2, 0.5, 0.5, 0.5, b_exp)}
    )
    assert decision.trace is not None
    b = decision.trace.scores["b"]
    assert b.weights["impact"] == pytest.approx(0.6)
    assert b.terms == [
        {"provider": "boost", "plugin": "BoostPlugin", "dimension": "impact", "exponent": 0.3}
    ]


def test_value_provider_none_skips_the_term(make_host: Any) -> None:
    h = make_host(BoostPlugin())
    decision = decide(h, flow(inventory(), score(boostWeight=0.5), rank()), [A, B], channel="web")
    assert scores(decision)["b"] == pytest.approx(prie(0.2, 0.5, 0.5, 0.5))
    assert decision.trace is not None and decision.trace.scores["b"].terms == []


def test_value_provider_runs_only_when_configured(make_host: Any) -> None:
    h = make_host(BoostPlugin())
    decision = decide(h, flow(), [A, B], channel="web", metrics={"boost": 60})
    assert scores(decision)["b"] == pytest.approx(prie(0.2, 0.5, 0.5, 0.5))
    assert "customer.boost" not in h.load_flow(flow()).customer_names


def test_value_provider_field_in_profile_wins_over_node(make_host: Any) -> None:
    h = make_host(BoostPlugin())
    profiles = {"p": {"boostWeight": 1.0}}
    doc = flow(inventory(), score(profile="p", boostWeight=0.1), rank(), profiles=profiles)
    decision = decide(h, doc, [B], channel="web", metrics={"boost": 50})
    assert scores(decision) == pytest.approx({"b": prie(0.2, 0.5, 1.0, 0.5)})  # I = 1 alone
    assert decision.trace is not None
    assert decision.trace.scores["b"].terms[0]["exponent"] == pytest.approx(0.5)


def test_value_provider_field_is_validated_at_load(make_host: Any) -> None:
    h = make_host(BoostPlugin())
    with pytest.raises(FlowValidationError) as info:
        h.load_flow(flow(inventory(), score(boostWeight=3), rank()))
    assert [i.path for i in info.value.issues] == ["nodes[1].config.boostWeight"]


# -- rank ---------------------------------------------------------------------------------------
def pw(offer_id: str, priority: float, weight: float) -> dict[str, Any]:
    return {"id": offer_id, "priority": priority, "weight": weight}


def run_rank(h: Host, offers: list[dict], rank_cfg: dict | None = None, **req: Any) -> Any:
    doc = flow(inventory(), score(method="priority_weighted"), rank(**(rank_cfg or {})))
    return decide(h, doc, offers, **req)


def test_rank_ties_by_priority_then_id(host: Host) -> None:
    offers = [pw("d", 50, 40), pw("c", 50, 40), pw("lowp", 40, 50), pw("top", 90, 90)]
    decision = run_rank(host, offers)
    # c, d and lowp all score 0.2; c and d (priority 50) beat lowp (40); c before d by id
    assert ids(decision) == ["top", "c", "d", "lowp"]
    assert [item.rank for item in decision.items] == [1, 2, 3, 4]


def test_rank_max_candidates_default_five_and_configured(host: Host) -> None:
    offers = [pw(f"o{i}", 10 + i, 50) for i in range(7)]
    assert ids(run_rank(host, offers)) == ["o6", "o5", "o4", "o3", "o2"]
    decision = run_rank(host, offers, {"maxCandidates": 2})
    assert ids(decision) == ["o6", "o5"]
    cut = drops(decision)["o4"]
    assert cut.node_id == "rk" and "below the cut-off of 2" in cut.reason


def test_request_limit(host: Host) -> None:
    offers = [pw(f"o{i}", 10 + i, 50) for i in range(7)]
    assert ids(run_rank(host, offers, limit=1)) == ["o6"]
    assert len(run_rank(host, offers, {"maxCandidates": 3}, limit=10).items) == 3


@pytest.mark.parametrize("limit", [0, 51])
def test_request_limit_bounds(host: Host, limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        run_rank(host, [pw("a", 1, 1)], limit=limit)
