"""Trigger semantics through the API and the real CLV plugin: one firing per crossing, none
while the condition stays true, re-arm, cooldown, paused, segment entry, a crossing by time
alone caught by the batch, a firing within a second of the respond that caused it, attached
offers whose recommendationId respond accepts, a control group's firing, and deterministic
event ids."""

from __future__ import annotations

import time
from typing import Any

import pytest
from triggerkit import DAY, NOW, SILENT, Api, fired, history

from nextbest import TriggerEvent, hookimpl
from nextbest.experiments import ControlGroupSettings, assign
from nextbest.triggers import engine_for


def test_time_alone_fires_once_rearms_and_fires_again(api: Api) -> None:
    # Time only moves forward: the history is old, the batches walk up to the real now.
    history(api, "ada", [105, 103])
    history(api, "bob", [102])
    assert api.put(SILENT).status_code == 201
    api.compute(NOW - 100 * DAY)  # nobody silent yet
    assert fired(api, "silent") == []
    api.compute(NOW - 60 * DAY)  # no new event: time alone crosses both
    first = fired(api, "silent")
    assert sorted(e["customerId"] for e in first) == ["ada", "bob"]
    api.compute(NOW - 40 * DAY)  # still true: no new firing
    assert len(fired(api, "silent")) == 2
    api.present(time.time())  # the respond's present (NOW is when the module was imported)
    api.respond("ada", "back")  # ada buys: recency 0, the condition is false: re-armed
    assert len(fired(api, "silent")) == 2
    assert api.store.trigger_states("acme", "silent")["ada"].armed
    api.compute(NOW + 1 * DAY)  # bob, still silent, stays fired; ada is not silent yet
    api.compute(NOW + 40 * DAY)  # ada silent again: a second crossing
    events = fired(api, "silent")
    assert len(events) == 3
    assert events[0]["customerId"] == "ada"
    newest = events[0]
    assert newest["generation"] == 2
    assert newest["type"] == "trigger.fired" and newest["triggerKey"] == "silent"
    assert newest["values"]["customer.clv.recency_days"] >= 30
    assert newest["context"]["clv"]["customer.clv.segment"] is not None
    assert len({e["id"] for e in events}) == 3


def test_cooldown_suppresses_a_second_crossing(api: Api) -> None:
    history(api, "ada", [5])
    api.put({**SILENT, "cooldownDays": 365})
    api.compute(NOW + 40 * DAY)
    api.respond("ada", "back")
    api.compute(NOW + 10 * DAY)  # re-armed
    api.compute(NOW + 90 * DAY)  # crossed again within the cooldown: suppressed
    assert len(fired(api, "silent")) == 1
    state = api.store.trigger_states("acme", "silent")["ada"]
    assert state.armed is False and state.generation == 1


def test_paused_trigger_never_fires(api: Api) -> None:
    history(api, "ada", [5])
    api.put({**SILENT, "status": "paused"})
    api.compute(NOW + 40 * DAY)
    assert fired(api, "silent") == []
    assert api.store.trigger_states("acme", "silent") == {}


def test_segment_entry_fires_once(api: Api) -> None:
    history(api, "ada", [1, 2, 3, 4])
    history(api, "bob", [1])
    api.put({"key": "risk", "name": "At risk", "when": "customer.clv.segment == 'at_risk'"})
    api.compute(NOW)
    before = {e["customerId"] for e in fired(api, "risk")}
    api.compute(NOW + 400 * DAY)
    api.compute(NOW + 500 * DAY)
    events = fired(api, "risk")
    assert {e["customerId"] for e in events} == {"ada", "bob"}
    assert len(events) == 2 - len(before) + len(before)  # each entered once
    for event in events:
        assert event["values"] == {"customer.clv.segment": "at_risk"}


def test_respond_fires_within_a_second_with_previous_values(api: Api) -> None:
    api.put({"key": "loyal", "name": "Third purchase", "when": "customer.clv.frequency >= 3"})
    history(api, "ada", [10, 5])  # watched: each outcome recomputes the record
    started = time.perf_counter()
    api.respond("ada", "third")
    events = fired(api, "loyal")
    assert time.perf_counter() - started < 1.0
    assert len(events) == 1
    event = events[0]
    assert event["values"] == {"customer.clv.frequency": 3}
    assert event["previousValues"] == {"customer.clv.frequency": 2}
    api.respond("ada", "fourth")  # stays true: no new firing
    assert len(fired(api, "loyal")) == 1


