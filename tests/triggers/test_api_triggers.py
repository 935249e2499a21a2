"""The trigger routes: bad documents are 400s naming the field, other tenants' triggers are
404, roles, listing, events pages, preview (nothing written), forgetting a customer, and a
crash inside the firing transaction leaving neither state nor firing."""

from __future__ import annotations

from typing import Any

import pytest
from triggerkit import DAY, NOW, SILENT, Api, fired, history

from nextbest.triggers import engine_for


def fields(response: Any) -> list[str]:
    assert response.status_code == 400, response.text
    return [d["field"] for d in response.json()["error"]["details"]]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"when": "customer.nothing.here > 1"}, "body.when"),
        ({"when": "customer.clv_score >"}, "body.when"),
        ({"rearm": "__import__('os')"}, "body.rearm"),
        ({"flow": "not-published"}, "body.flow"),
        ({"status": "sleeping"}, "body.status"),
        ({"cooldownDays": -1}, "body.cooldownDays"),
        ({"cooldownDays": True}, "body.cooldownDays"),
        ({"actions": {"webhook": "no spaces allowed"}}, "body.actions.webhook"),
        ({"surprise": 1}, "body.surprise"),
        ({"key": "other"}, "body.key"),
        ({"when": "attributes.tier == 'gold'"}, "body.when"),
        ({"actions": {"webhook": "ep_0000000000000000"}}, "body.actions.webhook"),
    ],
)
def test_bad_documents_are_400_naming_the_field(
    api: Api, document: dict[str, Any], field: str
) -> None:
    response = api.call("PUT", "/api/v1/triggers/silent", json={**SILENT, **document})
    assert field in fields(response)


def test_roles_read_list_delete_and_tenants(api: Api) -> None:
    assert api.call("PUT", "/api/v1/triggers/silent", role="viewer", json=SILENT).status_code == 403
    assert api.put(SILENT).status_code == 201
    assert api.put({**SILENT, "name": "renamed"}).status_code == 200
    got = api.call("GET", "/api/v1/triggers/silent", role="viewer").json()
    assert got["document"]["name"] == "renamed" and got["status"] == "active"
    listed = api.call("GET", "/api/v1/triggers", role="viewer").json()
    assert [t["key"] for t in listed["items"]] == ["silent"]
    for method, path in [
        ("GET", "/api/v1/triggers/silent"),
        ("GET", "/api/v1/triggers/silent/events"),
        ("POST", "/api/v1/triggers/silent/preview"),
        ("DELETE", "/api/v1/triggers/silent"),
    ]:
        body = {"customerIds": ["ada"]} if method == "POST" else None
        response = api.call(method, path, "globex", json=body)
        assert response.status_code == 404, (path, response.text)
    assert api.call("GET", "/api/v1/triggers", "globex").json()["items"] == []
    assert api.call("DELETE", "/api/v1/triggers/silent").status_code == 204
    assert api.call("GET", "/api/v1/triggers/silent").status_code == 404


def test_events_newest_first_in_pages(api: Api) -> None:
    for name in ("a", "b", "c"):
        history(api, name, [5])
    api.put(SILENT)
    api.compute(NOW + 40 * DAY)
    first = api.events("silent", limit=2)
    assert len(first["items"]) == 2 and first["nextCursor"]
    rest = api.events("silent", limit=2, cursor=first["nextCursor"])
    assert len(rest["items"]) == 1 and rest["nextCursor"] is None
    ids = [e["id"] for e in first["items"] + rest["items"]]
    assert len(set(ids)) == 3
    bad = api.call("GET", "/api/v1/triggers/silent/events", params={"cursor": "junk"})
    assert fields(bad) == ["query.cursor"]


