"""Offers, flows, outcome types, keys, health and docs over HTTP."""

from __future__ import annotations

import base64
import copy

import pytest
from apikit import FLOW, OFFERS, Api, error_of, fields_of

from nextbest.store import StoreBusyError


def test_healthz_openapi_and_docs_need_no_key(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    schema = api.client.get("/openapi.json").json()
    for path in (
        "/api/v1/recommend",
        "/api/v1/respond",
        "/api/v1/offers/{offerId}",
        "/api/v1/flows/{key}/versions/{version}/publish",
        "/api/v1/recorder/whoami",
    ):
        assert path in schema["paths"], path
    assert "swagger" in api.client.get("/docs").text.lower()


def test_offer_create_read_replace_delete(api: Api) -> None:
    offer = {"id": "gold-card", "name": "Gold card", "category": "cards", "priority": 75}
    created = api.post("/api/v1/offers", offer, role="editor")
    assert created.status_code == 201 and created.json() == offer
    assert created.headers["location"] == "/api/v1/offers/gold-card"
    assert api.get("/api/v1/offers/gold-card", role="viewer").json() == offer
    error = error_of(api.post("/api/v1/offers", offer | {"name": "Other"}), 409)
    assert error["code"] == "offer_exists" and fields_of(error) == ["body.id"]
    assert "'gold-card' already exists" in error["message"] and "PUT" in error["message"]
    assert api.get("/api/v1/offers/gold-card").json() == offer  # the existing one is kept

    replaced = {"name": "Gold card v2", "priority": 60}
    response = api.client.put("/api/v1/offers/gold-card", json=replaced, headers=api.headers())
    assert response.status_code == 200
    assert api.get("/api/v1/offers/gold-card").json() == {"id": "gold-card", **replaced}
    response = api.client.put("/api/v1/offers/new-one", json={"name": "N"}, headers=api.headers())
    assert response.status_code == 201

    assert api.client.delete("/api/v1/offers/gold-card", headers=api.headers()).status_code == 204
    assert error_of(api.get("/api/v1/offers/gold-card"), 404)["code"] == "offer_not_found"
    error_of(api.client.delete("/api/v1/offers/gold-card", headers=api.headers()), 404)


def test_location_of_an_offer_with_any_id_is_a_valid_header(api: Api) -> None:
    # Headers are Latin-1; an id may hold any character but a control (found by schemathesis).
    offer = {"id": "café ☕ 𝄞"}
    created = api.post("/api/v1/offers", offer, role="editor")
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    assert location == "/api/v1/offers/caf%C3%A9%20%E2%98%95%20%F0%9D%84%9E"
    assert api.get(location, role="viewer").json() == offer


def test_offer_validation_names_every_field(api: Api) -> None:
    error = error_of(api.post("/api/v1/offers", {"id": "bad", "priority": 500, "weight": "x"}), 400)
    assert error["code"] == "validation_failed"
    assert sorted(fields_of(error)) == ["body.priority", "body.weight"]
    error = error_of(
        api.client.put("/api/v1/offers/a", json={"id": "b"}, headers=api.headers()), 400
    )
    assert fields_of(error) == ["body.id"]
    error = error_of(api.post("/api/v1/offers", [{"id": "x"}]), 400)
    assert fields_of(error) == ["body"]


def test_offer_list_pages_with_a_cursor(api: Api) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        body = api.get("/api/v1/offers", role="viewer", params=params).json()
        assert len(body["items"]) <= 3
        seen.extend(o["id"] for o in body["items"])
        pages += 1
        if (cursor := body["nextCursor"]) is None:
            break
    assert seen == sorted(o["id"] for o in OFFERS)
    assert pages == 3
    error = error_of(api.get("/api/v1/offers", params={"cursor": "%%%"}), 400)
    assert fields_of(error) == ["query.cursor"]
    error = error_of(api.get("/api/v1/offers", params={"limit": 0}), 400)
    assert fields_of(error) == ["query.limit"]


def test_flow_save_get_list_validate_publish(api: Api) -> None:
    draft = copy.deepcopy(FLOW) | {"key": "winback", "name": "Win-back"}
    saved = api.post("/api/v1/flows", draft, role="editor")
    assert saved.status_code == 201
    assert saved.json()["key"] == "winback" and saved.json()["version"] == 1
    assert saved.json()["published"] is False
    assert api.post("/api/v1/flows", draft).json()["version"] == 2

    got = api.get("/api/v1/flows/winback", role="viewer").json()
    assert got["version"] == 2 and got["document"] == draft and got["published"] is False
    assert api.get("/api/v1/flows/winback", params={"version": 1}).json()["version"] == 1
    error_of(api.get("/api/v1/flows/winback", params={"published": "true"}), 404)
    error_of(api.get("/api/v1/flows/nope"), 404)

    # Only published flows run.
    error = error_of(
        api.post("/api/v1/recommend", {"customerId": "c", "decisionFlowKey": "winback"}), 400
    )
    assert error["code"] == "unknown_flow" and fields_of(error) == ["body.decisionFlowKey"]

    published = api.post("/api/v1/flows/winback/versions/1/publish", role="editor").json()
    assert published["published"] is True and published["version"] == 1
    assert api.get("/api/v1/flows/winback", params={"published": "true"}).json()["version"] == 1
    body = api.post("/api/v1/recommend", {"customerId": "c", "decisionFlowKey": "winback"}).json()
    assert body["flowKey"] == "winback" and body["flowVersion"] == 1
    error_of(api.post("/api/v1/flows/winback/versions/9/publish"), 404)

    listed = api.get("/api/v1/flows", role="viewer", params={"limit": 1}).json()
    assert [i["key"] for i in listed["items"]] == ["cross-sell"]
    rest = api.get("/api/v1/flows", params={"cursor": listed["nextCursor"]}).json()
    assert rest["items"] == [
        {
            "key": "winback",
            "latestVersion": 2,
            "publishedVersion": 1,
            "updatedAt": rest["items"][0]["updatedAt"],
        }
    ]


def test_flow_save_rejects_an_invalid_flow_with_every_issue_path(api: Api) -> None:
    bad = copy.deepcopy(FLOW)
    bad["nodes"][1]["config"]["rules"][0]["config"]["operator"] = "bogus"
    bad["nodes"][3]["config"]["method"] = "nope"
    error = error_of(api.post("/api/v1/flows", bad), 400)
    assert error["code"] == "validation_failed"
    fields = fields_of(error)
    assert any(f.startswith("body.nodes[1].config.rules[0]") for f in fields), fields
    assert any(f.startswith("body.nodes[3]") for f in fields), fields
    assert api.get("/api/v1/flows").json()["items"][0]["latestVersion"] == 1  # nothing saved


def test_flow_validate_posted_or_saved_document(api: Api) -> None:
    ok = api.post("/api/v1/flows/cross-sell/validate", FLOW, role="viewer").json()
    assert ok["valid"] is True and ok["issues"] == [] and ok["nodes"] == len(FLOW["nodes"])
    saved = api.post("/api/v1/flows/cross-sell/validate").json()
    assert saved["valid"] is True
    bad = copy.deepcopy(FLOW) | {"key": "other"}
    del bad["nodes"]
    result = api.post("/api/v1/flows/cross-sell/validate", bad).json()
    assert result["valid"] is False
    assert {i["path"] for i in result["issues"]} >= {"key", "nodes"}
    error_of(api.post("/api/v1/flows/missing/validate"), 404)


def test_outcome_types_and_keys(api: Api) -> None:
    names = [t["name"] for t in api.get("/api/v1/outcome-types", role="viewer").json()["items"]]
    assert len(names) == 11 and names[0] == "impression"
    created = api.post("/api/v1/outcome-types", {"name": "upgrade", "classification": "positive"})
    assert created.status_code == 201
    assert created.json() == {
        "name": "upgrade",
        "classification": "positive",
        "kind": "response",
        "builtin": False,
    }
    error_of(
        api.post("/api/v1/outcome-types", {"name": "upgrade", "classification": "positive"}), 409
    )
    error = error_of(
        api.post("/api/v1/outcome-types", {"name": "x", "classification": "great"}), 400
    )
    assert fields_of(error) == ["body.classification"]

    new = api.post("/api/v1/keys", {"role": "viewer"})
    assert new.status_code == 201 and new.json()["key"].startswith("nbk_")
    headers = {"X-Tenant-Id": "acme", "X-API-Key": new.json()["key"]}
    assert api.client.get("/api/v1/offers", headers=headers).status_code == 200
    listed = api.get("/api/v1/keys").json()["items"]
    assert new.json()["keyId"] in [k["keyId"] for k in listed]
    assert all("key" not in k for k in listed)
    gone = api.client.delete(f"/api/v1/keys/{new.json()['keyId']}", headers=api.headers())
    assert gone.status_code == 204
    error_of(api.client.get("/api/v1/offers", headers=headers), 401)
    error_of(api.post("/api/v1/keys", {"role": "root"}), 400)


@pytest.mark.parametrize("version", ["0", "-1", "2147483648", "10000000000000000000", "1.5", "x"])
def test_flow_versions_out_of_range_answer_400(api: Api, version: str) -> None:
    error = error_of(api.get("/api/v1/flows/cross-sell", params={"version": version}), 400)
    assert fields_of(error) == ["query.version"]
    error = error_of(api.post(f"/api/v1/flows/cross-sell/versions/{version}/publish"), 400)
    assert fields_of(error) == ["path.version"]
    assert api.get("/api/v1/flows/cross-sell", params={"version": "2147483647"}).status_code == 404


def test_list_cursors_that_decode_to_junk_answer_400(api: Api) -> None:
    for raw in (b'["a\\u0000b"]', b'["\\ud800"]', b"[" * 2000 + b"]" * 2000, b"[1]"):
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        for path in ("/api/v1/offers", "/api/v1/flows"):
            error = error_of(api.get(path, params={"cursor": cursor}), 400)
            assert fields_of(error) == ["query.cursor"]


def test_an_offer_nested_too_deep_is_refused_and_the_catalog_still_reads(api: Api) -> None:
    deep: object = 1
    for _ in range(300):
        deep = {"a": deep}
    for response in (
        api.post("/api/v1/offers", {"id": "deep", "name": "Deep", "attributes": {"x": deep}}),
        api.client.put(
            "/api/v1/offers/deep", json={"attributes": {"x": deep}}, headers=api.headers()
        ),
    ):
        error = error_of(response, 400)
        assert "nested more than 32 levels" in error["message"], error
    error_of(api.get("/api/v1/offers/deep"), 404)
    assert api.get("/api/v1/offers", params={"limit": 1000}).status_code == 200


def test_a_write_the_store_could_not_complete_answers_409_not_500(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def busy(*args: object, **kwargs: object) -> None:
        raise StoreBusyError("the write collided with concurrent ones: retry (tried 5 times)")

    monkeypatch.setattr(api.store, "create_offer", busy)
    monkeypatch.setattr(api.store, "save_flow", busy)
    error = error_of(api.post("/api/v1/offers", {"id": "x", "name": "X"}), 409)
    assert error["code"] == "conflict" and "retry" in error["message"]
    error = error_of(api.post("/api/v1/flows", FLOW), 409)
    assert error["code"] == "conflict"
