"""A learned score node with nothing left to score (every candidate removed before it, e.g. by
a contact policy) is an ordinary empty decision, not a plugin failure or a 500."""

from __future__ import annotations

import pytest
from simkit import Sim, flow


@pytest.mark.parametrize("mode", ["mean", "thompson"])
def test_a_strict_flow_whose_candidates_are_all_capped_answers_empty(sim: Sim, mode: str) -> None:
    document = flow("strict", {"mode": mode}, max_candidates=3)
    document["settings"] = {"onPluginError": "fail"}
    sim.publish(document)
    policy = {"name": "none", "ruleType": "frequency_cap", "config": {"max": 0, "period": "day"}}
    put = sim.client.put("/api/v1/contact-policies/none", json=policy, headers=sim.headers)
    assert put.status_code in (200, 201), put.text
    body = sim.recommend("c1", "young", "strict", explain=True)
    assert body["decisions"] == []
    text = str(body)
    assert "frequency_cap" in text
    assert "failed" not in text.lower()
