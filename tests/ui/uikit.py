"""Report fixtures: a store (SQLite, and PostgreSQL when NEXTBEST_TEST_POSTGRES_URL is set)
with tenants ``acme`` (viewer and admin keys, offers, a published flow, interactions and
recommendations) and ``globex`` (its own data), and the app with the host's report pages."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from nextbest import Host
from nextbest.api import create_app
from nextbest.store import InteractionIn, Store, open_store

PEPPER = b"ui-test-pepper"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NOW = datetime.now(UTC).replace(microsecond=0)
FLOW = {
    "key": "main",
    "version": 2,
    "nodes": [
        {"type": "inventory", "id": "all", "config": {"scope": "all", "statuses": ["active"]}},
        {"type": "score", "id": "score", "config": {"method": "priority_weighted"}},
        {"type": "rank", "id": "top", "config": {"maxCandidates": 2}},
    ],
}


@dataclass
class Ui:
    """A running app over a seeded store, with keys by (tenant, role)."""

    client: TestClient
    store: Store
    host: Host
    keys: dict[tuple[str, str], str] = field(default_factory=dict)

    def sign_in(self, tenant: str = "acme", role: str = "viewer", key: str | None = None) -> Any:
        form = self.client.get("/ui/sign-in")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token, form.text
        return self.client.post(
            "/ui/sign-in",
            data={"tenant": tenant, "key": key or self.keys[(tenant, role)], "csrf": token[1]},
            follow_redirects=False,
        )

    def csrf(self, page: str = "/ui/offers") -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.client.get(page).text)
        assert found
        return found[1]


def seed(store: Store) -> dict[tuple[str, str], str]:
    keys = {}
    for tenant in ("acme", "globex", "empty"):
        store.create_tenant(tenant)
        for role in ("viewer", "admin"):
            keys[(tenant, role)] = store.create_api_key(tenant, role)[1]
    for tenant, offers in (("acme", ("gold", "silver")), ("globex", ("globex-secret",))):
        for offer in offers:
            store.put_offer(
                tenant, {"id": offer, "name": offer.title(), "priority": 50, "status": "active"}
            )
        version = store.save_flow(tenant, "main", FLOW)
        store.publish_flow(tenant, "main", version)
        store.set_default_flow(tenant, "main")
    rows = []
    for day in range(5):
        when = NOW - timedelta(days=day, hours=1)
        for n, (outcome, offer, value) in enumerate(
            [
                ("impression", "gold", 0.0),
                ("impression", "gold", 0.0),
                ("click", "gold", 0.0),
                ("impression", "silver", 0.0),
                ("conversion", "gold", 30.0),
            ]
        ):
            rows.append(
                InteractionIn(
                    customer_id=f"c{n % 3}",
                    outcome=outcome,
                    idempotency_key=f"a-{day}-{n}",
                    offer_id=offer,
                    channel="web",
                    value=value,
                    occurred_at=when,
                )
            )
    store.record_interactions_bulk("acme", rows)
    store.record_interactions_bulk(
        "globex",
        [
            InteractionIn(
                customer_id="gx-customer",
                outcome="conversion",
                idempotency_key="g1",
                offer_id="globex-secret",
                channel="web",
                value=999.0,
                occurred_at=NOW - timedelta(days=1),
            )
        ],
    )
    store.save_recommendation(
        "acme",
        "r1",
        "c1",
        [(1, "gold", 1.0)],
        flow_key="main",
        flow_version=1,
        created_at=NOW - timedelta(hours=2),
    )
    return keys


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        with open_store(f"sqlite:///{tmp_path / 'ui.db'}", pepper=PEPPER) as s:
            s.upgrade()
            yield s
        return
    url = os.environ.get("NEXTBEST_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("NEXTBEST_TEST_POSTGRES_URL is not set: PostgreSQL UI tests skipped")
    import psycopg

    schema = f"nbui_{uuid.uuid4().hex[:12]}"
    try:
        with open_store(url, schema=schema, pepper=PEPPER) as s:
            s.upgrade()
            yield s
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def ui(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ui]:
    monkeypatch.setenv("NEXTBEST_PLUGINS", "builtin,report,clv")
    monkeypatch.delenv("NEXTBEST_UI_SECRET", raising=False)
    host = Host(store=store)
    keys = seed(store)
    with TestClient(create_app(host, store), raise_server_exceptions=False) as client:
        yield Ui(client, store, host, keys)


def dump_dom_offline(page: Path) -> str:
    """The DOM of a file opened in headless Chromium with no network at all (any request
    would fail, so what draws came from the file), after its scripts ran."""
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--virtual-time-budget=15000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