def test_attached_offers_recommendation_accepted_by_respond(api: Api) -> None:
    offer = {"id": "welcome-back", "name": "Welcome back", "businessValue": 10}
    assert api.call("POST", "/api/v1/offers", json=offer).status_code == 201
    flow = {
        "key": "winback",
        "version": 2,
        "nodes": [
            {"type": "inventory", "id": "all"},
            {"type": "score", "id": "s", "config": {"method": "priority_weighted"}},
            {"type": "rank", "id": "rank"},
        ],
    }
    saved = api.call("POST", "/api/v1/flows", json=flow)
    assert saved.status_code == 201, saved.text
    published = api.call("POST", "/api/v1/flows/winback/versions/1/publish")
    assert published.status_code == 200, published.text
    history(api, "ada", [10, 5])
    api.put({"key": "loyal", "name": "Third", "when": "customer.clv.frequency >= 3",
             "flow": "winback"})  # fmt: skip
    api.respond("ada", "third")
    (event,) = fired(api, "loyal")
    item = event["offers"][0]
    assert {o["offerId"] for o in event["offers"]} == {"welcome-back", "shop"}
    assert item["rank"] == 1
    response = api.call(
        "POST",
        "/api/v1/respond",
        json={
            "customerId": "ada",
            "outcome": "conversion",
            "idempotencyKey": "from-trigger",
            "recommendationId": item["recommendationId"],
            "rank": 1,
        },
    )
    assert response.status_code in (200, 201), response.text
    assert response.json()["offerId"] == item["offerId"]


def test_hook_called_after_commit(api: Api, store: Any) -> None:
    seen: list[TriggerEvent] = []

    class Listener:
        @hookimpl
        def trigger_fired(self, tenant_id: str, event: TriggerEvent) -> None:
            # committed before the hook runs
            assert store.trigger_states(tenant_id, event.trigger_key)
            seen.append(event)

    api.host.pm.register(Listener(), name="listener")
    history(api, "ada", [10, 5])
    crm, _ = store.create_webhook_endpoint("acme", "https://crm.example.com/hooks")
    put = api.put({"key": "loyal", "name": "Third", "when": "customer.clv.frequency >= 3",
                   "actions": {"hook": True, "webhook": crm.endpoint_id}})  # fmt: skip
    assert put.status_code == 201, put.text
    api.respond("ada", "third")
    assert [e.customer_id for e in seen] == ["ada"]
    assert seen[0].payload["actions"] == {"webhook": crm.endpoint_id, "hook": True}


def test_two_evaluators_one_event_id(api: Api) -> None:
    history(api, "ada", [5])
    api.put(SILENT)
    engine = engine_for(api.host)
    assert engine is not None
    (trigger,) = engine.active("acme")
    from nextbest import ContextChange

    change = ContextChange(["ada"], {"customer.clv.recency_days": [40]}, as_of=NOW, provider="x")
    first = engine.evaluate("acme", trigger, change, commit=False)
    second = engine.evaluate("acme", trigger, change, commit=False)
    assert [f.event_id for f in first.firings] == [f.event_id for f in second.firings]
    # both commit: the state both saw holds for one of them only
    committed = engine.evaluate("acme", trigger, change)
    assert len(committed.firings) == 1
    assert (
        api.store.commit_trigger_changes(
            "acme", "silent", [c for c in _changes(engine, trigger, change)]
        )
        == []
    )
    assert [e["id"] for e in fired(api, "silent")] == [first.firings[0].event_id]


def _changes(engine: Any, trigger: Any, change: Any) -> list[Any]:
    """The changes a stale evaluator would commit (it saw no state yet)."""
    from nextbest.store import StateChange

    (firing,) = engine.evaluate("acme", trigger, change, commit=False).firings or [None]
    if firing is None:  # the engine now sees the stored state: build the stale one by hand
        from nextbest.store import Firing

        firing = Firing("evt_stale", "ada", 1, NOW, {"id": "evt_stale"})
    return [StateChange("ada", None, False, 1, NOW, {}, firing)]


