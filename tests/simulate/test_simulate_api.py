"""``/api/v1/simulations``: submit (editor, 202 + Location), read and list (viewer), runs in the
background with their state in the store; tenant isolation; interrupted runs; bad input."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from populationkit import AS_OF_TEXT, seed_tenant

from nextbest import Host
from nextbest.api import create_app
from nextbest.simulate import jobs
from nextbest.store import Store


class Client:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.client = TestClient(create_app(Host(store=store), store))
        self.keys = {
            (tenant, role): store.create_api_key(tenant, role)[1]
            for tenant in ("acme", "globex")
            for role in ("viewer", "editor")
        }

    def call(self, method: str, path: str, tenant: str = "acme", role: str = "editor",
             **kw: Any) -> Any:  # fmt: skip
        headers = {"Authorization": f"Bearer {self.keys[(tenant, role)]}", "X-Tenant-Id": tenant}
        return self.client.request(method, path, headers=headers, **kw)

    def wait(self, location: str, tenant: str = "acme") -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            body: dict[str, Any] = self.call("GET", location, tenant, "viewer").json()
            if body["status"] in ("done", "failed"):
                return body
            time.sleep(0.05)
        raise AssertionError(f"{location} did not finish")


@pytest.fixture
def api(store: Store) -> Client:
    return Client(store)


def test_submit_poll_and_list(api: Client) -> None:
    body = {"flow": "retention", "compare": "retention@2", "asOf": AS_OF_TEXT}
    submitted = api.call("POST", "/api/v1/simulations", json=body)
    assert submitted.status_code == 202, submitted.text
    run = submitted.json()
    assert run["status"] == "queued"
    assert run["inputs"]["flow"] == "retention" and run["inputs"]["compare"] == "retention@2"
    location = submitted.headers["Location"]
    assert location == f"/api/v1/simulations/{run['id']}"
    done = api.wait(location)
    assert done["status"] == "done", done
    assert done["progress"]["done"] == done["progress"]["total"] == done["result"]["customers"]
    assert done["result"]["customers"] == len(api.store.customer_summaries("acme"))
    assert done["result"]["comparison"]["customers"] == done["result"]["customers"]
    assert done["finishedAt"] is not None
    # a second run, then the list: newest first, without results, paginated
    second = api.call("POST", "/api/v1/simulations", json={"flow": "engaged", "asOf": AS_OF_TEXT})
    api.wait(second.headers["Location"])
    listed = api.call("GET", "/api/v1/simulations", role="viewer").json()
    assert [r["id"] for r in listed["items"]] == [second.json()["id"], run["id"]]
    assert all("result" not in r for r in listed["items"])
    page = api.call("GET", "/api/v1/simulations", role="viewer", params={"limit": 1}).json()
    assert [r["id"] for r in page["items"]] == [second.json()["id"]]
    rest = api.call("GET", "/api/v1/simulations", role="viewer",
                    params={"limit": 1, "cursor": page["nextCursor"]}).json()  # fmt: skip
    assert [r["id"] for r in rest["items"]] == [run["id"]] and rest["nextCursor"] is None


def test_roles_and_tenant_isolation(api: Client) -> None:
    refused = api.call("POST", "/api/v1/simulations", role="viewer", json={"flow": "retention"})
    assert refused.status_code == 403
    submitted = api.call("POST", "/api/v1/simulations", json={"flow": "retention",
                                                              "asOf": AS_OF_TEXT})  # fmt: skip
    api.wait(submitted.headers["Location"])
    other = api.call("GET", submitted.headers["Location"], "globex", "viewer")
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "simulation_not_found"
    assert api.call("GET", "/api/v1/simulations", "globex", "viewer").json()["items"] == []


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 400, "body.flow"),
        ({"flow": "retention", "sample": -1, "seed": 1}, 400, "body.sample"),
        ({"flow": "retention", "sample": 5}, 400, "body.sample"),
        ({"flow": "retention", "asOf": "soon"}, 400, "body.asOf"),
        ({"flow": "retention", "version": "two"}, 400, "body.version"),
        ({"flow": "nope"}, 404, None),
        ({"flow": "retention", "version": 9}, 404, None),
        ({"flow": "retention", "compare": "nope"}, 404, None),
    ],
)
def test_bad_input(api: Client, body: dict[str, Any], status: int, field: str | None) -> None:
    response = api.call("POST", "/api/v1/simulations", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if field is not None:
        assert [d["field"] for d in error["details"]] == [field]
    else:
        assert error["code"] == "flow_not_found"
    assert api.store.list_simulations("acme").items == []  # nothing stored


def test_a_segment_nobody_has_fails_the_run_naming_it(api: Client) -> None:
    body = {"flow": "retention", "segment": "nobody", "asOf": AS_OF_TEXT}
    submitted = api.call("POST", "/api/v1/simulations", json=body)
    failed = api.wait(submitted.headers["Location"])
    assert failed["status"] == "failed"
    assert failed["error"].startswith("segment: no customer has customer.clv.segment = 'nobody'")


def test_a_run_whose_process_died_is_reported_interrupted(api: Client) -> None:
    store = api.store
    record = store.create_simulation("acme", jobs.new_simulation_id(time.time()), {"flow": "x"})
    store.update_simulation("acme", record.simulation_id, status="running", done=3, total=10)
    path = f"/api/v1/simulations/{record.simulation_id}"
    assert api.call("GET", path, role="viewer").json()["status"] == "running"  # heartbeat fresh
    clock = store.clock  # type: ignore[attr-defined]
    store.clock = lambda: clock() + jobs.STALE_SECONDS + 1  # type: ignore[attr-defined]
    try:
        seen = api.call("GET", path, role="viewer").json()
    finally:
        store.clock = clock  # type: ignore[attr-defined]
    assert seen["status"] == "failed"
    assert seen["error"].startswith("interrupted")
    assert seen["progress"] == {"done": 3, "total": 10}
    # finished runs never change again
    assert store.update_simulation("acme", record.simulation_id, status="done") is False


def test_the_heartbeat_keeps_a_long_run_alive(api: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run beats while it works: a reader after the beat does not see it as stale."""
    beats: list[float] = []
    store = api.store
    original = store.update_simulation

    def update(tenant: str, sid: str, **kw: Any) -> bool:
        if not kw:
            beats.append(time.time())
        return original(tenant, sid, **kw)

    monkeypatch.setattr(store, "update_simulation", update)
    monkeypatch.setattr(jobs, "HEARTBEAT_SECONDS", 0.01)
    from nextbest.simulate import run as run_module

    real = run_module.run_simulation

    def slow(*args: Any, **kw: Any) -> Any:
        time.sleep(0.2)
        return real(*args, **kw)

    monkeypatch.setattr(jobs, "run_simulation", slow)
    submitted = api.call("POST", "/api/v1/simulations", json={"flow": "retention",
                                                              "asOf": AS_OF_TEXT})  # fmt: skip
    assert api.wait(submitted.headers["Location"])["status"] == "done"
    assert len(beats) >= 2


