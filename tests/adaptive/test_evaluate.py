"""Off-policy evaluation on logs made through the API by a Thompson-sampling flow, where the
truth of the evaluated flows is known; ``nextbest evaluate`` and ``nextbest adaptive rebuild``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from nextbest_adaptive.service.evaluate import evaluate_flow
from nextbest_adaptive.service.model import learner_for
from simkit import TENANT, TRUTH, Sim, flow

from nextbest import DecisionService
from nextbest.cli import build_cli

ROUNDS = 600


def log_rounds(sim: Sim) -> None:
    sim.publish(flow("learned", {"mode": "thompson", "predictor": "attributes.segment"}))
    # the flows to evaluate: catalog propensities (offer a for everyone) and one that knows
    # the best offer per segment (a formula on the segment)
    sim.publish(flow("fixed", None))
    for i in range(ROUNDS):
        sim.round("learned", f"c{i}", TRUTH)


def test_the_estimates_of_known_flows_hold_their_truth(sim: Sim) -> None:
    log_rounds(sim)
    service = DecisionService(sim.host, sim.store)
    result = evaluate_flow(service, learner_for(sim.host).counts, TENANT, "fixed")
    truth = 0.5 * TRUTH["a"]["young"] + 0.5 * TRUTH["a"]["senior"]  # the fixed flow shows a
    print(json.dumps(result.to_dict(), indent=1))
    assert result.logged == ROUNDS and result.skipped == 0
    for estimate in (result.success_ips, result.success_dr):
        # one run: the truth must lie within 4 standard errors (the coverage *rate* is checked
        # on many simulated logs in test_core.py)
        assert abs(estimate.value - truth) <= 4 * estimate.std_error
        assert estimate.low < estimate.value < estimate.high
    # the logging flow itself: the estimates are near what it achieved
    on_policy = evaluate_flow(service, learner_for(sim.host).counts, TENANT, "learned")
    assert abs(on_policy.success_dr.value - on_policy.logged_success_rate) < 0.1


@pytest.mark.parametrize("sim_store", ["sqlite"], indirect=True)
def test_the_commands(sim: Sim, tmp_path: Path) -> None:
    log_rounds(sim)
    db = f"sqlite:///{tmp_path / 'sim.db'}"
    runner = CliRunner()
    result = runner.invoke(
        build_cli(), ["evaluate", "--tenant", TENANT, "--flow", "fixed", "--json", "--database", db]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["logged"] == ROUNDS and set(body["successRate"]) == {"ips", "doublyRobust"}
    result = runner.invoke(build_cli(), ["evaluate", "--tenant", TENANT, "--flow", "fixed",
                                         "--since", "2200-01-02", "--database", db])  # fmt: skip
    assert result.exit_code == 2 and "--since" in result.output
    result = runner.invoke(build_cli(), ["evaluate", "--tenant", TENANT, "--flow", "nope",
                                         "--database", db])  # fmt: skip
    assert result.exit_code == 1 and "nope" in result.output
    # a version that is not published: offer c for everyone (true success rate 0.05)
    only_c = flow("fixed", None)
    only_c["nodes"][0]["config"] = {"scope": "offers", "offerIds": ["c"]}
    assert sim.store.save_flow(TENANT, "fixed", only_c) == 2
    result = runner.invoke(build_cli(), ["evaluate", "--tenant", TENANT, "--flow", "fixed@2",
                                         "--json", "--database", db])  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["flowKey"] == "fixed" and body["flowVersion"] == 2
    dr = body["successRate"]["doublyRobust"]
    truth_c = 0.5 * TRUTH["c"]["young"] + 0.5 * TRUTH["c"]["senior"]
    assert abs(dr["estimate"] - truth_c) <= 4 * dr["stdError"]
    args = ["evaluate", "--tenant", TENANT, "--flow", "fixed", "--json", "--database", db]
    published = json.loads(runner.invoke(build_cli(), args).stdout)
    assert published["flowVersion"] is None
    assert dr["estimate"] < published["successRate"]["doublyRobust"]["estimate"] - 0.05
    result = runner.invoke(build_cli(), ["evaluate", "--tenant", TENANT, "--flow", "fixed@9",
                                         "--database", db])  # fmt: skip
    assert result.exit_code == 1 and "no version 9" in result.output
    for bad in ("fixed@x", "fixed@0", "@2"):
        result = runner.invoke(build_cli(), ["evaluate", "--tenant", TENANT, "--flow", bad,
                                             "--database", db])  # fmt: skip
        assert result.exit_code == 2 and "--flow" in result.output and "KEY@N" in result.output
    before = sim.store.get_documents("adaptive.counts", TENANT)
    result = runner.invoke(build_cli(), ["adaptive", "rebuild", "--tenant", TENANT,
                                         "--database", db])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"{ROUNDS} recommendations" in result.stdout
    assert sim.store.get_documents("adaptive.counts", TENANT) == before
    result = runner.invoke(build_cli(), ["adaptive", "rebuild", "--tenant", "nobody",
                                         "--database", db])  # fmt: skip
    assert result.exit_code == 1 and "nobody" in result.output


@pytest.mark.parametrize("sim_store", ["sqlite"], indirect=True)
def test_evaluating_without_logs_prints_valid_json_and_says_so(sim: Sim, tmp_path: Path) -> None:
    sim.publish(flow("fixed", None))
    # a logged recommendation with nothing in it (no offer shown) is skipped, not dropped
    empty = flow("empty", None)
    empty["nodes"][0]["config"] = {"scope": "offers", "offerIds": ["nope"]}
    sim.publish(empty)
    assert sim.recommend("c1", "young", "empty")["decisions"] == []
    db = f"sqlite:///{tmp_path / 'sim.db'}"
    runner = CliRunner()
    args = ["evaluate", "--tenant", TENANT, "--flow", "fixed", "--database", db]
    result = runner.invoke(build_cli(), [*args, "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert body["logged"] == 0 and body["skipped"] == 1
    assert body["loggedSuccessRate"] is None
    assert body["successRate"]["ips"]["estimate"] is None
    result = runner.invoke(build_cli(), args)
    assert result.exit_code == 0 and "nothing to evaluate" in result.stdout
    assert "nan" not in result.stdout.lower()