def test_a_correction_is_evaluated_at_once(api: Api) -> None:
    api.put({"key": "big", "name": "Big spender", "when": "customer.clv.monetary >= 500"})
    history(api, "ada", [10, 5])  # 2 x 10.0
    assert fired(api, "big") == []
    # The second purchase was in fact 990: corrected, the record is recomputed and crosses.
    corrected = api.call(
        "PUT",
        "/api/v1/interactions/h-ada-1",
        json={"customerId": "ada", "outcome": "conversion", "conversionValue": 990.0,
              "offerId": "shop", "timestamp": time.strftime(
                  "%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - 5 * DAY))},
    )  # fmt: skip
    assert corrected.status_code == 200, corrected.text
    (event,) = fired(api, "big")
    assert event["values"] == {"customer.clv.monetary": 1000.0}
    assert event["previousValues"] == {"customer.clv.monetary": 20.0}


def test_a_bulk_import_is_evaluated_after_it_commits(api: Api, tmp_path: Any) -> None:
    from nextbest.ingest import ingest_file

    api.put({"key": "loyal", "name": "Third purchase", "when": "customer.clv.frequency >= 3"})
    rows = ["customer_id,timestamp,value"]
    for customer, purchases in (("ann", 3), ("bob", 1)):
        for d in range(purchases):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - (d + 1) * DAY))
            rows.append(f"{customer},{stamp},10")
    path = tmp_path / "orders.csv"
    path.write_text("\n".join(rows) + "\n")
    report = ingest_file(api.store, path, "acme")
    assert report.customers == {"ann", "bob"}
    assert fired(api, "loyal") == []  # the import itself calls no hook
    api.host.notify_interactions_imported("acme", report.customers)  # what `ingest` does
    assert [e["customerId"] for e in fired(api, "loyal")] == ["ann"]


def test_a_trigger_on_the_hosts_own_metrics_fires_on_respond(api: Api) -> None:
    # No plugin announces metrics.*: the host evaluates the triggers reading them itself.
    put = api.put({"key": "regular", "name": "Regular", "when": "metrics.conversions >= 3"})
    assert put.status_code == 201, put.text
    history(api, "ada", [10, 5])
    assert fired(api, "regular") == []
    api.respond("ada", "third")
    (event,) = fired(api, "regular")
    assert event["customerId"] == "ada" and event["values"] == {"metrics.conversions": 3}
    api.respond("ada", "fourth")  # still true: once per crossing
    assert len(fired(api, "regular")) == 1


def test_a_batch_as_of_another_time_than_the_present_fires_nothing(api: Api) -> None:
    history(api, "ada", [5, 3])
    assert api.put(SILENT).status_code == 201
    api.present(NOW)
    # A what-if 40 days ahead, and a backfill of a past date, are not crossings happening now.
    for as_of in (NOW + 40 * DAY, NOW - 2 * DAY):
        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(as_of))
        response = api.call("POST", "/api/v1/clv/compute", json={"asOf": iso})
        assert response.status_code == 200, response.text
    assert fired(api, "silent") == []
    assert api.store.trigger_states("acme", "silent") == {}
    api.compute(NOW + 40 * DAY)  # the same time, once it is the present: fires
    assert [e["customerId"] for e in fired(api, "silent")] == ["ada"]


def test_a_batch_firing_reports_the_values_before_the_batch(api: Api) -> None:
    history(api, "ada", [5, 3])
    history(api, "bob", [4])
    assert api.put(SILENT).status_code == 201
    api.compute(NOW + 10 * DAY)  # stored: recency 13 and 14 days, nobody silent yet
    api.compute(NOW + 40 * DAY)  # time alone crosses both
    by_customer = {e["customerId"]: e for e in fired(api, "silent")}
    name = "customer.clv.recency_days"
    assert by_customer["ada"]["values"][name] == 43
    assert by_customer["ada"]["previousValues"][name] == 13  # not null: the record before
    assert by_customer["bob"]["previousValues"][name] == 14
    # Whatever stored the record before: here the respond (as of the real now: not the
    # triggers' present, so it fired nothing), recency 50.
    history(api, "cyd", [50])
    assert [e for e in fired(api, "silent") if e["customerId"] == "cyd"] == []
    api.compute(NOW + 40 * DAY + 60)
    (cyd,) = [e for e in fired(api, "silent") if e["customerId"] == "cyd"]
    assert (cyd["previousValues"][name], cyd["values"][name]) == (50, 90)


QUIET = {"key": "quiet", "name": "No contact for 30 days",
         "when": "metrics.days_since_last_contact >= 30"}  # fmt: skip


def test_time_alone_crosses_a_metrics_trigger_at_the_next_run(api: Api) -> None:
    history(api, "ada", [5])
    history(api, "bob", [1])
    assert api.put(QUIET).status_code == 201
    assert api.put(SILENT).status_code == 201  # a CLV trigger beside it changes nothing
    api.present(NOW)
    run = api.call("POST", "/api/v1/trigger-runs")
    assert run.status_code == 200, run.text
    assert {t["key"]: t["fired"] for t in run.json()["triggers"]} == {"quiet": 0, "silent": 0}
    api.compute(NOW + 40 * DAY)  # a CLV batch evaluates the triggers reading CLV names only
    assert fired(api, "quiet") == [] and len(fired(api, "silent")) == 2
    body = api.call("POST", "/api/v1/trigger-runs").json()  # the present is NOW + 40 days
    assert body["evaluated"] == 2
    assert {t["key"]: t["fired"] for t in body["triggers"]} == {"quiet": 2, "silent": 0}
    (event,) = [e for e in fired(api, "quiet") if e["customerId"] == "ada"]
    assert event["values"]["metrics.days_since_last_contact"] == pytest.approx(45, abs=0.01)
    again = api.call("POST", "/api/v1/trigger-runs").json()
    assert sum(t["fired"] for t in again["triggers"]) == 0  # still true: fired once
    assert api.call("POST", "/api/v1/trigger-runs", role="viewer").status_code == 403


