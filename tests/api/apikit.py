"""API test kit (fixtures and helpers; conftest.py re-exports the fixtures).

Every test using ``api`` runs on SQLite and, with NEXTBEST_TEST_POSTGRES_URL set,
on PostgreSQL (a throwaway schema per test, dropped afterwards).

Tenants: ``acme`` (admin, editor and viewer keys, the example offers and the cross-sell flow
published) and ``globex`` (an admin key, one offer, the same flow published). Only the built-in
plugin is loaded from entry points, plus :class:`RecorderPlugin`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Body, Depends
from fastapi.testclient import TestClient

from nextbest import Host, HostAPI, Interaction, hookimpl
from nextbest.api import create_app
from nextbest.api.auth import AuthContext, require_role
from nextbest.documents import load_document
from nextbest.store import Store, open_store

PEPPER = b"api-test-pepper"
# Module level: FastAPI resolves string annotations in the function's globals.
AdminAuth = Annotated[AuthContext, Depends(require_role("admin"))]
PG_URL_ENV = "NEXTBEST_TEST_POSTGRES_URL"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
OFFERS: list[dict[str, Any]] = load_document(EXAMPLES / "offers.yaml")["offers"]
FLOW: dict[str, Any] = load_document(EXAMPLES / "flows" / "cross-sell.yaml")
ADA = {
    "customerId": "ada",
    "channel": "web",
    "segments": ["professional"],
    "attributes": {"age": 36, "income": 72000, "homeowner": True},
}


class RecorderPlugin:
    """Records outcome_recorded calls (the host, and whether the row was committed when the
    hook ran) and adds routes guarded by the host's auth dependency: ``whoami`` and ``echo``
    (which answers the JSON body it was sent, so tests see what reaches a plugin route)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Interaction, bool]] = []
        self.hosts: list[HostAPI] = []

    @hookimpl
    def outcome_recorded(self, host: HostAPI, tenant_id: str, interaction: Interaction) -> None:
        assert host.store is not None
        self.hosts.append(host)
        # Another connection sees the row only once the transaction committed.
        committed = host.store.get_interaction(tenant_id, interaction.idempotency_key) is not None
        self.calls.append((tenant_id, interaction, committed))

    @hookimpl
    def register_routes(self, router: APIRouter, host: HostAPI) -> None:
        @router.get("/api/v1/recorder/whoami")
        def whoami(auth: AdminAuth) -> dict[str, str]:
            return {"tenant": auth.tenant_id, "role": auth.role, "plugin": "recorder"}

        @router.post("/api/v1/recorder/echo")
        def echo(auth: AdminAuth, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
            return body


@dataclass
class Api:
    """A running API over a fresh store, with keys by (tenant, role)."""

    client: TestClient
    store: Store
    host: Host
    plugin: RecorderPlugin
    keys: dict[tuple[str, str], str] = field(default_factory=dict)

    def headers(self, tenant: str = "acme", role: str = "admin", **extra: str) -> dict[str, str]:
        return {
            "X-Tenant-Id": tenant,
            "Authorization": f"Bearer {self.keys[(tenant, role)]}",
            **extra,
        }

    def post(
        self, path: str, body: Any = None, tenant: str = "acme", role: str = "admin", **kw: Any
    ) -> Any:
        return self.client.post(path, json=body, headers=self.headers(tenant, role), **kw)

    def get(self, path: str, tenant: str = "acme", role: str = "admin", **kw: Any) -> Any:
        return self.client.get(path, headers=self.headers(tenant, role), **kw)

    def recommend(self, tenant: str = "acme", **body: Any) -> dict[str, Any]:
        response = self.post(
            "/api/v1/recommend",
            {**ADA, **body},
            tenant=tenant,
            role="editor" if tenant == "acme" else "admin",
        )
        assert response.status_code == 200, response.text
        return response.json()


def error_of(response: Any, status: int) -> dict[str, Any]:
    """The error object of a response, checking the status and the one error shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "status", "details"}
    assert error["status"] == status and error["message"] and isinstance(error["details"], list)
    return error


def fields_of(error: dict[str, Any]) -> list[str]:
    """The fields named by an error's details."""
    return [d.get("field") for d in error["details"]]


@pytest.fixture(autouse=True)
def only_builtin_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load just the built-in plugin from entry points, so other plugins cannot change results."""
    monkeypatch.setenv("NEXTBEST_PLUGINS", "builtin")


def _drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """(url, schema) of an empty, migrated database: SQLite in tmp_path or a new PG schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'api.db'}"
        with open_store(url, pepper=PEPPER) as store:
            store.upgrade()
        yield url, None
        return
    url = os.environ.get(PG_URL_ENV)
    if not url:
        pytest.skip(f"{PG_URL_ENV} is not set: PostgreSQL API tests skipped")
    schema = f"nbapi_{uuid.uuid4().hex[:12]}"
    try:
        with open_store(url, schema=schema, pepper=PEPPER) as store:
            store.upgrade()
        yield url, schema
    finally:
        _drop_schema(url, schema)


@pytest.fixture
def store(store_url: tuple[str, str | None]) -> Iterator[Store]:
    url, schema = store_url
    store = open_store(url, schema=schema, pepper=PEPPER)
    yield store
    store.close()


def seed(store: Store) -> dict[tuple[str, str], str]:
    """Create the acme and globex tenants with their keys, offers and published flows."""
    keys = {}
    store.create_tenant("acme", "Acme")
    store.create_tenant("globex", "Globex")
    for tenant, role in [
        ("acme", "admin"),
        ("acme", "editor"),
        ("acme", "viewer"),
        ("globex", "admin"),
    ]:
        keys[(tenant, role)] = store.create_api_key(tenant, role)[1]
    for offer in OFFERS:
        store.put_offer("acme", offer)
    store.put_offer("globex", {"id": "globex-only", "name": "Globex secret offer", "priority": 90})
    for tenant in ("acme", "globex"):
        version = store.save_flow(tenant, FLOW["key"], FLOW)
        store.publish_flow(tenant, FLOW["key"], version)
    return keys


@pytest.fixture
def api(store: Store) -> Iterator[Api]:
    plugin = RecorderPlugin()
    host = Host(plugins=[plugin], store=store)
    keys = seed(store)
    with TestClient(create_app(host, store), raise_server_exceptions=False) as client:
        yield Api(client, store, host, plugin, keys)
