"""A trigger's ``webhook`` action end to end: the firing is written to the outbox in its own
transaction, a deliverer sends it signed to a real receiver on a loopback port (verified by an
independent hmac), once per crossing, with the attached offers; an unknown endpoint, or one
whose event filter leaves ``trigger.fired`` out, is a 400 naming ``actions.webhook``; a firing
whose transaction fails leaves no outbox event."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from triggerkit import Api, history

from nextbest.outbox import Deliverer, TargetPolicy, WebhookSettings, add_endpoint
from nextbest.triggers import engine_for

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "outbox"))
from receiver import Receiver, running, verify

LOYAL = {"key": "loyal", "name": "Third purchase", "when": "customer.clv.frequency >= 3"}


def endpoint(api: Api, url: str) -> tuple[str, str]:
    policy = TargetPolicy(allow_private=True)  # the receiver is on loopback

    created, secret = add_endpoint(api.store, policy, "acme", url, event_types=["trigger.fired"])
    return created.endpoint_id, secret


def deliver(api: Api) -> int:
    settings = WebhookSettings(policy=TargetPolicy(allow_private=True))
    deliverer = Deliverer(api.store, settings)
    try:
        return deliverer.drain()
    finally:
        deliverer.close()


def test_a_crossing_is_delivered_once_signed_with_its_payload(api: Api) -> None:
    with running(Receiver()) as receiver:
        endpoint_id, secret = endpoint(api, receiver.url + "/hooks")
        put = api.put({**LOYAL, "actions": {"webhook": endpoint_id}})
        assert put.status_code == 201, put.text
        history(api, "ada", [10, 5])
        api.respond("ada", "third")  # crosses frequency >= 3
        # The outbox row was written with the firing: pending before any deliverer runs.
        (pending,) = api.store.list_deliveries("acme", status="pending").items
        assert pending.endpoint_id == endpoint_id
        api.respond("ada", "fourth")  # still true: no second firing, no second event
        assert deliver(api) == 1
        (request,) = receiver.requests
        assert verify(secret, request.headers, request.body)
        body = request.json()
        assert body["type"] == "trigger.fired" and body["id"] == request.webhook_id
        data = body["data"]
        assert (data["customerId"], data["triggerKey"]) == ("ada", "loyal")
        assert data["values"] == {"customer.clv.frequency": 3}
        assert data["previousValues"] == {"customer.clv.frequency": 2}
        (event,) = api.events("loyal")["items"]
        assert event["id"] == request.webhook_id  # the firing's id is the delivery's
        assert deliver(api) == 0 and len(receiver.requests) == 1


def test_an_unknown_endpoint_is_a_400_naming_the_action(api: Api) -> None:
    response = api.put({**LOYAL, "actions": {"webhook": "ep_0000000000000000"}})
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert [d["field"] for d in details] == ["body.actions.webhook"], details
    assert "no webhook endpoint 'ep_0000000000000000'" in details[0]["message"]


def test_an_endpoint_whose_filter_refuses_firings_is_a_400_naming_the_action(api: Api) -> None:
    policy = TargetPolicy(allow_private=True)
    created, _ = add_endpoint(
        api.store, policy, "acme", "http://127.0.0.1:9/hooks", event_types=["webhook.test"]
    )
    response = api.put({**LOYAL, "actions": {"webhook": created.endpoint_id}})
    assert response.status_code == 400, response.text
    details = response.json()["error"]["details"]
    assert [d["field"] for d in details] == ["body.actions.webhook"], details
    assert "does not accept 'trigger.fired' events" in details[0]["message"]
    assert api.store.get_trigger("acme", "loyal") is None


def test_an_endpoint_removed_while_a_trigger_is_saved_is_a_400(api: Api) -> None:
    endpoint_id, _ = endpoint(api, "http://127.0.0.1:9/hooks")
    engine = engine_for(api.host)
    assert engine is not None
    real = engine.validate

    def validate_then_remove(tenant_id: str, document: Any, key: str | None = None) -> Any:
        compiled = real(tenant_id, document, key)
        # Another request removes the endpoint between the check and the save.
        assert api.store.delete_webhook_endpoint(tenant_id, endpoint_id)
        return compiled

    engine.validate = validate_then_remove  # type: ignore[method-assign]
    response = api.put({**LOYAL, "actions": {"webhook": endpoint_id}})
    assert response.status_code == 400, response.text
    details = response.json()["error"]["details"]
    assert [d["field"] for d in details] == ["body.actions.webhook"], details
    assert api.store.get_trigger("acme", "loyal") is None


def test_a_failed_firing_transaction_writes_no_outbox_event(api: Api) -> None:
    endpoint_id, _ = endpoint(api, "http://127.0.0.1:9/hooks")
    api.put({**LOYAL, "actions": {"webhook": endpoint_id}})
    engine = engine_for(api.host)
    assert engine is not None

    def fail(cursor: Any, tenant_id: str, firings: Any) -> None:
        raise RuntimeError("crash before commit")

    engine.add_participant(fail)  # runs after the outbox participant, same transaction
    history(api, "ada", [10, 5])
    api.respond("ada", "third")  # the outcome is committed; the firing is not
    assert api.events("loyal")["items"] == []
    assert api.store.list_deliveries("acme").items == []
    assert api.store.trigger_states("acme", "loyal") == {}


def test_forgetting_a_customer_deletes_their_outbox_events_and_deliveries(api: Api) -> None:
    endpoint_id, _ = endpoint(api, "http://127.0.0.1:9/hooks")
    api.put({**LOYAL, "actions": {"webhook": endpoint_id}})
    for customer in ("ada", "bob"):
        history(api, customer, [10, 5])
        api.respond(customer, f"{customer}-third")
    assert len(api.store.list_deliveries("acme").items) == 2
    forgot = api.call("DELETE", "/api/v1/customers/ada", role="admin")
    assert forgot.status_code == 200, forgot.text
    assert forgot.json()["deleted"]["outboxEvents"] == 1
    (left,) = api.store.list_deliveries("acme").items  # bob's: nothing of ada is sent
    assert api.store.get_event("acme", left.event_id).payload["customerId"] == "bob"  # type: ignore[union-attr]


def test_an_endpoint_a_trigger_names_cannot_be_removed(api: Api) -> None:
    endpoint_id, _ = endpoint(api, "http://127.0.0.1:9/hooks")
    api.put({**LOYAL, "status": "paused", "actions": {"webhook": endpoint_id}})
    path = f"/api/v1/webhooks/endpoints/{endpoint_id}"
    refused = api.call("DELETE", path, role="admin")
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "endpoint_in_use" and "'loyal'" in error["message"]
    assert api.store.get_webhook_endpoint("acme", endpoint_id) is not None
    assert api.call("DELETE", "/api/v1/triggers/loyal", role="editor").status_code == 204
    assert api.call("DELETE", path, role="admin").status_code == 204