def _count_resolutions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The customers the trigger engine resolves one at a time from now on (a list that
    grows)."""
    from nextbest.triggers import engine as engine_module

    calls: list[str] = []
    real = engine_module.resolve_customer

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_module, "resolve_customer", counting)
    return calls


def test_a_batch_reads_the_metrics_a_trigger_needs_in_one_query(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nextbest.triggers import engine as engine_module

    for i in range(60):
        history(api, f"c{i:02d}", [5])
    both = {**SILENT, "key": "both",
            "when": "customer.clv.recency_days >= 30 and metrics.interactions >= 1"}  # fmt: skip
    assert api.put(both).status_code == 201
    calls = _count_resolutions(monkeypatch)
    monkeypatch.setattr(engine_module, "_METRICS_IN_BULK", 50)  # 60 customers count as many
    api.compute(NOW + 40 * DAY)
    events = fired(api, "both")
    assert len(events) == 50  # a page: 60 fired
    assert calls == []  # no customer's summary read one by one
    assert events[0]["context"]["request"]["metrics.interactions"] == 1  # by provider
    assert "customer.clv.segment" in events[0]["context"]["clv"]


def test_previous_wanted_names_only_who_may_fire_and_a_replaced_trigger_is_read_afresh(
    api: Api,
) -> None:
    from nextbest import ContextChange

    engine = engine_for(api.host)
    assert engine is not None
    api.present(NOW)
    name = "customer.clv.recency_days"
    change = ContextChange(["ada", "bob"], {name: [40, 5]}, as_of=NOW, provider="clv")
    # No column form (a function): the formula decides, so only ada is read, not every
    # armed customer.
    assert api.put({**SILENT, "when": f"abs({name}) >= 30"}).status_code == 201
    assert engine.previous_wanted("acme", change) == {"ada"}
    assert api.put({**SILENT, "when": f"{name} >= 30"}).status_code == 200
    assert engine.previous_wanted("acme", change) == {"ada"}  # the column form: ada only
    # The trigger is replaced between the question and the evaluation: its states and
    # candidates are found again (bob fires under the new condition).
    assert api.put({**SILENT, "when": f"{name} >= 3"}).status_code == 200
    engine.context_changed("acme", change)
    assert sorted(e["customerId"] for e in fired(api, "silent")) == ["ada", "bob"]


def test_a_change_naming_a_customer_twice_is_evaluated_once_per_customer(api: Api) -> None:
    from nextbest import ContextChange

    engine = engine_for(api.host)
    assert engine is not None
    api.present(NOW)
    assert api.put(SILENT).status_code == 201
    name = "customer.clv.recency_days"
    change = ContextChange(["ada", "bob", "ada"], {name: [1, 40, 45]}, as_of=NOW, provider="x")
    engine.context_changed("acme", change)  # the last of ada's rows counts: 45
    events = {e["customerId"]: e for e in fired(api, "silent")}
    assert sorted(events) == ["ada", "bob"] and events["ada"]["values"][name] == 45


def test_a_firing_follows_the_control_group(api: Api) -> None:
    # a salt that puts ada in the control group (share 0.5, mode none)
    salt = next(
        s
        for s in map(str, range(100))
        if assign(ControlGroupSettings(share=0.5, salt=s), "acme", "ada").group == "control"
    )
    flow = {
        "key": "winback",
        "version": 2,
        "settings": {"controlGroup": {"share": 0.5, "salt": salt}},
        "nodes": [
            {"type": "inventory", "id": "all"},
            {"type": "score", "id": "s", "config": {"method": "priority_weighted"}},
            {"type": "rank", "id": "rank"},
        ],
    }
    assert api.call("POST", "/api/v1/flows", json=flow).status_code == 201
    assert api.call("POST", "/api/v1/flows/winback/versions/1/publish").status_code == 200
    history(api, "ada", [10, 5])
    api.put({"key": "loyal", "name": "Third", "when": "customer.clv.frequency >= 3",
             "flow": "winback"})  # fmt: skip
    api.respond("ada", "third")
    (event,) = fired(api, "loyal")
    assert event["group"] == "control" and event["offers"] == []
    stored = api.store.get_recommendation("acme", event["recommendationId"])
    assert stored is not None and stored.group == "control" and stored.items == []


def test_an_evaluation_of_older_values_does_not_undo_a_newer_one(api: Api) -> None:
    """A run that read its values before a respond committed, or a batch announced after a
    later run, is not applied over the newer state: no re-arm from stale values, so no second
    firing for one crossing."""
    from nextbest import ContextChange

    engine = engine_for(api.host)
    assert engine is not None
    assert api.put(SILENT).status_code == 201
    name = "customer.clv.recency_days"
    api.present(NOW)

    def change(value: float, at: float) -> ContextChange:
        return ContextChange(["ada"], {name: [value]}, as_of=at, provider="clv")

    engine.context_changed("acme", change(40, NOW))  # fires, values as of NOW
    engine.context_changed("acme", change(5, NOW - 600))  # older values: would re-arm
    state = api.store.trigger_states("acme", "silent")["ada"]
    assert not state.armed and state.values_at == NOW
    engine.context_changed("acme", change(41, NOW + 60))  # still silent: nothing
    engine.context_changed("acme", change(5, NOW + 120))  # newer values: re-armed
    assert api.store.trigger_states("acme", "silent")["ada"].armed
    assert len(fired(api, "silent")) == 1


def test_a_batch_evaluates_triggers_on_a_probabilistic_models_fields(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch passes the RFM fields as columns; a trigger that reads only a model field
    (resolved through the provider) is evaluated by the batch all the same."""
    import random

    from nextbest_clv.service import service_for
    from nextbest_clv.service.fits import fit_tenant_model

    rng = random.Random(4)
    for i in range(40):
        days = sorted({rng.randint(1, 300) for _ in range(rng.randint(2, 6))}, reverse=True)
        history(api, f"c{i:02d}", days)
    service = service_for(api.host)
    fit_tenant_model(api.store, "acme", "bgnbd", service.get_settings("acme"), penalizer=0.01)
    service.update_settings("acme", {"model": "bgnbd"})
    doc = {**SILENT, "key": "fading", "when": "customer.clv.probability_alive < 0.95"}
    churn = {**SILENT, "key": "churning", "when": "customer.clv.churn_probability >= 0.05"}
    assert api.put(doc).status_code == 201 and api.put(churn).status_code == 201
    calls = _count_resolutions(monkeypatch)
    api.compute(NOW + 400 * DAY)
    events = fired(api, "fading")
    assert events, "the batch did not evaluate the model-field trigger"
    assert all(e["values"]["customer.clv.probability_alive"] < 0.95 for e in events)
    assert calls == []  # the model's fields came with the batch, as columns
    # churn is the model's, as the stored record says (not the RFM rule's)
    (first, *_) = fired(api, "churning")
    record = service.get("acme", first["customerId"], as_of=NOW + 400 * DAY)
    name = "customer.clv.churn_probability"
    assert first["values"][name] == pytest.approx(record["churnProbability"])
    assert first["context"]["clv"]["customer.clv.model"] == "bgnbd"
    # The record read before the write was an RFM one: no previous model values from it.
    assert first["previousValues"][name] is None


