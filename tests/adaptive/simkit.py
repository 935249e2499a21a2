"""A simulated population for the adaptive plugin's tests: offers with known response rates
per segment, flows using catalog or learned propensities, and recommend→respond rounds through
the real HTTP API (fixtures in conftest.py)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from nextbest import DecisionService, Host
from nextbest.api import create_app
from nextbest.store import Store, open_store

PG_URL_ENV = "NEXTBEST_TEST_POSTGRES_URL"
TENANT = "sim"
SEGMENTS = ("young", "senior")
#: true response rates per offer and segment; the catalog says 0.1 for every offer
TRUTH: dict[str, dict[str, float]] = {
    "a": {"young": 0.30, "senior": 0.05},
    "b": {"young": 0.10, "senior": 0.25},
    "c": {"young": 0.05, "senior": 0.05},
    "d": {"young": 0.15, "senior": 0.10},
}
CATALOG_PROPENSITY = 0.1
#: an offer added later with no catalog propensity (the flow's default is its prior)
NEWCOMER = "e"


def offer(offer_id: str, propensity: float | None = CATALOG_PROPENSITY) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": offer_id, "name": f"Offer {offer_id}", "priority": 50}
    if propensity is not None:
        doc["propensity"] = propensity
    return doc


def flow(key: str, adaptive: dict[str, Any] | None, max_candidates: int = 1) -> dict[str, Any]:
    score: dict[str, Any] = {"method": "propensity", "defaultPropensity": 0.1}
    if adaptive is not None:
        score["adaptive"] = adaptive
    return {
        "key": key,
        "name": key,
        "version": 2,
        "nodes": [
            {"type": "inventory", "id": "all", "config": {"scope": "all"}},
            {"type": "score", "id": "score", "config": score},
            {"type": "rank", "id": "top", "config": {"maxCandidates": max_candidates}},
        ],
    }


#: when the simulation's first decision is made; each later one a second after the previous
SIM_START = datetime(2026, 1, 1, tzinfo=UTC)


class SimClock:
    """The decisions' time source: every call is one second after the previous one, so a
    simulation's Thompson draws (seeded by customer and time) are the same on every run."""

    def __init__(self, start: datetime = SIM_START) -> None:
        self.now = start - timedelta(seconds=1)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@dataclass
class Sim:
    """The API over a fresh store with the adaptive plugin loaded, tenant ``sim``."""

    client: TestClient
    store: Store
    host: Host
    key: str
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(7))

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Tenant-Id": TENANT, "Authorization": f"Bearer {self.key}"}

    def publish(self, document: dict[str, Any]) -> None:
        version = self.store.save_flow(TENANT, document["key"], document)
        self.store.publish_flow(TENANT, document["key"], version)

    def recommend(self, customer: str, segment: str, flow_key: str, **extra: Any) -> dict:
        body = {
            "customerId": customer,
            "channel": "web",
            "attributes": {"segment": segment},
            "decisionFlowKey": flow_key,
            **extra,
        }
        response = self.client.post("/api/v1/recommend", json=body, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def respond(self, rec: dict[str, Any], outcome: str, rank: int = 1, **extra: Any) -> Any:
        body = {
            "customerId": rec["customerId"],
            "recommendationId": rec["recommendationId"],
            "rank": rank,
            "outcome": outcome,
            "idempotencyKey": extra.pop("idempotencyKey", uuid.uuid4().hex),
            **extra,
        }
        return self.client.post("/api/v1/respond", json=body, headers=self.headers)

    def round(self, flow_key: str, customer: str, truth: dict[str, dict[str, float]]) -> float:
        """One recommend→respond round for a random segment; returns the true rate of the
        offer shown (the expected reward) and records a conversion with that probability."""
        segment = SEGMENTS[int(self.rng.integers(len(SEGMENTS)))]
        rec = self.recommend(customer, segment, flow_key)
        offer_id = rec["decisions"][0]["offerId"]
        rate = truth[offer_id][segment]
        if self.rng.random() < rate:
            assert self.respond(rec, "conversion").status_code in (200, 201)
        return rate


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sim_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated empty store: SQLite in tmp_path, or a throwaway PostgreSQL schema."""
    if request.param == "sqlite":
        with open_store(f"sqlite:///{tmp_path / 'sim.db'}", pepper=b"p") as store:
            store.upgrade()
            yield store
        return
    url = os.environ.get(PG_URL_ENV)
    if not url:
        pytest.skip(f"{PG_URL_ENV} is not set: PostgreSQL test skipped")
    import psycopg

    schema = f"nbadaptive_{uuid.uuid4().hex[:12]}"
    try:
        with open_store(url, schema=schema, pepper=b"p") as store:
            store.upgrade()
            yield store
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def sim(sim_store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    """The API with the built-in and adaptive plugins over ``sim_store``."""
    monkeypatch.setenv("NEXTBEST_PLUGINS", "builtin,adaptive")
    store = sim_store
    store.create_tenant(TENANT)
    key = store.create_api_key(TENANT, "admin")[1]
    for offer_id in TRUTH:
        store.put_offer(TENANT, offer(offer_id))
    host = Host(store=store)
    service = DecisionService(host, store, clock=SimClock())
    app = create_app(host, store, service=service)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Sim(client, store, host, key)
