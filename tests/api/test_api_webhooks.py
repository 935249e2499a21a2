"""The webhooks API: endpoints (secrets shown once), deliveries, test events, redeliver and
replay, roles, tenant isolation, 400s naming the field, and the deliverer in the app's lifespan.
A real receiver on a loopback port gets the requests (private targets allowed for it)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest
from apikit import Api, error_of, fields_of
from fastapi.testclient import TestClient

from nextbest import Host
from nextbest.api import create_app
from nextbest.outbox import Deliverer, TargetPolicy, WebhookSettings
from nextbest.outbox.schedule import schedule_of
from nextbest.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "outbox"))
from receiver import Receiver, running, verify

BASE = "/api/v1/webhooks"
ALLOW_PRIVATE = WebhookSettings(policy=TargetPolicy(allow_private=True), schedule=schedule_of([]))


@pytest.fixture
def hooks(api: Api) -> Api:
    """The API with private webhook targets allowed (the receiver is on loopback)."""
    api.client.app.state.webhooks = ALLOW_PRIVATE  # type: ignore[attr-defined]
    return api


def create(api: Api, url: str, tenant: str = "acme", **body: Any) -> dict[str, Any]:
    response = api.post(f"{BASE}/endpoints", {"url": url, **body}, tenant=tenant)
    assert response.status_code == 201, response.text
    return response.json()


def deliver(store: Store) -> int:
    deliverer = Deliverer(store, ALLOW_PRIVATE)
    try:
        return deliverer.drain()
    finally:
        deliverer.stop()


def test_an_endpoint_shows_its_secret_once(hooks: Api) -> None:
    created = create(hooks, "http://127.0.0.1:9/in", description="CRM", eventTypes=["a.b"])
    secret = created["secret"]
    assert secret.startswith("whsec_") and created["eventTypes"] == ["a.b"]
    listed = hooks.get(f"{BASE}/endpoints", role="viewer")
    one = hooks.get(f"{BASE}/endpoints/{created['id']}", role="viewer")
    assert listed.status_code == 200 and one.status_code == 200
    assert [e["id"] for e in listed.json()["items"]] == [created["id"]]
    for response in (listed, one):
        assert secret not in response.text and "secret" not in response.json()
    rotated = hooks.post(f"{BASE}/endpoints/{created['id']}/rotate", {"graceSeconds": 60})
    assert rotated.status_code == 200 and rotated.json()["secret"] not in (secret, None)
    assert rotated.json()["previousSecretValidUntil"] is not None
    listed = hooks.get(f"{BASE}/endpoints")
    assert rotated.json()["secret"] not in listed.text


def test_roles(hooks: Api) -> None:
    for role in ("viewer", "editor"):
        response = hooks.post(f"{BASE}/endpoints", {"url": "http://127.0.0.1/"}, role=role)
        error_of(response, 403)
    endpoint = create(hooks, "http://127.0.0.1:9/")
    for path in ("rotate",):
        error_of(hooks.post(f"{BASE}/endpoints/{endpoint['id']}/{path}", role="editor"), 403)
    error_of(hooks.post(f"{BASE}/endpoints/{endpoint['id']}/test", role="viewer"), 403)
    assert hooks.post(f"{BASE}/endpoints/{endpoint['id']}/test", role="editor").status_code == 202
    response = hooks.client.delete(
        f"{BASE}/endpoints/{endpoint['id']}", headers=hooks.headers(role="editor")
    )
    error_of(response, 403)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/"}, "body.url"),
        ({"url": "http://127.0.0.1:8000/"}, "body.url"),  # loopback, refused by default
        ({"url": "http://10.0.0.5/hook"}, "body.url"),
        ({"url": "http://169.254.169.254/latest/meta-data"}, "body.url"),
        ({"url": "http://user:pw@[::1]/"}, "body.url"),
        ({"url": "https://nowhere.invalid/"}, "body.url"),
        ({"url": 5}, "body.url"),
        ({"url": "https://93.184.216.34/", "eventTypes": ["Bad Type"]}, "body.eventTypes[0]"),
        ({"url": "https://93.184.216.34/", "eventTypes": []}, "body.eventTypes"),
        ({"url": "https://93.184.216.34/", "description": "x" * 501}, "body.description"),
        ({"url": "https://93.184.216.34/", "extra": 1}, "body.extra"),
        ({}, "body.url"),
    ],
)
def test_bad_endpoints_are_400s_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    error = error_of(api.post(f"{BASE}/endpoints", body), 400)
    assert any(f == field or f.startswith(field) for f in fields_of(error)), error


def test_bad_parameters_are_400s(hooks: Api) -> None:
    endpoint = create(hooks, "http://127.0.0.1:9/")
    rotate = f"{BASE}/endpoints/{endpoint['id']}/rotate"
    error = error_of(hooks.post(rotate, {"graceSeconds": -1}), 400)
    assert fields_of(error) == ["body.graceSeconds"]
    error = error_of(hooks.post(f"{BASE}/endpoints/{endpoint['id']}/replay"), 400)
    assert fields_of(error) == ["query.since"]
    replay = f"{BASE}/endpoints/{endpoint['id']}/replay?since=yesterday"
    error_of(hooks.post(replay), 400)
    error_of(hooks.get(f"{BASE}/deliveries?status=lost"), 400)
    error = error_of(hooks.get(f"{BASE}/deliveries?cursor=junk"), 400)
    assert fields_of(error) == ["query.cursor"]
    error_of(hooks.get(f"{BASE}/deliveries/abc"), 400)
    error_of(hooks.get(f"{BASE}/deliveries/0"), 400)


def test_another_tenants_endpoints_and_deliveries_are_404(hooks: Api) -> None:
    theirs = create(hooks, "http://127.0.0.1:9/", tenant="globex")
    hooks.post(f"{BASE}/endpoints/{theirs['id']}/test", tenant="globex")
    [delivery] = hooks.get(f"{BASE}/deliveries", tenant="globex").json()["items"]
    assert hooks.get(f"{BASE}/endpoints").json()["items"] == []
    assert hooks.get(f"{BASE}/deliveries").json()["items"] == []
    since = "?since=2020-01-01T00:00:00Z"
    for method, path in [
        ("get", f"/endpoints/{theirs['id']}"),
        ("delete", f"/endpoints/{theirs['id']}"),
        ("post", f"/endpoints/{theirs['id']}/rotate"),
        ("post", f"/endpoints/{theirs['id']}/test"),
        ("post", f"/endpoints/{theirs['id']}/replay{since}"),
        ("get", f"/deliveries/{delivery['id']}"),
        ("post", f"/deliveries/{delivery['id']}/redeliver"),
    ]:
        response = hooks.client.request(method, BASE + path, headers=hooks.headers())
        error_of(response, 404)
    # A key of acme presented for globex is 404 as well.
    response = hooks.client.get(
        f"{BASE}/endpoints/{theirs['id']}", headers=hooks.headers() | {"X-Tenant-Id": "globex"}
    )
    error_of(response, 404)


def test_test_event_deliveries_redeliver_and_replay(hooks: Api) -> None:
    with running(Receiver(lambda r, n: (500, {}, b"down") if n == 1 else (200, {}, b"ok"))) as rx:
        endpoint = create(hooks, rx.url + "/hook")
        sent = hooks.post(f"{BASE}/endpoints/{endpoint['id']}/test", role="editor")
        assert sent.status_code == 202 and sent.json()["deliveries"] == 1
        deliver(hooks.store)  # the schedule has no retry: the first answer (500) fails it
        [failed] = hooks.get(f"{BASE}/deliveries?status=failed").json()["items"]
        assert failed["eventId"] == sent.json()["eventId"] and failed["eventType"] == "webhook.test"
        assert (failed["attempts"], failed["lastStatusCode"]) == (1, 500)
        assert failed["responseExcerpt"] == "down" and failed["lastLatencyMs"] > 0

        again = hooks.post(f"{BASE}/deliveries/{failed['id']}/redeliver", role="editor")
        assert again.status_code == 200 and again.json()["status"] == "pending"
        deliver(hooks.store)
        one = hooks.get(f"{BASE}/deliveries/{failed['id']}", role="viewer").json()
        assert (one["status"], one["attempts"], one["lastStatusCode"]) == ("delivered", 1, 200)
        assert one["payload"]["endpointId"] == endpoint["id"]

        # Two more events fail (a new receiver rule), then a replay sends them again.
        rx.reply = lambda r, n: (500, {}, b"")
        for _ in range(2):
            hooks.post(f"{BASE}/endpoints/{endpoint['id']}/test")
        deliver(hooks.store)
        replay = hooks.post(
            f"{BASE}/endpoints/{endpoint['id']}/replay?since=2020-01-01T00:00:00Z", role="editor"
        )
        assert replay.json() == {"replayed": 2}
        rx.reply = lambda r, n: (204, {}, b"")
        deliver(hooks.store)
    page = hooks.get(f"{BASE}/deliveries?limit=2&endpoint={endpoint['id']}").json()
    rest = hooks.get(f"{BASE}/deliveries?limit=2&cursor={page['nextCursor']}").json()
    ids = [d["id"] for d in page["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 3 and rest["nextCursor"] is None
    assert {d["status"] for d in page["items"] + rest["items"]} == {"delivered"}
    request = rx.requests[0]
    assert verify(endpoint["secret"], request.headers, request.body)
    assert request.json()["type"] == "webhook.test"


def test_removing_an_endpoint(hooks: Api) -> None:
    endpoint = create(hooks, "http://127.0.0.1:9/")
    hooks.post(f"{BASE}/endpoints/{endpoint['id']}/test")
    response = hooks.client.delete(f"{BASE}/endpoints/{endpoint['id']}", headers=hooks.headers())
    assert response.status_code == 204
    error_of(hooks.get(f"{BASE}/endpoints/{endpoint['id']}"), 404)
    assert hooks.get(f"{BASE}/deliveries").json()["items"] == []


def test_the_app_runs_a_deliverer_in_its_lifespan(store: Store) -> None:
    from apikit import seed

    keys = seed(store)
    headers = {"X-Tenant-Id": "acme", "Authorization": f"Bearer {keys[('acme', 'admin')]}"}
    settings = WebhookSettings(
        policy=TargetPolicy(allow_private=True), schedule=schedule_of([]), poll_seconds=0.05
    )
    app = create_app(Host(store=store), store, webhook_settings=settings, deliver_webhooks=True)
    with running(Receiver()) as rx, TestClient(app) as client:
        made = client.post(f"{BASE}/endpoints", json={"url": rx.url}, headers=headers).json()
        client.post(f"{BASE}/endpoints/{made['id']}/test", headers=headers)
        deadline = time.monotonic() + 30
        while not rx.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        assert app.state.deliverer is not None
    assert len(rx.requests) == 1 and verify(
        made["secret"], rx.requests[0].headers, rx.requests[0].body
    )
    assert app.state.deliverer._stop.is_set()  # stopped with the app
