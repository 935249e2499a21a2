"""Value providers of mode ``estimate`` (a propensity even for offers that carry one), the
annotations a decision keeps per offer, and the ``annotate_decision`` hook's failures."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from nextbest import (
    DecisionError,
    Host,
    PluginError,
    ValueBatch,
    ValueProvider,
    ValueRequest,
    hookimpl,
)

OFFERS = [
    {"id": "known", "priority": 50, "businessValue": 100, "propensity": 0.2},
    {"id": "bare", "priority": 50, "businessValue": 100},
]


class Learned(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")
    learned: float | None = Field(None, ge=0, le=1)


class EstimatePlugin:
    """Estimates every offer's propensity as ``learned`` (None for ``skip``), noting what it
    saw in the candidate's annotations."""

    def __init__(self, dimension: str = "propensity") -> None:
        self.dimension = dimension
        self.seen: list[ValueRequest] = []

    def compute(self, req: ValueRequest) -> float | None:
        self.seen.append(req)
        assert req.annotations is not None
        req.annotations["est"] = {"prior": req.offer.propensity, "default": req.default}
        config: Any = req.config
        return config.learned

    @hookimpl
    def register_value_providers(self, register: Any) -> None:
        register(ValueProvider("est", self.dimension, Learned, self.compute, mode="estimate"))  # type: ignore[arg-type]


def decide(host: Host, score: dict[str, Any], explain: bool = True, **extra: Any) -> Any:
    flow = {
        "key": "f",
        "version": 2,
        "nodes": [
            {"type": "inventory", "id": "all"},
            {"type": "score", "id": "s", "config": score},
            {"type": "rank", "id": "top"},
        ],
        **extra,
    }
    request = {"customerId": "c1", "explain": explain}
    return host.decide("t1", request, flow=host.load_flow(flow), offers=host.load_offers(OFFERS))


def test_an_estimate_is_for_the_propensity_dimension_only() -> None:
    with pytest.raises(PluginError, match="estimate"):
        Host(plugins=[EstimatePlugin("impact")])


@pytest.mark.parametrize("method", ["propensity", "formula"])
def test_an_estimate_replaces_the_catalog_propensity_and_is_noted(method: str) -> None:
    plugin = EstimatePlugin()
    host = Host(plugins=[plugin])
    decision = decide(host, {"method": method, "learned": 0.7, "defaultPropensity": 0.05})
    items = {i.offer_id: i for i in decision.items}
    assert items["known"].annotations == {"est": {"prior": 0.2, "default": 0.05}}
    assert items["bare"].annotations == {"est": {"prior": None, "default": 0.05}}
    assert decision.trace.annotations["known"] == items["known"].annotations
    assert decision.to_dict()["trace"]["annotations"]["bare"]["est"]["default"] == 0.05
    if method == "propensity":
        assert items["known"].score == pytest.approx(0.7)
        assert {r.weight for r in plugin.seen} == {1.0}
    else:
        scores = decision.trace.scores["known"]
        assert (
            scores.factors["propensity"] == 0.7 and scores.sources["propensity"] == "EstimatePlugin"
        )
        assert {r.weight for r in plugin.seen} == {scores.weights["propensity"]}
    assert all(r.as_of == decision.as_of for r in plugin.seen)


def test_no_estimate_falls_back_to_the_offer_then_the_default() -> None:
    host = Host(plugins=[EstimatePlugin()])
    # "learned" unset: the provider is not configured on the node, nothing runs
    decision = decide(host, {"method": "propensity", "defaultPropensity": 0.05})
    assert {i.offer_id: i.score for i in decision.items} == {"known": 0.2, "bare": 0.05}
    assert all(i.annotations == {} for i in decision.items)


class Failing:
    @hookimpl
    def annotate_decision(self, decision: Any, ranked: Any, scored: Any) -> None:
        raise RuntimeError("boom")