def test_preview_writes_nothing(api: Api) -> None:
    history(api, "ada", [40])
    history(api, "bob", [1])
    api.put(SILENT)
    response = api.call(
        "POST", "/api/v1/triggers/silent/preview", role="viewer",
        json={"customerIds": ["ada", "bob"]},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["wouldFire"] == ["ada"]
    assert api.store.trigger_states("acme", "silent") == {}
    assert fired(api, "silent") == []


def _preview_all(api: Api, key: str, tenant: str = "acme", **body: Any) -> Any:
    return api.call("POST", f"/api/v1/triggers/{key}/preview", tenant, "viewer", json=body)


def test_preview_of_every_customer_reads_columns_and_writes_nothing(api: Api) -> None:
    for customer, days in (("ada", 40), ("bob", 1), ("carl", 60), ("dan", 31)):
        history(api, customer, [days])
    history(api, "eve", [90], tenant="globex")  # another tenant's customer is never counted
    metrics = {**SILENT, "key": "quiet", "when": "metrics.days_since_last_contact >= 30"}
    for document in (SILENT, metrics):
        assert api.put(document).status_code == 201
        api.present(NOW)
        response = _preview_all(api, document["key"], limit=2)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["evaluated"], body["wouldFireCount"], body["truncated"]) == (4, 3, True)
        assert [c["customerId"] for c in body["wouldFire"]] == ["ada", "carl"]
        name = document["when"].split(" ")[0]
        assert body["wouldFire"][0]["values"][name] >= 30
        # The same answer as asking for each customer.
        one_by_one = api.call(
            "POST", f"/api/v1/triggers/{document['key']}/preview", role="viewer",
            json={"customerIds": ["ada", "bob", "carl", "dan"]},
        ).json()  # fmt: skip
        everyone = _preview_all(api, document["key"]).json()
        assert one_by_one["wouldFire"] == [c["customerId"] for c in everyone["wouldFire"]]
    assert api.store.trigger_states("acme", "silent") == {}
    assert fired(api, "silent") == []
    api.compute(NOW)  # the batch fires ada, carl and dan: nobody would fire again
    assert len(fired(api, "silent")) == 3
    again = _preview_all(api, "silent").json()
    assert (again["wouldFireCount"], again["wouldFire"]) == (0, [])


def test_preview_of_every_customer_refuses_too_many_rows_one_by_one(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nextbest.triggers import engine as engine_module

    for customer in ("ada", "bob"):
        history(api, customer, [40])
    # metrics.impressions has no column form: every customer is resolved one at a time.
    api.put({**SILENT, "key": "seen", "when": "metrics.impressions >= 0"})
    assert _preview_all(api, "seen").json()["wouldFireCount"] == 2
    monkeypatch.setattr(engine_module, "MAX_ROW_PREVIEW", 1)
    refused = _preview_all(api, "seen")
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "preview_too_large" and "metrics.impressions" in error["message"]
    assert _preview_all(api, "seen", limit=0).status_code == 400
    assert _preview_all(api, "seen", limit=True).status_code == 400
    # CLV and summary names come as columns (the plugin's context_columns): no cap applies.
    for document in (SILENT, {**SILENT, "key": "q", "when": "metrics.interactions >= 1"}):
        api.put(document)
        assert _preview_all(api, document["key"]).json()["wouldFireCount"] == 2


def test_forget_deletes_states_and_firings(api: Api) -> None:
    history(api, "ada", [5])
    history(api, "bob", [5])
    api.put(SILENT)
    api.compute(NOW + 40 * DAY)
    response = api.call("DELETE", "/api/v1/customers/ada", role="admin")
    assert response.status_code == 200, response.text
    deleted = response.json()["deleted"]
    assert (deleted["triggerStates"], deleted["triggerEvents"]) == (1, 1)
    assert [e["customerId"] for e in fired(api, "silent")] == ["bob"]
    assert list(api.store.trigger_states("acme", "silent")) == ["bob"]


def test_participant_writes_in_the_firing_transaction_and_a_crash_leaves_nothing(
    api: Api,
) -> None:
    history(api, "ada", [5])
    api.put(SILENT)
    engine = engine_for(api.host)
    assert engine is not None
    written: list[str] = []

    def crash(cur: Any, tenant_id: str, firings: Any) -> None:
        cur.execute(
            "INSERT INTO documents (namespace, tenant_id, doc_key, document, updated_at) "
            "VALUES (?, ?, ?, ?, ?)",
            ("outbox-test", tenant_id, firings[0].event_id, "{}", NOW),
        )
        raise RuntimeError("the process died before the commit")

    engine.add_participant(crash)
    api.compute(NOW + 40 * DAY)  # the batch stands; the trigger's transaction rolled back
    assert api.store.trigger_states("acme", "silent") == {}
    assert fired(api, "silent") == []
    assert api.store.get_documents("outbox-test", "acme") == {}

    def outbox(cur: Any, tenant_id: str, firings: Any) -> None:
        for firing in firings:
            cur.execute(
                "INSERT INTO documents (namespace, tenant_id, doc_key, document, updated_at) "
                "VALUES (?, ?, ?, ?, ?)",
                ("outbox-test", tenant_id, firing.event_id, "{}", NOW),
            )
            written.append(firing.event_id)

    engine.participants[:] = [outbox]
    api.compute(NOW + 40 * DAY)
    (event,) = fired(api, "silent")
    assert written == [event["id"]]
    assert list(api.store.get_documents("outbox-test", "acme")) == [event["id"]]
