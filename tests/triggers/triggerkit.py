"""Shared builders for the trigger tests: the app on a real host (the CLV plugin loaded from
its entry point) with keys per role. A module of its own (not conftest) so test files can
import it unambiguously."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from nextbest import Host
from nextbest.api import create_app
from nextbest.store import Store
from nextbest.triggers import engine_for

DAY = 86_400.0
NOW = time.time()


class Api:
    """A test client with a key per role of tenants acme and globex."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.host = Host(store=store)
        self.client = TestClient(create_app(self.host, store))
        self.keys = {
            (tenant, role): store.create_api_key(tenant, role)[1]
            for tenant in ("acme", "globex")
            for role in ("viewer", "editor", "admin")
        }
        for tenant in ("acme", "globex"):
            offer = {"id": "shop", "name": "Shop", "businessValue": 10}
            created = self.call("POST", "/api/v1/offers", tenant, json=offer)
            assert created.status_code == 201, created.text

    def call(
        self, method: str, path: str, tenant: str = "acme", role: str = "editor", **kw: Any
    ) -> Any:
        headers = {
            "Authorization": f"Bearer {self.keys[(tenant, role)]}",
            "X-Tenant-Id": tenant,
        }
        return self.client.request(method, path, headers=headers, **kw)

    def respond(self, customer: str, key: str, **extra: Any) -> Any:
        body = {"customerId": customer, "outcome": "conversion", "idempotencyKey": key,
                "offerId": "shop", **extra}  # fmt: skip
        response = self.call("POST", "/api/v1/respond", json=body)
        assert response.status_code in (200, 201), response.text
        return response

    def compute(self, as_of: float) -> Any:
        """A batch as of ``as_of``, which becomes the triggers' present (time passing)."""
        self.present(as_of)
        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(as_of))
        response = self.call("POST", "/api/v1/clv/compute", json={"asOf": iso})
        assert response.status_code == 200, response.text
        return response.json()

    def present(self, at: float) -> None:
        """Make ``at`` the present of the host's trigger engine."""
        engine = engine_for(self.host)
        assert engine is not None
        engine.clock = lambda: at

    def put(self, document: dict[str, Any], tenant: str = "acme") -> Any:
        return self.call("PUT", f"/api/v1/triggers/{document['key']}", tenant, json=document)

    def events(self, key: str, tenant: str = "acme", **params: Any) -> Any:
        response = self.call(
            "GET", f"/api/v1/triggers/{key}/events", tenant, "viewer", params=params
        )
        assert response.status_code == 200, response.text
        return response.json()


SILENT = {
    "key": "silent",
    "name": "Silent for 30 days",
    "when": "customer.clv.recency_days >= 30",
}


def history(api: Api, customer: str, days_ago: list[float], tenant: str = "acme") -> None:
    for i, d in enumerate(days_ago):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - d * DAY))
        response = api.call(
            "POST",
            "/api/v1/respond",
            tenant,
            json={
                "customerId": customer,
                "outcome": "conversion",
                "idempotencyKey": f"h-{customer}-{i}",
                "offerId": "shop",
                "conversionValue": 10.0,
                "timestamp": stamp,
            },
        )
        assert response.status_code in (200, 201), response.text


def fired(api: Api, key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.events(key)["items"]
    return items
