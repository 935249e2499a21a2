"""Exact counts: impressions from stored recommendations, positives credited once per
impression whatever the concurrency, retries or outcome mix; corrections and deletions; the
success-outcome setting; a rebuild from the store equals the incremental counts."""

from __future__ import annotations

import random
import threading
import uuid
from typing import Any

from nextbest_adaptive.service.model import learner_for
from simkit import TENANT, TRUTH, Sim, flow

from nextbest import DecisionService, Host
from nextbest.store import InteractionIn

THREADS = 8
SENDERS = 3


def counts(sim: Sim) -> dict[str, Any]:
    return sim.store.get_documents("adaptive.counts", TENANT)


def test_concurrent_responds_are_counted_exactly_once(sim: Sim) -> None:
    sim.publish(flow("all", {"predictor": "attributes.segment"}, max_candidates=4))
    rng = random.Random(11)
    recs = [sim.recommend(f"c{i}", ("young", "senior")[i % 2], "all") for i in range(60)]
    plan: list[dict[str, Any]] = []
    expected: dict[tuple[str, str], int] = {}
    for i, rec in enumerate(recs):
        segment = ("young", "senior")[i % 2]
        for item in rec["decisions"]:
            outcomes = rng.choice([[], ["dismiss"], ["click"], ["click", "conversion"]])
            for outcome in outcomes:
                plan.append({"rec": rec, "rank": item["rank"], "outcome": outcome,
                             "key": uuid.uuid4().hex})  # fmt: skip
            if any(o in ("click", "conversion") for o in outcomes):
                for cell in ("web", f'web|attributes.segment="{segment}"'):
                    key = (item["offerId"], cell)
                    expected[key] = expected.get(key, 0) + 1
    # every outcome sent by SENDERS threads (same idempotency key), in shuffled orders
    work = [p for p in plan for _ in range(SENDERS)]
    rng.shuffle(work)
    failures: list[str] = []
    lock = threading.Lock()

    def send(part: list[dict[str, Any]]) -> None:
        for p in part:
            response = sim.respond(p["rec"], p["outcome"], rank=p["rank"], idempotencyKey=p["key"])
            if response.status_code not in (200, 201):
                with lock:
                    failures.append(response.text)

    threads = [threading.Thread(target=send, args=(work[t::THREADS],)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    got = {
        (offer_id, cell): n_k[1]
        for offer_id, doc in counts(sim).items()
        for cell, n_k in doc["cells"].items()
        if n_k[1]
    }
    assert got == expected
    impressions = {offer_id: doc["cells"]["web"][0] for offer_id, doc in counts(sim).items()}
    assert impressions == {o: 60 for o in ("a", "b", "c", "d")}
    # the counts rebuilt from the store are the same
    before = counts(sim)
    result = learner_for(sim.host).counts.rebuild(TENANT)
    assert result.positives == sum(expected.values()) // 2
    assert counts(sim) == before


def test_corrections_and_deletions_keep_the_credits_exact(sim: Sim) -> None:
    sim.publish(flow("one", {"mode": "mean"}))
    rec = sim.recommend("c1", "young", "one")
    offer_id = rec["decisions"][0]["offerId"]
    assert sim.respond(rec, "click", idempotencyKey="k-click").status_code == 200
    assert sim.respond(rec, "conversion", idempotencyKey="k-conv").status_code == 200
    assert counts(sim)[offer_id]["cells"]["web"] == [1, 1]

    def delete(key: str) -> None:
        response = sim.client.delete(f"/api/v1/interactions/{key}", headers=sim.headers)
        assert response.status_code == 200, response.text

    delete("k-click")  # the conversion still credits the impression
    assert counts(sim)[offer_id]["cells"]["web"] == [1, 1]
    delete("k-conv")
    assert counts(sim)[offer_id]["cells"]["web"] == [1, 0]
    assert sim.respond(rec, "dismiss", idempotencyKey="k-dismiss").status_code == 200
    body = {
        "customerId": "c1",
        "recommendationId": rec["recommendationId"],
        "rank": 1,
        "outcome": "conversion",
    }
    response = sim.client.put("/api/v1/interactions/k-dismiss", json=body, headers=sim.headers)
    assert response.status_code == 200, response.text
    assert counts(sim)[offer_id]["cells"]["web"] == [1, 1]


def test_the_success_outcomes_are_a_tenant_setting(sim: Sim) -> None:
    sim.store.update_tenant_settings(TENANT, {"adaptive.successOutcomes": ["conversion"]})
    sim.publish(flow("one", {"mode": "mean"}))
    rec = sim.recommend("c1", "young", "one")
    offer_id = rec["decisions"][0]["offerId"]
    assert sim.respond(rec, "click").status_code == 200
    assert counts(sim)[offer_id]["cells"]["web"] == [1, 0]
    assert sim.respond(rec, "conversion").status_code == 200
    assert counts(sim)[offer_id]["cells"]["web"] == [1, 1]


def test_outcomes_citing_no_recommendation_and_decisions_not_saved_count_nothing(
    sim: Sim,
) -> None:
    sim.publish(flow("one", {"mode": "mean"}))
    body = {"customerId": "c1", "channel": "web", "decisionFlowKey": "one"}
    decided = DecisionService(sim.host, sim.store).decide(TENANT, body)  # saves nothing
    assert [item.offer_id for item in decided.decision.items] == ["a"]
    plain = {"customerId": "c1", "offerId": "a", "outcome": "conversion", "idempotencyKey": "x"}
    assert sim.client.post("/api/v1/respond", json=plain, headers=sim.headers).status_code == 200
    assert counts(sim) == {}


def test_the_stored_recommendation_keeps_what_the_decision_used(sim: Sim) -> None:
    sim.publish(flow("t", {"mode": "thompson", "predictor": "attributes.segment"}))
    rec = sim.recommend("c1", "young", "t", explain=True)
    stored = sim.store.get_recommendation(TENANT, rec["recommendationId"])
    assert stored is not None
    note = stored.items[0].annotations["adaptive"]
    assert note == rec["trace"]["annotations"][stored.items[0].offer_id]["adaptive"]
    assert note["source"] == "catalog" and note["random"] and 0 < note["pickProbability"] <= 1
    assert note["propensity"] == rec["decisions"][0]["score"]


def test_a_profile_and_overrides_use_the_learned_propensities_offer_by_offer(sim: Sim) -> None:
    # a channel override makes the node ask offer by offer; the profile's mode wins
    document = flow("profiled", None, max_candidates=2)
    weights = {"propensity": 1.0, "impact": 0.0, "relevance": 0.0, "emphasis": 0.0}
    document["profiles"] = {"learning": {**weights, "adaptive": {"mode": "thompson"}}}
    score = document["nodes"][1]["config"]
    score.update(
        {
            "method": "formula",
            "adaptive": {"mode": "mean"},
            "formulas": {"impact": "1"},  # the offers have no businessValue
            "strategyOverrides": [{"channel": "app", "profile": "learning"}],
        }
    )
    sim.publish(document)
    web = sim.recommend("c1", "young", "profiled", explain=True)
    app = sim.recommend("c1", "young", "profiled", explain=True, channel="app")
    assert {n["adaptive"]["mode"] for n in web["trace"]["annotations"].values()} == {"mean"}
    notes = app["trace"]["annotations"]
    assert {n["adaptive"]["mode"] for n in notes.values()} == {"thompson"}
    stored = sim.store.get_recommendation(TENANT, app["recommendationId"])
    assert stored is not None
    assert all(0 < i.annotations["adaptive"]["pickProbability"] <= 1 for i in stored.items)


def test_a_bulk_import_credits_the_impressions_it_cites(sim: Sim) -> None:
    sim.publish(flow("one", {"mode": "mean"}))
    recs = [sim.recommend(f"c{i}", "young", "one") for i in range(3)]
    rows = [
        InteractionIn(
            customer_id=rec["customerId"],
            outcome=outcome,
            idempotency_key=f"bulk-{i}-{outcome}",
            offer_id=rec["decisions"][0]["offerId"],
            recommendation_id=rec["recommendationId"],
            rank=1,
        )
        for i, rec in enumerate(recs)
        for outcome in (["click", "conversion"] if i else ["dismiss"])
    ]
    assert sim.store.record_interactions_bulk(TENANT, rows).inserted == 5
    shown = [rec["decisions"][0]["offerId"] for rec in recs]

    def cells() -> dict[str, list[int]]:
        return {o: counts(sim)[o]["cells"]["web"] for o in set(shown)}

    # a bulk write calls no outcome hook: nothing credited yet
    assert cells() == {o: [shown.count(o), 0] for o in set(shown)}
    sim.host.notify_interactions_imported(TENANT, {r["customerId"] for r in recs})
    credited = {o: shown[1:].count(o) for o in set(shown)}  # c0 only dismissed
    assert cells() == {o: [shown.count(o), credited[o]] for o in set(shown)}


def test_a_control_customers_random_offer_is_noted_with_its_true_probability(sim: Sim) -> None:
    """A control group in mode random picks uniformly among the candidates: the note says so
    (1 / candidates), not the flow policy's probability."""
    document = flow("ctl", {"mode": "mean"})
    document["settings"] = {"controlGroup": {"share": 0.5, "mode": "random", "salt": "s"}}
    sim.publish(document)
    seen = {"control": 0, "treatment": 0}
    for i in range(12):
        rec = sim.recommend(f"k{i}", "young", "ctl")
        stored = sim.store.get_recommendation(TENANT, rec["recommendationId"])
        assert stored is not None
        (item,) = stored.items
        note = item.annotations["adaptive"]
        seen[rec["group"]] += 1
        if rec["group"] == "control":
            assert note["controlRandom"] and note["pickProbability"] == 1 / len(TRUTH)
        else:
            assert "controlRandom" not in note and note["pickProbability"] == 1.0
    assert seen["control"] and seen["treatment"]


def test_pick_probabilities_wait_for_the_save_and_match_the_explained_decision(sim: Sim) -> None:
    """Under Thompson sampling the pick probabilities (many draws) are computed only for a
    decision that is explained or saved; the saved ones are those explain shows."""
    sim.publish(flow("t", {"mode": "thompson", "predictor": "attributes.segment"}, 2))
    for i in range(30):  # some evidence, so the offers' posteriors differ
        sim.round("t", f"w{i}", TRUTH)
    service = DecisionService(sim.host, sim.store)
    body = {"customerId": "c1", "channel": "web", "attributes": {"segment": "young"},
            "decisionFlowKey": "t", "asOf": "2026-03-01T00:00:00Z"}  # fmt: skip
    plain = service.decide(TENANT, body).decision
    assert len(plain.items) == 2
    assert all("pickProbability" not in i.annotations["adaptive"] for i in plain.items)
    explained = service.decide(TENANT, {**body, "explain": True}).decision
    assert sim.host.notify_recommendation_saving(TENANT, plain) == []  # what recommend calls
    notes = [i.annotations["adaptive"] for i in plain.items]
    assert notes == [i.annotations["adaptive"] for i in explained.items]
    assert all(0 < n["pickProbability"] <= 1 and 0 <= n["topProbability"] <= 1 for n in notes)
    rec = sim.recommend("c2", "senior", "t")  # through the API, not explained: stored complete
    stored = sim.store.get_recommendation(TENANT, rec["recommendationId"])
    assert stored is not None
    assert all(0 < i.annotations["adaptive"]["pickProbability"] <= 1 for i in stored.items)


def test_a_respond_in_another_process_credits_the_same_cells(sim: Sim) -> None:
    """The process that saved a recommendation remembers its items' cells and reads nothing
    back; another process (here a second host over the same store) reads the item instead,
    and both credit the same cells, once."""
    sim.publish(flow("split", {"mode": "mean", "predictor": "attributes.segment"}, 2))
    first = sim.recommend("c1", "young", "split")
    second = sim.recommend("c2", "senior", "split")
    other = DecisionService(Host(store=sim.store), sim.store)
    expected: dict[tuple[str, str], int] = {}
    for rec, rank, segment in ((first, 1, "young"), (second, 2, "senior")):
        item = next(d for d in rec["decisions"] if d["rank"] == rank)
        outcome = InteractionIn(
            customer_id=rec["customerId"],
            outcome="conversion",
            idempotency_key=f"{rec['recommendationId']}-{rank}",
            recommendation_id=rec["recommendationId"],
            rank=rank,
        )
        other.record_outcome(TENANT, outcome)
        assert sim.respond(rec, "click", rank=rank).status_code == 200  # same item: no 2nd credit
        for cell in ("web", f'web|attributes.segment="{segment}"'):
            expected[(item["offerId"], cell)] = expected.get((item["offerId"], cell), 0) + 1
    stored = counts(sim)
    for (offer_id, cell), positives in expected.items():
        assert stored[offer_id]["cells"][cell][1] == positives


def test_a_large_import_loses_no_live_traffic(sim: Sim, monkeypatch: Any) -> None:
    """A bulk import of more customers than the one-by-one limit, with recommendations and
    responds arriving while it reads and while it credits: nothing written meanwhile is lost
    and the counts equal those rebuilt from the store afterwards."""
    from nextbest_adaptive.service import counts as counts_module

    monkeypatch.setattr(counts_module, "IMPORT_RECHECK_LIMIT", 1)
    sim.publish(flow("one", {"mode": "mean"}))
    recs = [sim.recommend(f"c{i}", "young", "one") for i in range(4)]
    rows = [
        InteractionIn(
            customer_id=rec["customerId"],
            outcome="conversion",
            idempotency_key=f"bulk-{i}",
            offer_id=rec["decisions"][0]["offerId"],
            recommendation_id=rec["recommendationId"],
            rank=1,
        )
        for i, rec in enumerate(recs)
    ]
    assert sim.store.record_interactions_bulk(TENANT, rows).inserted == 4
    service = learner_for(sim.host).counts
    live = iter(range(100))

    def traffic() -> None:  # a new customer shown offers and converting, through the API
        n = next(live)
        rec = sim.recommend(f"live{n}", "senior", "one")
        response = sim.respond(rec, "conversion", rank=1, idempotencyKey=f"live-{n}")
        assert response.status_code in (200, 201), response.text

    reading = sim.store.iter_interactions

    def iter_with_traffic(*args: Any, **kwargs: Any) -> Any:
        for n, interaction in enumerate(reading(*args, **kwargs)):
            if n == 1:
                traffic()
            yield interaction

    crediting = service._set_credit

    def credit_with_traffic(*args: Any) -> bool:
        traffic()
        return crediting(*args)

    monkeypatch.setattr(sim.store, "iter_interactions", iter_with_traffic)
    monkeypatch.setattr(service, "_set_credit", credit_with_traffic)
    sim.host.notify_interactions_imported(TENANT, {r["customerId"] for r in recs})
    monkeypatch.undo()
    incremental = counts(sim)
    result = service.rebuild(TENANT)
    assert counts(sim) == incremental
    assert next(live) == 5  # one respond while reading, one per imported credit
    assert result.positives == 4 + 5 and result.recommendations == 4 + 5


def test_forgetting_a_customer_drops_the_recommendations_kept_for_responds(sim: Sim) -> None:
    sim.publish(flow("one", {"mode": "mean"}))
    kept = [sim.recommend(c, "young", "one")["recommendationId"] for c in ("c1", "c2")]
    service = learner_for(sim.host).counts
    assert all((TENANT, r) in service._saved for r in kept)
    DecisionService(sim.host, sim.store).forget_customer(TENANT, "c1")
    assert (TENANT, kept[0]) not in service._saved and (TENANT, kept[1]) in service._saved