def test_a_failing_annotate_decision_is_a_plugin_failure() -> None:
    host = Host(plugins=[Failing()])
    decision = decide(host, {"method": "propensity"})
    assert {i.offer_id for i in decision.items} == {"known", "bare"}
    failure = decision.trace.failures[0]
    assert (failure.hook, failure.action) == ("annotate_decision", "annotations skipped")
    with pytest.raises(DecisionError):
        decide(host, {"method": "propensity"}, settings={"onPluginError": "fail"})


class BatchPlugin:
    """An estimate provider answering for every candidate at once."""

    def __init__(self, values: Any) -> None:
        self.values = values
        self.calls = 0

    def batch(self, batch: ValueBatch) -> Any:
        self.calls += 1
        for note, offer in zip(batch.annotations, batch.offers, strict=True):
            note["batch"] = {"offer": offer.id, "channel": batch.lookup("request.channel")}
        return self.values(batch)

    @hookimpl
    def register_value_providers(self, register: Any) -> None:
        register(
            ValueProvider(
                "est",
                "propensity",
                Learned,
                lambda req: 0.01,  # asked offer by offer only when the batch fails
                mode="estimate",
                compute_batch=self.batch,
            )
        )


@pytest.mark.parametrize("method", ["propensity", "formula"])
def test_a_batch_estimate_is_asked_once_per_decision(method: str) -> None:
    plugin = BatchPlugin(lambda b: [0.9 if o.id == "bare" else None for o in b.offers])
    decision = decide(Host(plugins=[plugin]), {"method": method, "learned": 0.5})
    assert plugin.calls == 1
    scores = {i.offer_id: i for i in decision.items}
    if method == "propensity":
        assert scores["bare"].score == pytest.approx(0.9)
        assert scores["known"].score == pytest.approx(0.2)  # None: the offer's own value
    else:
        assert decision.trace.scores["bare"].sources["propensity"] == "BatchPlugin"
        assert decision.trace.scores["known"].sources["propensity"] == "offer"
    assert scores["bare"].annotations == {"batch": {"offer": "bare", "channel": None}}


@pytest.mark.parametrize(
    "values",
    [[0.9, None], [1.5, -0.2], [0.3, 0.6]],  # (known, bare): None, out of [0, 1], plain
    ids=str,
)
def test_a_batch_scores_the_same_without_a_trace(values: list[float | None]) -> None:
    # without explain the score node takes its plain loop with the batch's values: the same
    # scores as the explained (general) loop, values clamped to [0, 1], None the usual sources
    def estimates(b: ValueBatch) -> list[float | None]:
        return [values[0] if o.id == "known" else values[1] for o in b.offers]

    score = {"method": "formula", "learned": 0.5}
    plain = decide(Host(plugins=[BatchPlugin(estimates)]), score, explain=False)
    explained = decide(Host(plugins=[BatchPlugin(estimates)]), score)
    assert plain.trace is None and plain.items
    assert [(i.offer_id, i.score) for i in plain.items] == [
        (i.offer_id, i.score) for i in explained.items
    ]


@pytest.mark.parametrize(
    "values", [lambda b: [float("nan")] * len(b.offers), lambda b: [0.5]], ids=["nan", "short"]
)
def test_a_failing_batch_is_a_plugin_failure_and_offers_are_asked_one_by_one(values: Any) -> None:
    decision = decide(Host(plugins=[BatchPlugin(values)]), {"method": "propensity", "learned": 0.5})
    assert [i.score for i in decision.items] == pytest.approx([0.01, 0.01])
    failure = decision.trace.failures[0]
    assert failure.hook == "value provider est" and failure.action == "asked offer by offer"


def test_compute_batch_is_for_estimates_only() -> None:
    class Wrong:
        @hookimpl
        def register_value_providers(self, register: Any) -> None:
            register(
                ValueProvider(
                    "w",
                    "propensity",
                    Learned,
                    lambda r: None,
                    mode="value",
                    compute_batch=lambda b: [],
                )
            )

    with pytest.raises(PluginError, match="compute_batch"):
        Host(plugins=[Wrong()])
