"""The CLV history through the host's app and CLI: snapshots (paged), migration and drift;
bad ids answer 4xx naming the parameter, and another tenant's snapshots are never reachable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from clvkit import DAY, T0, add_interactions, worked_tenant
from fastapi.testclient import TestClient

from nextbest import Host
from nextbest.api import create_app
from nextbest.cli import build_cli
from nextbest.store import Store

AS_OF = "2024-07-01T00:00:00Z"
LATER = "2024-07-31T00:00:00Z"


@pytest.fixture
def client(store: Store) -> TestClient:
    worked_tenant(store)
    worked_tenant(store, "globex")
    return TestClient(create_app(Host(store=store), store))


def headers(store: Store, tenant: str = "acme", role: str = "editor") -> dict[str, str]:
    return {
        "Authorization": f"Bearer {store.create_api_key(tenant, role)[1]}",
        "X-Tenant-Id": tenant,
    }


def _compute(client: TestClient, h: dict[str, str], as_of: str) -> str:
    response = client.post("/api/v1/clv/compute", json={"asOf": as_of}, headers=h)
    assert response.status_code == 200, response.text
    snapshot = response.json()["snapshot"]
    assert isinstance(snapshot, str)
    return snapshot


def _field(response: object) -> str:
    body = response.json()  # type: ignore[attr-defined]
    return str(body["error"]["details"][0]["field"])


def test_snapshots_migration_and_drift_routes(client: TestClient, store: Store) -> None:
    editor = headers(store)
    viewer = headers(store, role="viewer")
    first = _compute(client, editor, AS_OF)
    add_interactions(store, "acme", "zed", [T0 + DAY], [20.0])
    second = _compute(client, editor, LATER)
    page = client.get("/api/v1/clv/snapshots?limit=1", headers=viewer)
    assert page.status_code == 200, page.text
    body = page.json()
    assert [s["id"] for s in body["snapshots"]] == [second] and body["nextCursor"] == second
    rest = client.get(f"/api/v1/clv/snapshots?cursor={second}", headers=viewer).json()
    assert [s["id"] for s in rest["snapshots"]] == [first] and rest["nextCursor"] is None
    one = client.get(f"/api/v1/clv/snapshots/{first}", headers=viewer)
    assert one.status_code == 200 and one.json()["asOf"] == AS_OF
    assert one.json()["segments"]["high"]["customers"] == 2
    moved = client.get("/api/v1/clv/migration", headers=viewer)
    assert moved.status_code == 200, moved.text
    result = moved.json()
    assert (result["from"]["id"], result["to"]["id"]) == (first, second)
    assert result["matrix"]["high"]["at_risk"] == 2 and sum(result["joined"].values()) == 1
    chosen = client.get(f"/api/v1/clv/migration?from={second}&to={first}", headers=viewer)
    assert chosen.json()["matrix"]["at_risk"]["high"] == 2
    drift = client.get("/api/v1/clv/drift", headers=viewer).json()
    assert drift["scored"] == [] and {p["snapshot"] for p in drift["pending"]} == {first, second}
    # the default horizon (24 months from 2024) has passed by the real clock: scored now
    now = client.get(f"/api/v1/clv/drift?snapshot={first}", headers=viewer)
    assert now.status_code == 200, now.text
    assert now.json()["snapshot"] == first and now.json()["customers"] == 6


def test_bad_ids_name_the_parameter_and_tenants_are_isolated(
    client: TestClient, store: Store
) -> None:
    editor = headers(store)
    first = _compute(client, editor, AS_OF)
    second = _compute(client, editor, LATER)
    other = headers(store, "globex")
    theirs = _compute(client, other, AS_OF)
    cases = [
        ("/api/v1/clv/snapshots/nope", 404, "path.snapshotId"),
        (f"/api/v1/clv/snapshots/{theirs}", 404, "path.snapshotId"),
        ("/api/v1/clv/snapshots?cursor=nope", 404, "query.cursor"),
        (f"/api/v1/clv/migration?from={first}&to={first}", 400, "query.to"),
        (f"/api/v1/clv/migration?from={theirs}&to={second}", 404, "query.from"),
        (f"/api/v1/clv/migration?from={first}&to=nope", 404, "query.to"),
        (f"/api/v1/clv/migration?to={first}", 400, "query.from"),
        (f"/api/v1/clv/drift?snapshot={theirs}", 404, "query.snapshot"),
    ]
    for url, status, field in cases:
        response = client.get(url, headers=editor)
        assert response.status_code == status, (url, response.text)
        assert _field(response) == field, url
    # globex sees only its own snapshot
    listed = client.get("/api/v1/clv/snapshots", headers=other).json()["snapshots"]
    assert [s["id"] for s in listed] == [theirs]
    only_one = client.get("/api/v1/clv/migration", headers=other)
    assert only_one.status_code == 400 and _field(only_one) == "query.from"
    # a horizon still running is a conflict naming the snapshot
    client.put(
        "/api/v1/clv/settings",
        json={"lifespanMonths": 1200.0},
        headers=headers(store, role="admin"),
    )
    future = _compute(client, editor, LATER)
    pending = client.get(f"/api/v1/clv/drift?snapshot={future}", headers=editor)
    assert pending.status_code == 409 and _field(pending) == "query.snapshot"
    assert pending.json()["error"]["code"] == "clv_horizon_not_passed"
    assert client.get("/api/v1/clv/snapshots").status_code == 401


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_cli(), list(args))
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


def test_history_commands(store: Store, tmp_path: Path) -> None:
    worked_tenant(store)
    db = f"sqlite:///{tmp_path / 'clv.db'}"
    code, out = run("clv", "snapshots", "--tenant", "acme", "--database", db)
    assert code == 0 and "no CLV snapshots yet" in out
    for when in ("2024-07-01", "2024-07-31"):
        code, out = run("clv", "compute", "--tenant", "acme", "--as-of", when, "--database", db)
        assert code == 0, out
    code, out = run("clv", "snapshots", "--tenant", "acme", "--json", "--database", db)
    assert code == 0, out
    listed = json.loads(out)["snapshots"]
    assert [s["asOf"] for s in listed] == [LATER, AS_OF]
    code, out = run("clv", "snapshots", "--tenant", "acme", "--database", db)
    assert code == 0 and listed[0]["id"] in out and listed[1]["id"] in out
    code, out = run("clv", "migration", "--tenant", "acme", "--json", "--database", db)
    assert code == 0 and json.loads(out)["matrix"]["medium"]["at_risk"] == 2
    code, out = run("clv", "migration", "--tenant", "acme", "--database", db)
    assert code == 0 and "stayed 2, moved 4" in out
    code, out = run(
        "clv", "migration", "--tenant", "acme", "--from", "x", "--to", "x", "--database", db
    )
    assert code == 2 and "--to" in out and "same snapshot" in out
    code, out = run(
        "clv",
        "migration",
        "--tenant",
        "acme",
        "--from",
        "nope",
        "--to",
        listed[0]["id"],
        "--database",
        db,
    )
    assert code == 2 and "--from" in out and "no CLV snapshot 'nope'" in out
    code, out = run("clv", "drift", "--tenant", "acme", "--database", db)
    assert code == 0 and "waiting: " in out
    first = listed[1]["id"]
    code, out = run("clv", "drift", "--tenant", "acme", "--snapshot", first, "--database", db)
    assert code == 0 and f"snapshot {first}" in out and "6 customer(s)" in out
    code, out = run("clv", "snapshots", "--tenant", "acme", "--id", "nope", "--database", db)
    assert code == 2 and "--id" in out