def test_one_run_at_a_time_per_tenant(api: Client) -> None:
    store = api.store
    running = store.create_simulation("acme", jobs.new_simulation_id(time.time()), {"flow": "x"})
    store.update_simulation("acme", running.simulation_id, status="running", done=1, total=9)
    body = {"flow": "retention", "asOf": AS_OF_TEXT}
    refused = api.call("POST", "/api/v1/simulations", json=body)
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "simulation_running"
    assert f"simulation {running.simulation_id!r} of the tenant is running" in error["message"]
    assert len(store.list_simulations("acme").items) == 1  # nothing stored
    # another tenant is not held up
    seed_tenant(store, "globex", customers=3)
    other = api.call("POST", "/api/v1/simulations", "globex", json=body)
    assert other.status_code == 202, other.text
    assert api.wait(other.headers["Location"], "globex")["status"] == "done"
    # once the run has finished, the tenant starts the next one
    store.update_simulation("acme", running.simulation_id, status="done", result={})
    started = api.call("POST", "/api/v1/simulations", json=body)
    assert started.status_code == 202, started.text
    assert api.wait(started.headers["Location"])["status"] == "done"


def test_a_stale_run_does_not_hold_the_tenant_up(api: Client) -> None:
    store = api.store
    stale = store.create_simulation("acme", jobs.new_simulation_id(time.time()), {"flow": "x"})
    clock = store.clock  # type: ignore[attr-defined]
    store.clock = lambda: clock() + jobs.STALE_SECONDS + 1  # type: ignore[attr-defined]
    try:
        started = api.call("POST", "/api/v1/simulations", json={"flow": "retention",
                                                                "asOf": AS_OF_TEXT})  # fmt: skip
    finally:
        store.clock = clock  # type: ignore[attr-defined]
    assert started.status_code == 202, started.text
    assert api.wait(started.headers["Location"])["status"] == "done"
    record = store.get_simulation("acme", stale.simulation_id)
    assert record is not None and record.status == "failed"


