"""A population simulation of an adaptive flow decides with the learned counts and moves none
of them: the impressions and positives, the stored recommendations and the customers' outcomes
are the same after the run (docs/simulation.md: nothing recorded)."""

from __future__ import annotations

from datetime import timedelta

from simkit import SIM_START, TENANT, TRUTH, Sim, flow

from nextbest import DecisionService
from nextbest.simulate import parse_options, submit

COUNTS = "adaptive.counts"


def test_a_simulation_moves_no_adaptive_counts(sim: Sim) -> None:
    sim.publish(flow("learn", {"mode": "thompson", "predictor": "attributes.segment"}))
    for i in range(40):
        sim.round("learn", f"c{i % 20}", TRUTH)
    counts = sim.store.get_documents(COUNTS, TENANT)
    assert counts, "the rounds counted impressions"
    recommendations = len(list(sim.store.iter_recommendations(TENANT)))
    summaries = sim.store.customer_summaries(TENANT)

    as_of = (SIM_START + timedelta(days=1)).isoformat()
    options = parse_options({"flow": "learn", "asOf": as_of}, now=SIM_START + timedelta(days=1))
    service = DecisionService(sim.host, sim.store)
    record = submit(service, TENANT, options, background=False)
    run = sim.store.get_simulation(TENANT, record.simulation_id)
    assert run is not None and run.status == "done", run
    overall = run.result["flows"][0]["overall"]  # type: ignore[index]
    assert overall["customers"] > 0 and overall["withOffer"] == overall["customers"]

    assert sim.store.get_documents(COUNTS, TENANT) == counts
    assert len(list(sim.store.iter_recommendations(TENANT))) == recommendations
    assert sim.store.customer_summaries(TENANT) == summaries
