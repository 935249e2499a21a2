"""Simulated recommend→respond rounds through the real API with known response rates per offer
and segment (tests/adaptive/simkit.py): the learned propensities converge, Thompson sampling's
regret grows sub-linearly and beats catalog propensities, and a new offer is explored."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from simkit import NEWCOMER, SEGMENTS, SIM_START, TRUTH, Sim, flow, offer

#: the best offer's true rate per segment
BEST = {s: max(rates[s] for rates in TRUTH.values()) for s in SEGMENTS}


def run(sim: Sim, flow_key: str, rounds: int, truth: dict, first: int = 0) -> np.ndarray:
    """Per-round regret (best true rate minus the shown offer's true rate) of ``rounds``
    rounds (decisions are made as of the simulation's clock and the outcomes drawn from its
    seeded generator: every run draws the same)."""
    regret = np.zeros(rounds)
    for i in range(rounds):
        segment = SEGMENTS[int(sim.rng.integers(len(SEGMENTS)))]
        rec = sim.recommend(f"c{first + i}", segment, flow_key)
        shown = rec["decisions"][0]["offerId"]
        rate = truth[shown][segment]
        regret[i] = BEST[segment] - rate
        if sim.rng.random() < rate:
            assert sim.respond(rec, "conversion").status_code == 200
    return regret


def test_learned_propensities_converge_to_the_true_rates(sim: Sim) -> None:
    # every offer shown in every round, each converting with its own true rate: every cell
    # gets the same evidence, so each posterior mean must approach its truth
    sim.publish(flow("all", {"mode": "mean", "predictor": "attributes.segment"}, max_candidates=4))
    rounds = 600
    for i in range(rounds):
        segment = SEGMENTS[i % 2]
        rec = sim.recommend(f"c{i}", segment, "all")
        for item in rec["decisions"]:
            if sim.rng.random() < TRUTH[item["offerId"]][segment]:
                assert sim.respond(rec, "conversion", rank=item["rank"]).status_code == 200
    errors = {}
    for segment in SEGMENTS:
        rec = sim.recommend("probe", segment, "all", explain=True)
        notes = rec["trace"]["annotations"]
        for offer_id, rates in TRUTH.items():
            note = notes[offer_id]["adaptive"]
            assert note["source"] == "learned" and note["impressions"] == rounds // 2
            errors[(offer_id, segment)] = abs(note["mean"] - rates[segment])
    print("absolute errors of the posterior means:", {k: round(v, 4) for k, v in errors.items()})
    # 300 impressions a cell: the standard error is at most 0.027 (rate 0.3); 0.07 is > 2.5 SE
    assert max(errors.values()) < 0.07


def test_thompson_regret_is_sublinear_and_beats_catalog_propensities(sim: Sim) -> None:
    sim.publish(flow("fixed", None))
    sim.publish(flow("learned", {"mode": "thompson", "predictor": "attributes.segment"}))
    rounds = 1000
    fixed = run(sim, "fixed", rounds, TRUTH)
    learned = run(sim, "learned", rounds, TRUTH, first=rounds)
    halves = learned[: rounds // 2].sum(), learned[rounds // 2 :].sum()
    print(
        f"cumulative regret after {rounds} rounds: catalog {fixed.sum():.1f}, "
        f"thompson {learned.sum():.1f} (first half {halves[0]:.1f}, second half {halves[1]:.1f})"
    )
    # catalog propensities are all 0.1: the tie-break shows offer a to everyone, forever
    assert abs(fixed.sum() - rounds * 0.1) < rounds * 0.02
    assert learned.sum() < 0.6 * fixed.sum()
    # sub-linear: the second half adds much less regret than the first
    assert halves[1] < 0.6 * halves[0]


def test_a_new_offer_without_evidence_is_explored(sim: Sim) -> None:
    sim.publish(flow("learned", {"mode": "thompson", "predictor": "attributes.segment"}))
    run(sim, "learned", 300, TRUTH)
    # a newcomer with no catalog propensity: its prior is the flow's defaultPropensity
    response = sim.client.post("/api/v1/offers", json=offer(NEWCOMER, None), headers=sim.headers)
    assert response.status_code == 201, response.text
    probe = sim.recommend("probe", "young", "learned", explain=True)
    note = probe["trace"]["annotations"][NEWCOMER]["adaptive"]
    assert note["source"] == "default" and note["immature"] and note["impressions"] == 0
    truth = {**TRUTH, NEWCOMER: {"young": 0.2, "senior": 0.2}}
    run(sim, "learned", 300, truth, first=300)
    counts = sim.store.get_document("adaptive.counts", "sim", NEWCOMER)
    shown = counts["cells"]["web"][0]
    print(f"the newcomer was shown {shown} times in 300 rounds")
    assert shown >= 20  # it reached minImpressions (default 20): explored, not starved


def test_the_simulation_decides_as_of_its_own_clock(sim: Sim) -> None:
    # the service's clock, not the wall clock, dates (and so seeds) every decision
    sim.publish(flow("learned", {"mode": "thompson"}))
    times = [sim.recommend(f"c{i}", "young", "learned")["asOf"] for i in range(3)]
    assert times == [(SIM_START + timedelta(seconds=i)).isoformat() for i in range(3)]