def test_the_process_runs_at_most_its_cap(api: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(jobs.MAX_SIMULATIONS_ENV, "1")
    # another tenant's run under way in this process
    monkeypatch.setitem(jobs._active, "sim_elsewhere", "globex")
    body = {"flow": "retention", "asOf": AS_OF_TEXT}
    refused = api.call("POST", "/api/v1/simulations", json=body)
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "simulations_busy"
    assert "at most 1" in error["message"] and "sim_elsewhere" not in error["message"]
    monkeypatch.setenv(jobs.MAX_SIMULATIONS_ENV, "2")
    started = api.call("POST", "/api/v1/simulations", json=body)
    assert started.status_code == 202, started.text
    assert api.wait(started.headers["Location"])["status"] == "done"
    deadline = time.monotonic() + 10  # its own is released right after it is stored done
    while len(jobs._active) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert jobs._active == {"sim_elsewhere": "globex"}


@pytest.mark.parametrize(("raw", "cap"), [(None, 2), ("3", 3), ("0", 2), ("many", 2)])
def test_the_process_cap_setting(
    monkeypatch: pytest.MonkeyPatch, raw: str | None, cap: int
) -> None:
    if raw is None:
        monkeypatch.delenv(jobs.MAX_SIMULATIONS_ENV, raising=False)
    else:
        monkeypatch.setenv(jobs.MAX_SIMULATIONS_ENV, raw)
    assert jobs.max_process_simulations() == cap


def test_a_run_whose_first_write_fails_releases_its_slot(
    api: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database error on the run's first write (status running) is the run's failure; the
    process's slot is given back, so the next run can start."""
    real = api.store.update_simulation
    failed_once: list[bool] = []

    def flaky(tenant_id: str, simulation_id: str, **fields: Any) -> Any:
        if fields.get("status") == "running" and not failed_once:
            failed_once.append(True)
            raise RuntimeError("the database went away for a moment")
        return real(tenant_id, simulation_id, **fields)

    monkeypatch.setattr(api.store, "update_simulation", flaky)
    monkeypatch.setenv(jobs.MAX_SIMULATIONS_ENV, "1")
    body = {"flow": "retention", "asOf": AS_OF_TEXT}
    first = api.call("POST", "/api/v1/simulations", json=body)
    assert first.status_code == 202, first.text
    failed = api.wait(first.headers["Location"])
    assert failed["status"] == "failed" and "went away" in failed["error"]
    deadline = time.monotonic() + 10
    while jobs._active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert jobs._active == {}
    second = api.call("POST", "/api/v1/simulations", json=body)
    assert second.status_code == 202, second.text
    assert api.wait(second.headers["Location"])["status"] == "done"
