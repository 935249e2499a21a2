"""The decision-time model is reused between decisions: it must always say what a model built
afresh from the store says, after this process's own writes and for other candidate lists."""

from __future__ import annotations

from typing import Any

from nextbest_adaptive.service.model import learner_for
from simkit import TENANT, TRUTH, Sim, flow

from nextbest import DecisionService, Host

FIELDS = ("propensity", "mean", "impressions", "positives", "alpha", "beta", "immature")


def notes(host: Host, flow_key: str, segment: str = "young") -> dict[str, Any]:
    body = {
        "customerId": "probe",
        "channel": "web",
        "attributes": {"segment": segment},
        "decisionFlowKey": flow_key,
        "asOf": "2026-06-01T00:00:00Z",
        "explain": True,
    }
    assert host.store is not None
    decided = DecisionService(host, host.store).decide(TENANT, body).decision
    assert decided.trace is not None
    return {
        offer: {f: ann["adaptive"][f] for f in FIELDS}
        for offer, ann in decided.trace.annotations.items()
    }


def test_a_reused_model_equals_a_fresh_one(sim: Sim) -> None:
    settings = {"mode": "mean", "minImpressions": 3, "predictor": "attributes.segment"}
    sim.publish(flow("all", settings, max_candidates=4))
    some = flow("some", settings, max_candidates=2)  # the same model key, other candidates
    some["nodes"][0]["config"] = {"scope": "offers", "offerIds": ["b", "c"]}
    sim.publish(some)
    learner_for(sim.host).counts.ttl = 3600.0  # no re-read: only this process's own writes
    before = notes(sim.host, "all"), notes(sim.host, "some")
    for i in range(12):  # impressions and positives change the cached counts (and models)
        rec = sim.recommend(f"c{i}", "young", "all")
        for item in rec["decisions"][: 1 + i % 3]:
            assert sim.respond(rec, "conversion", rank=item["rank"]).status_code == 200
        if i % 4 == 0:
            notes(sim.host, "some")  # decisions in between: models updated, not rebuilt
    after = notes(sim.host, "all"), notes(sim.host, "some")
    assert after != before
    fresh = Host(store=sim.store)  # a new learner: its models come from the store
    assert after == (notes(fresh, "all"), notes(fresh, "some"))
    assert notes(sim.host, "all", "senior") == notes(fresh, "all", "senior")
    assert set(after[1]) == {"b", "c"} and set(after[0]) == set(TRUTH)


def test_the_plain_score_loop_scores_as_the_explained_one(sim: Sim) -> None:
    # without explain the score node takes its plain loop with the batch's propensities;
    # with explain the general one: the same scores, the same ranking
    for mode in ("mean", "thompson"):
        sim.publish(flow(mode, {"mode": mode, "minImpressions": 3}, max_candidates=4))
        for i in range(8):
            sim.round(mode, f"{mode}{i}", TRUTH)
        body = {"customerId": "p", "channel": "web", "decisionFlowKey": mode,
                "asOf": "2026-06-01T00:00:00Z"}  # fmt: skip
        service = DecisionService(sim.host, sim.store)
        plain = service.decide(TENANT, body).decision.items
        explained = service.decide(TENANT, {**body, "explain": True}).decision.items
        assert [(i.offer_id, i.score) for i in plain] == [(i.offer_id, i.score) for i in explained]
