"""A plugin failing under a flow's ``onPluginError: fail`` is a 503 naming the plugin and the
flow (the flow's own rule), not an anonymous 500; the default policy still answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from apikit import Api, RecorderPlugin, error_of, seed
from fastapi.testclient import TestClient

from nextbest import ContextProvider, Host, hookimpl
from nextbest.api import create_app
from nextbest.store import Store


class Flaky:
    """A context provider that always fails."""

    @hookimpl
    def register_context(self, register: Any) -> None:
        def resolve(ctx: Any) -> dict[str, Any]:
            raise RuntimeError("the CRM is down")

        register(ContextProvider("flaky", resolve, names=frozenset({"customer.luck"})))


@pytest.fixture
def flaky_api(store: Store) -> Iterator[Api]:
    recorder = RecorderPlugin()
    host = Host(plugins=[recorder, Flaky()], store=store)
    keys = seed(store)
    with TestClient(create_app(host, store), raise_server_exceptions=False) as client:
        yield Api(client, store, host, recorder, keys)


def lucky(policy: str) -> dict[str, Any]:
    return {
        "key": f"lucky-{policy}",
        "version": 2,
        "settings": {"onPluginError": policy},
        "nodes": [
            {"type": "inventory", "id": "all", "config": {"scope": "all"}},
            {"type": "filter", "id": "lucky", "config": {"expression": "customer.luck == 1"}},
            {"type": "score", "id": "score", "config": {"method": "priority_weighted"}},
            {"type": "rank", "id": "top", "config": {"maxCandidates": 1}},
        ],
    }


def test_a_strict_flows_plugin_failure_is_a_503_naming_it(flaky_api: Api) -> None:
    api = flaky_api
    for policy in ("fail", "isolate"):
        doc = lucky(policy)
        api.store.publish_flow("acme", doc["key"], api.store.save_flow("acme", doc["key"], doc))
    body = {"customerId": "ada", "decisionFlowKey": "lucky-fail"}
    error = error_of(api.client.post("/api/v1/recommend", json=body, headers=api.headers()), 503)
    assert error["code"] == "decision_failed"
    assert "'Flaky'" in error["message"] and "lucky-fail" in error["message"]
    body["decisionFlowKey"] = "lucky-isolate"
    response = api.client.post("/api/v1/recommend", json=body, headers=api.headers())
    assert response.status_code == 200, response.text


def test_a_stored_flow_that_no_longer_validates_is_a_409(flaky_api: Api) -> None:
    api = flaky_api
    doc = lucky("degrade")  # written around the API: not an onPluginError value
    api.store.publish_flow("acme", doc["key"], api.store.save_flow("acme", doc["key"], doc))
    body = {"customerId": "ada", "decisionFlowKey": doc["key"]}
    error = error_of(api.client.post("/api/v1/recommend", json=body, headers=api.headers()), 409)
    assert error["code"] == "invalid_stored_flow"
    assert [d["field"] for d in error["details"]] == ["stored.settings.onPluginError"]
