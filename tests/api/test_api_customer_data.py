"""Correcting, deleting and reading one recorded outcome, forgetting a customer, unknown offers
and refunds over HTTP, on both stores, with the plugins' hooks."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from apikit import Api, RecorderPlugin, error_of, fields_of, seed
from fastapi.testclient import TestClient

from nextbest import Host, HostAPI, Interaction, RegisterCustomerData, hookimpl
from nextbest.api import create_app
from nextbest.store import Store

PROFILES = "test.profiles"


class CustomerDataPlugin:
    """Keeps per-customer documents and records the after-commit hooks (and whether what they
    announce was committed when they ran)."""

    def __init__(self) -> None:
        self.changed: list[tuple[str, list[Interaction], list[Interaction], bool]] = []
        self.forgotten: list[tuple[str, str, bool]] = []
        self.fail_to_forget: str | None = None

    @hookimpl
    def register_customer_data(self, register: RegisterCustomerData) -> None:
        register(PROFILES)

    @hookimpl
    def interactions_changed(
        self,
        host: HostAPI,
        tenant_id: str,
        removed: Sequence[Interaction],
        added: Sequence[Interaction],
    ) -> None:
        assert host.store is not None
        key = (removed or added)[0].idempotency_key
        now = host.store.get_interaction(tenant_id, key)
        committed = now == (added[0] if added else None)
        self.changed.append((tenant_id, list(removed), list(added), committed))

    @hookimpl
    def customer_forgotten(self, host: HostAPI, tenant_id: str, customer_id: str) -> None:
        assert host.store is not None
        gone = host.store.get_customer_summary(tenant_id, customer_id) is None
        self.forgotten.append((tenant_id, customer_id, gone))
        if customer_id == self.fail_to_forget:
            raise RuntimeError("the CRM copy could not be deleted")


@pytest.fixture
def data_api(store: Store) -> Iterator[tuple[Api, CustomerDataPlugin]]:
    recorder, plugin = RecorderPlugin(), CustomerDataPlugin()
    host = Host(plugins=[recorder, plugin], store=store)
    keys = seed(store)
    with TestClient(create_app(host, store), raise_server_exceptions=False) as client:
        yield Api(client, store, host, recorder, keys), plugin


def respond(api: Api, tenant: str = "acme", **body: Any) -> Any:
    payload = {
        "customerId": "ada",
        "offerId": "premium-card",
        "outcome": "conversion",
        "conversionValue": 10.0,
        "idempotencyKey": "order-1",
        "timestamp": "2026-01-15T10:00:00Z",
    } | body
    return api.client.post(
        "/api/v1/respond",
        json=payload,
        headers=api.headers(tenant, "admin" if tenant != "acme" else "editor"),
    )


def put(api: Api, key: str, role: str = "editor", **body: Any) -> Any:
    payload = {"customerId": "ada", "offerId": "premium-card", "outcome": "conversion"} | body
    return api.client.put(
        f"/api/v1/interactions/{key}", json=payload, headers=api.headers(role=role)
    )


def test_correct_an_outcome(data_api: tuple[Api, CustomerDataPlugin]) -> None:
    api, plugin = data_api
    assert respond(api).status_code == 200
    response = put(api, "order-1", conversionValue=12.5)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["changed"] is True
    assert body["previous"]["conversionValue"] == 10.0
    assert body["interaction"]["conversionValue"] == 12.5
    # No timestamp in the correction: the recorded time is kept.
    assert body["interaction"]["timestamp"] == "2026-01-15T10:00:00+00:00"
    summary = api.store.get_customer_summary("acme", "ada")
    assert summary is not None and (summary.interactions, summary.total_value) == (1, 12.5)
    # One interactions_changed call after the commit; outcome_recorded only for the respond.
    [(tenant, removed, added, committed)] = plugin.changed
    assert tenant == "acme" and committed
    assert [i.value for i in removed] == [10.0] and [i.value for i in added] == [12.5]
    assert len(api.plugin.calls) == 1
    # The same correction again changes nothing and announces nothing.
    again = put(api, "order-1", conversionValue=12.5)
    assert again.status_code == 200 and again.json()["changed"] is False
    assert len(plugin.changed) == 1
    # The key's respond retry now compares with the corrected outcome.
    assert error_of(respond(api), 409)["code"] == "idempotency_conflict"
    replay = respond(api, conversionValue=12.5)
    assert replay.status_code == 200 and replay.headers["idempotent-replayed"] == "true"


def test_correction_errors(data_api: tuple[Api, CustomerDataPlugin]) -> None:
    api, plugin = data_api
    respond(api)
    assert error_of(put(api, "nope"), 404)["code"] == "interaction_not_found"
    assert error_of(put(api, "order-1", role="viewer"), 403)["code"] == "forbidden"
    mismatch = error_of(put(api, "order-1", idempotencyKey="order-2"), 400)
    assert fields_of(mismatch) == ["body.idempotencyKey"]
    unknown = error_of(put(api, "order-1", offerId="ghost"), 404)
    assert unknown["code"] == "unknown_offer" and fields_of(unknown) == ["body.offerId"]
    refund = error_of(put(api, "order-1", outcome="refund", conversionValue=3.0), 400)
    assert fields_of(refund) == ["body.conversionValue"] and "refund" in refund["message"]
    huge = error_of(put(api, "order-1", conversionValue=7.5e304), 400)
    assert fields_of(huge) == ["body.conversionValue"]
    no_offer = error_of(put(api, "order-1", offerId=None), 400)
    assert fields_of(no_offer) == ["body.offerId"]
    assert plugin.changed == []
    stored = api.store.get_interaction("acme", "order-1")
    assert stored is not None and stored.value == 10.0


def test_delete_and_read_an_outcome(data_api: tuple[Api, CustomerDataPlugin]) -> None:
    api, plugin = data_api
    respond(api)
    respond(api, idempotencyKey="order-2", conversionValue=5.0)
    read = api.get("/api/v1/interactions/order-2", role="viewer")
    assert read.status_code == 200 and read.json()["conversionValue"] == 5.0
    assert error_of(
        api.client.delete("/api/v1/interactions/order-2", headers=api.headers(role="viewer")), 403
    )
    response = api.client.delete("/api/v1/interactions/order-2", headers=api.headers(role="editor"))
    assert response.status_code == 200 and response.json()["deleted"]["idempotencyKey"] == "order-2"
    assert error_of(api.get("/api/v1/interactions/order-2"), 404)["code"] == "interaction_not_found"
    again = api.client.delete("/api/v1/interactions/order-2", headers=api.headers())
    assert error_of(again, 404)["code"] == "interaction_not_found"
    summary = api.store.get_customer_summary("acme", "ada")
    assert summary is not None and (summary.interactions, summary.total_value) == (1, 10.0)
    [(_, removed, added, committed)] = plugin.changed
    assert [i.idempotency_key for i in removed] == ["order-2"] and added == [] and committed
    # Another tenant's key is not found in yours.
    assert error_of(api.get("/api/v1/interactions/order-1", tenant="globex"), 404)


def test_keys_with_slashes_and_bad_keys(data_api: tuple[Api, CustomerDataPlugin]) -> None:
    api, _ = data_api
    respond(api, idempotencyKey="shop/orders/17")
    for path in ("shop/orders/17", "shop%2Forders%2F17"):
        found = api.get(f"/api/v1/interactions/{path}", role="viewer")
        assert found.status_code == 200 and found.json()["idempotencyKey"] == "shop/orders/17"
    bad = error_of(api.get("/api/v1/interactions/bad%00key"), 400)
    assert fields_of(bad) == ["path.idempotencyKey"]


def test_forget_never_swallows_a_route_below_a_customer(
    data_api: tuple[Api, CustomerDataPlugin],
) -> None:
    api, _ = data_api
    respond(api)  # ada has data
    # DELETE on a plugin's route below the customer is not "forget customer 'ada/clv'"
    response = api.client.delete("/api/v1/customers/ada/clv", headers=api.headers())
    assert response.status_code in (404, 405)  # 405 where a plugin serves GET/POST there
    assert api.store.get_customer_summary("acme", "ada") is not None


def test_forget_a_customer(data_api: tuple[Api, CustomerDataPlugin]) -> None:
    api, plugin = data_api
    respond(api)
    respond(api, idempotencyKey="order-2", offerId="savings-boost")
    respond(api, idempotencyKey="bob-1", customerId="bob")
    respond(api, tenant="globex", offerId="globex-only")
    api.recommend()
    api.store.put_documents(PROFILES, "acme", {"ada": {"tier": "gold"}, "bob": {"tier": "silver"}})
    api.store.put_documents(PROFILES, "globex", {"ada": {"tier": "basic"}})
    api.store.put_customer_attributes("acme", {"ada": {"channel": "web"}})
    denied = api.client.delete("/api/v1/customers/ada", headers=api.headers(role="editor"))
    assert error_of(denied, 403)["code"] == "forbidden"

    response = api.client.delete("/api/v1/customers/ada", headers=api.headers())
    assert response.status_code == 200, response.text
    assert response.json() == {
        "customerId": "ada",
        "deleted": {
            "interactions": 2,
            "customerSummaries": 1,
            "offerSummaries": 2,
            "dailySummaries": 1,
            "recommendations": 1,
            "documents": {PROFILES: 1},
            "triggerStates": 0,
            "triggerEvents": 0,
            "outboxEvents": 0,
            "customerAttributes": 1,
        },
        "pluginFailures": [],
    }
    assert plugin.forgotten == [("acme", "ada", True)]
    assert api.store.get_customer_summary("acme", "ada") is None
    assert api.store.get_document(PROFILES, "acme", "ada") is None
    assert api.store.get_document(PROFILES, "acme", "bob") == {"tier": "silver"}
    assert api.store.get_customer_summary("acme", "bob") is not None
    assert api.store.get_customer_summary("globex", "ada") is not None
    assert api.store.get_document(PROFILES, "globex", "ada") == {"tier": "basic"}
    retry = api.client.delete("/api/v1/customers/ada", headers=api.headers())
    assert retry.status_code == 200 and retry.json()["deleted"]["interactions"] == 0
    # A plugin that fails to forget is reported: the data it keeps may remain.
    plugin.fail_to_forget = "bob"
    failed = api.client.delete("/api/v1/customers/bob", headers=api.headers())
    assert failed.status_code == 200 and failed.json()["pluginFailures"] == [
        {"plugin": "CustomerDataPlugin", "error": "RuntimeError: the CRM copy could not be deleted"}
    ]


def test_respond_with_an_offer_outside_the_catalog(
    data_api: tuple[Api, CustomerDataPlugin],
) -> None:
    api, _ = data_api
    error = error_of(respond(api, offerId="elsewhere"), 404)
    assert error["code"] == "unknown_offer" and fields_of(error) == ["body.offerId"]
    assert "acceptUnknownOffers" in error["message"]
    assert api.store.get_interaction("acme", "order-1") is None
    api.store.update_tenant_settings("acme", {"acceptUnknownOffers": True})
    accepted = respond(api, offerId="elsewhere")
    assert accepted.status_code == 200 and accepted.json()["offerId"] == "elsewhere"
    # Citing a recommendation is never refused for its offer.
    api.store.update_tenant_settings("acme", {"acceptUnknownOffers": None})
    rec = api.recommend()
    cited = respond(
        api, idempotencyKey="cited", offerId=None, recommendationId=rec["recommendationId"], rank=1
    )
    assert cited.status_code == 200


def test_refunds_net_the_total(data_api: tuple[Api, CustomerDataPlugin]) -> None:
    api, _ = data_api
    assert respond(api, conversionValue=80.0).status_code == 200
    refund = respond(api, idempotencyKey="refund-1", outcome="refund", conversionValue=-30.0)
    assert refund.status_code == 200, refund.text
    assert refund.json()["classification"] == "negative"
    summary = api.store.get_customer_summary("acme", "ada")
    assert summary is not None and (summary.conversions, summary.total_value) == (1, 50.0)
    wrong_sign = error_of(
        respond(api, idempotencyKey="r2", outcome="refund", conversionValue=5.0), 400
    )
    assert fields_of(wrong_sign) == ["body.conversionValue"]
    negative = error_of(respond(api, idempotencyKey="r3", conversionValue=-5.0), 400)
    assert fields_of(negative) == ["body.conversionValue"]
    huge = error_of(respond(api, idempotencyKey="r4", conversionValue=7.5e304), 400)
    assert fields_of(huge) == ["body.conversionValue"]


def test_respond_context_with_a_lone_surrogate_is_a_400(
    data_api: tuple[Api, CustomerDataPlugin],
) -> None:
    api, _ = data_api
    body = json.dumps(
        {
            "customerId": "ada",
            "offerId": "premium-card",
            "outcome": "click",
            "idempotencyKey": "k",
            "context": {"note": "\ud800"},
        }
    )  # json.dumps escapes the lone surrogate as \\ud800, which JSON parsers accept
    response = api.client.post(
        "/api/v1/respond",
        content=body,
        headers=api.headers(role="editor", **{"Content-Type": "application/json"}),
    )
    error = error_of(response, 400)
    assert fields_of(error) == ["body.context.note"]
    assert api.store.get_interaction("acme", "k") is None