def test_a_large_change_reads_the_disarmed_ids_then_only_its_candidates(api: Api) -> None:
    """Above 2,000 customers a change reads the disarmed customers' ids in one query and the
    full states of its candidates only; the outcome equals a small change's."""
    from nextbest import ContextChange

    engine = engine_for(api.host)
    assert engine is not None
    api.present(NOW)
    assert api.put(SILENT).status_code == 201
    name = "customer.clv.recency_days"
    ids = [f"c{i:04d}" for i in range(2500)]
    first = [40 if i % 5 == 0 else 3 for i in range(2500)]
    engine.context_changed("acme", ContextChange(ids, {name: first}, as_of=NOW, provider="clv"))
    assert len(api.store.disarmed_customers("acme", "silent")) == 500
    # Time passes: the fired ones stay fired, every tenth of the others crosses, one re-arms.
    second = [40 if i % 5 == 0 else (35 if i % 10 == 1 else 3) for i in range(2500)]
    second[0] = 2
    later = ContextChange(ids, {name: second}, as_of=NOW + 60, provider="clv")
    (evaluation,) = engine.context_changed("acme", later)
    assert evaluation.transitions == {"fire": 250, "suppress": 0, "rearm": 1}
    assert len(api.store.disarmed_customers("acme", "silent")) == 749
