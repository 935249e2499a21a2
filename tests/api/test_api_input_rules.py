"""Input rules over HTTP, on both stores: ids without control characters (NUL broke
PostgreSQL), blank ids, bodies that are not UTF-8, and idempotency-key reuse with other data."""

from __future__ import annotations

from typing import Any

import pytest
from apikit import Api, error_of, fields_of


def respond(api: Api, body: dict[str, Any], **headers: str) -> Any:
    return api.client.post(
        "/api/v1/respond", json=body, headers=api.headers(role="editor", **headers)
    )


def _ok(**extra: Any) -> dict[str, Any]:
    return {
        "customerId": "ada",
        "offerId": "premium-card",
        "outcome": "conversion",
        "conversionValue": 10.0,
        "idempotencyKey": "k-1",
    } | extra


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"customerId": "a\x00b"}, "body.customerId"),
        ({"customerId": "tab\there"}, "body.customerId"),
        ({"idempotencyKey": "k\x00"}, "body.idempotencyKey"),
        ({"offerId": "o\x00"}, "body.offerId"),
        ({"channelId": "web\x00"}, "body.channelId"),
        ({"offerId": None, "recommendationId": "r\x00", "rank": 1}, "body.recommendationId"),
        ({"customerId": "   "}, "body.customerId"),
        ({"idempotencyKey": " \t "}, "body.idempotencyKey"),
        ({"customerId": "x" * 257}, "body.customerId"),
    ],
)
def test_respond_refuses_bad_ids_naming_the_field(
    api: Api, changes: dict[str, Any], field: str
) -> None:
    error = error_of(respond(api, _ok(**changes)), 400)
    assert fields_of(error) == [field], error
    assert list(api.store.iter_interactions("acme")) == []


def test_idempotency_key_header_rules(api: Api) -> None:
    body = {k: v for k, v in _ok().items() if k != "idempotencyKey"}
    for header, message in [("   ", "blank"), ("a\tb", "control characters")]:
        error = error_of(respond(api, body, **{"Idempotency-Key": header}), 400)
        assert fields_of(error) == ["header.Idempotency-Key"] and message in error["message"]
    error = error_of(respond(api, body, **{"Idempotency-Key": "x" * 257}), 400)
    assert fields_of(error) == ["header.Idempotency-Key"]
    # Surrounding whitespace is not part of a key or a customer id.
    stored = respond(api, body | {"customerId": " ada "}, **{"Idempotency-Key": " h-1 "})
    assert stored.status_code == 200, stored.text
    assert (stored.json()["idempotencyKey"], stored.json()["customerId"]) == ("h-1", "ada")
    again = respond(api, _ok(idempotencyKey="h-1"))
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"customerId": "a\x00b"}, "body.customerId"),
        ({"customerId": "  "}, "body.customerId"),
        ({"channel": "web\x00"}, "body.channel"),
        ({"placement": "home\x1b"}, "body.placement"),
        ({"decisionFlowKey": "f\x00"}, "body.decisionFlowKey"),
    ],
)
def test_recommend_refuses_bad_ids_naming_the_field(
    api: Api, changes: dict[str, Any], field: str
) -> None:
    body = {"customerId": "ada", "channel": "web"} | changes
    error = error_of(api.post("/api/v1/recommend", body, role="editor"), 400)
    assert fields_of(error) == [field], error


def test_path_ids_with_control_characters_are_400(api: Api) -> None:
    headers = api.headers()
    for method, path, field in [
        ("GET", "/api/v1/offers/a%00b", "path.offerId"),
        ("DELETE", "/api/v1/offers/a%00b", "path.offerId"),
        ("GET", "/api/v1/flows/a%00b", "path.key"),
        ("POST", "/api/v1/flows/a%00b/versions/1/publish", "path.key"),
        ("DELETE", "/api/v1/keys/a%00b", "path.keyId"),
    ]:
        response = api.client.request(method, path, headers=headers)
        assert fields_of(error_of(response, 400)) == [field], (method, path)
    response = api.client.put(
        "/api/v1/offers/a%00b", json={"name": "x", "priority": 1}, headers=headers
    )
    assert fields_of(error_of(response, 400)) == ["path.offerId"]


def test_nul_inside_context_is_kept(api: Api) -> None:
    response = respond(api, _ok(context={"note": "a\x00b", "k\x00": 1}))
    assert response.status_code == 200, response.text
    stored = api.store.get_interaction("acme", "k-1")
    assert stored is not None and stored.context == {"note": "a\x00b", "k\x00": 1}


def test_body_that_is_not_utf8_is_invalid_json(api: Api) -> None:
    response = api.client.post(
        "/api/v1/respond",
        content=b'{"customerId": "\xff\xfe"}',
        headers=api.headers(role="editor", **{"Content-Type": "application/json"}),
    )
    error = error_of(response, 400)
    assert error["code"] == "invalid_json" and fields_of(error) == ["body"]


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"offerId": "gold-card"}, "offerId"),
        ({"conversionValue": 11.0}, "conversionValue"),
        ({"customerId": "bob"}, "customerId"),
        ({"outcome": "click", "conversionValue": None}, "outcome"),
        ({"channelId": "email"}, "channelId"),
    ],
)
def test_reusing_a_key_with_other_data_is_a_conflict(
    api: Api, changes: dict[str, Any], named: str
) -> None:
    assert respond(api, _ok(channelId="web")).status_code == 200
    error = error_of(respond(api, _ok(channelId="web") | changes), 409)
    assert error["code"] == "idempotency_conflict" and named in error["message"]
    assert fields_of(error) == ["body.idempotencyKey"]
    # The same data again (timestamp and context are not compared) is a replay.
    replay = respond(api, _ok(channelId="web", context={"retry": 1}))
    assert replay.status_code == 200 and replay.headers["idempotent-replayed"] == "true"
    assert len(list(api.store.iter_interactions("acme"))) == 1


def test_reusing_a_key_with_another_rank_is_a_conflict(api: Api) -> None:
    rec = api.recommend()
    assert len(rec["decisions"]) >= 2
    first = _ok(offerId=None, recommendationId=rec["recommendationId"], rank=1)
    assert respond(api, first).status_code == 200
    error = error_of(respond(api, first | {"rank": 2}), 409)
    assert error["code"] == "idempotency_conflict" and "rank" in error["message"]
    by_offer = first | {"recommendationId": None, "rank": None}
    by_offer["offerId"] = rec["decisions"][0]["offerId"]
    error = error_of(respond(api, by_offer), 409)
    assert "recommendationId" in error["message"]
    assert respond(api, first).headers["idempotent-replayed"] == "true"
