"""The API's limits (docs/api.md, "Limits"): the body size, what the JSON parser and the store
can take, ids, values, times and free-form data, each answered with a 4xx naming the field.

Each case here answered 500 (or was stored, then broke reads) before these limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apikit import ADA, PEPPER, Api, RecorderPlugin, error_of, fields_of, seed
from fastapi.testclient import TestClient
from pydantic import ValidationError

from nextbest import DecisionRequest, Host
from nextbest.api import create_app
from nextbest.api.body_limit import DEFAULT_MAX_BODY_BYTES, MAX_BODY_BYTES_ENV
from nextbest.store import MAX_DOCUMENT_DEPTH, open_store


@pytest.fixture
def local(tmp_path: Path) -> Iterator[tuple[Host, Any, dict[tuple[str, str], str]]]:
    """A SQLite store with the seeded tenants, for checks that never reach a store."""
    store = open_store(f"sqlite:///{tmp_path / 'limits.db'}", pepper=PEPPER)
    store.upgrade()
    keys = seed(store)
    yield Host(plugins=[RecorderPlugin()], store=store), store, keys
    store.close()


def _client(local: tuple[Host, Any, dict[tuple[str, str], str]], **options: Any) -> TestClient:
    host, store, _ = local
    return TestClient(create_app(host, store, **options), raise_server_exceptions=False)


def _headers(local: tuple[Host, Any, dict[tuple[str, str], str]], **extra: str) -> dict[str, str]:
    return {
        "X-Tenant-Id": "acme",
        "Authorization": f"Bearer {local[2][('acme', 'admin')]}",
        "Content-Type": "application/json",
        **extra,
    }


def _respond_body(**extra: Any) -> dict[str, Any]:
    return {
        "customerId": "ada",
        "offerId": "premium-card",
        "outcome": "conversion",
        "idempotencyKey": "k-1",
    } | extra


# -- the body limit -----------------------------------------------------------------------------
def _asgi(
    app: Any, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
) -> tuple[int, Any, int]:
    """Call ``app`` with a POST whose body arrives in ``chunks``; (status, JSON body, chunks the
    app pulled)."""
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled < len(chunks):
            pulled += 1
            return {
                "type": "http.request",
                "body": chunks[pulled - 1],
                "more_body": pulled < len(chunks),
            }
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/offers",
        "raw_path": b"/api/v1/offers",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "state": {},
    }
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body), pulled


def test_a_declared_body_over_the_limit_is_413_before_any_of_it_is_read(local: Any) -> None:
    app = create_app(local[0], local[1])
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(DEFAULT_MAX_BODY_BYTES + 1).encode()),
    ]
    status, body, pulled = _asgi(app, headers, [b"{"] * 3)
    assert status == 413 and pulled == 0
    assert body["error"]["code"] == "payload_too_large"
    assert str(DEFAULT_MAX_BODY_BYTES) in body["error"]["message"]
    assert [d["field"] for d in body["error"]["details"]] == ["body"]


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(local: Any) -> None:
    app = create_app(local[0], local[1], max_body_bytes=100_000)
    chunk = b"x" * 10_000
    # No Content-Length (chunked): 1 MB offered, the app stops pulling after 100 kB + 1 chunk.
    status, body, pulled = _asgi(app, [(b"content-type", b"application/json")], [chunk] * 100)
    assert status == 413 and pulled == 11, pulled
    assert "100000 bytes" in body["error"]["message"]
    # A body that lies about its length is cut the same way.
    lying = [(b"content-type", b"application/json"), (b"content-length", b"10")]
    status, _, pulled = _asgi(app, lying, [chunk] * 100)
    assert status == 413 and pulled == 11


def test_the_limit_is_configurable_and_exact(local: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client(local, max_body_bytes=300)
    offer = {"id": "sized", "name": "x"}
    offer["name"] = "x" * (300 - len(json.dumps(offer)) + 1)
    exact = json.dumps(offer).encode()
    assert len(exact) == 300
    response = client.post("/api/v1/offers", content=exact, headers=_headers(local))
    assert response.status_code == 201, response.text
    offer["id"] = "sized2"  # one byte more
    error = error_of(
        client.post("/api/v1/offers", content=json.dumps(offer), headers=_headers(local)), 413
    )
    assert "300 bytes" in error["message"]
    assert local[1].get_offer("acme", "sized2") is None

    monkeypatch.setenv(MAX_BODY_BYTES_ENV, "2048")
    assert create_app(local[0], local[1]).state.max_body_bytes == 2048
    assert create_app(local[0], local[1], max_body_bytes=10).state.max_body_bytes == 10
    monkeypatch.setenv(MAX_BODY_BYTES_ENV, "lots")
    with pytest.raises(ValueError, match=MAX_BODY_BYTES_ENV):
        create_app(local[0], local[1])
    monkeypatch.delenv(MAX_BODY_BYTES_ENV)
    assert create_app(local[0], local[1]).state.max_body_bytes == DEFAULT_MAX_BODY_BYTES
    for bad in (0, -1, True):
        with pytest.raises(ValueError, match="positive"):
            create_app(local[0], local[1], max_body_bytes=bad)


# -- what the JSON parser and the store cannot take ---------------------------------------------
def test_a_body_nested_beyond_the_parser_is_a_400_naming_where(local: Any) -> None:
    client = _client(local)
    deep = '{"id": "deep", "x": ' + "[" * 5000 + "]" * 5000 + "}"
    error = error_of(client.post("/api/v1/offers", content=deep, headers=_headers(local)), 400)
    assert fields_of(error) == ["body"]
    assert f"more than {MAX_DOCUMENT_DEPTH} levels" in error["message"]
    column = len('{"id": "deep", "x": ') + MAX_DOCUMENT_DEPTH  # the 33rd opening bracket
    assert f"line 1 column {column}" in error["message"]
    assert local[1].get_offer("acme", "deep") is None


def test_a_document_nested_too_deep_is_a_400_naming_the_path(local: Any) -> None:
    client = _client(local)
    levels = MAX_DOCUMENT_DEPTH  # with the offer itself, one level too many
    offer = '{"id": "deep", "attributes": {"y": ' + "[" * (levels - 1) + "]" * (levels - 1) + "}}"
    error = error_of(client.post("/api/v1/offers", content=offer, headers=_headers(local)), 400)
    assert fields_of(error) == ["body.attributes.y" + "[0]" * (levels - 2)]
    assert "nested more than" in error["message"]
    assert local[1].get_offer("acme", "deep") is None
    # One level less is a storable document.
    ok = '{"id": "deep", "attributes": {"y": ' + "[" * (levels - 2) + "]" * (levels - 2) + "}}"
    assert client.post("/api/v1/offers", content=ok, headers=_headers(local)).status_code == 201
    assert client.get("/api/v1/offers/deep", headers=_headers(local)).status_code == 200


@pytest.mark.parametrize(
    ("number", "field"),
    [
        ("9" * 5000, "body.rank"),  # beyond int()'s 4,300 digits
        ("-" + "9" * 5000, "body.rank"),
        ("9223372036854775808", "body.rank"),  # 2**63: beyond 64 bits
        ("1e999", "body.conversionValue"),  # a float literal that is infinite
    ],
)
def test_numbers_json_or_the_store_cannot_hold_are_400_naming_the_field(
    local: Any, number: str, field: str
) -> None:
    body = json.dumps(_respond_body(recommendationId="r", offerId=None)).replace(
        '"offerId": null', f'"{field.removeprefix("body.")}": {number}'
    )
    response = _client(local).post("/api/v1/respond", content=body, headers=_headers(local))
    assert fields_of(error_of(response, 400)) == [field]


def test_large_bodies_get_the_same_rules(local: Any) -> None:
    # Bodies over 64 KiB are parsed in a worker thread: same answers.
    client = _client(local)
    attributes = {f"k{i}": ["v" * 20, i, {"x": 1.5}] for i in range(4000)}
    offer = json.dumps({"id": "large", "attributes": attributes})
    assert len(offer) > 128 * 1024
    assert client.post("/api/v1/offers", content=offer, headers=_headers(local)).status_code == 201
    assert local[1].get_offer("acme", "large")["attributes"] == attributes
    bad = offer.replace('"k3999": ["v', '"k3999": ["\\ud800').replace('"large"', '"large2"')
    error = error_of(client.post("/api/v1/offers", content=bad, headers=_headers(local)), 400)
    assert fields_of(error) == ["body.attributes.k3999[0]"]
    deep = offer[:-2] + ', "deep": ' + "[" * 2000 + "]" * 2000 + "}}"
    error = error_of(client.post("/api/v1/offers", content=deep, headers=_headers(local)), 400)
    assert fields_of(error) == ["body"] and "levels deep (line 1" in error["message"]


def test_malformed_json_names_the_line_and_column(local: Any) -> None:
    response = _client(local).post(
        "/api/v1/respond", content='{\n  "customerId": "ada",\n  oops\n}', headers=_headers(local)
    )
    error = error_of(response, 400)
    assert error["code"] == "invalid_json" and fields_of(error) == ["body"]
    assert "line 3 column 3" in error["message"]


def test_a_key_that_is_not_valid_unicode_is_a_400_not_a_500(local: Any) -> None:
    body = '{"customerId": "ada", "\\ud800": 1}'
    response = _client(local).post("/api/v1/recommend", content=body, headers=_headers(local))
    error = error_of(response, 400)
    assert fields_of(error) == ["body"] and "not valid Unicode" in error["message"]


def test_plugin_routes_get_the_same_body_rules(local: Any) -> None:
    client = _client(local)
    good = client.post(
        "/api/v1/recorder/echo", json={"a": [1, {"b": "c"}]}, headers=_headers(local)
    )
    assert good.status_code == 200 and good.json() == {"a": [1, {"b": "c"}]}
    for raw, field in [
        ('{"a": {"b": "\\udfff"}}', "body.a.b"),
        ('{"a": [1, NaN]}', "body.a[1]"),
        ('{"a": ' + "[" * 3000 + "]" * 3000 + "}", "body"),
    ]:
        response = client.post("/api/v1/recorder/echo", content=raw, headers=_headers(local))
        assert fields_of(error_of(response, 400)) == [field], raw[:40]
    text = _headers(local, **{"Content-Type": "text/plain"})
    error_of(client.post("/api/v1/recorder/echo", content="{}", headers=text), 415)


# -- ids, values, times, free-form data (both stores) -------------------------------------------
def respond(api: Api, body: dict[str, Any]) -> Any:
    return api.client.post("/api/v1/respond", json=body, headers=api.headers(role="editor"))


@pytest.mark.parametrize(
    "timestamp",
    [
        "0001-01-01T00:00:00+05:00",  # no UTC equivalent: overflowed before
        "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00",
        "1899-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "yesterday",
    ],
)
def test_respond_times_outside_the_window_are_400(api: Api, timestamp: str) -> None:
    error = error_of(respond(api, _respond_body(timestamp=timestamp)), 400)
    assert fields_of(error) == ["body.timestamp"]
    assert list(api.store.iter_interactions("acme")) == []


def test_respond_times_at_the_edges_of_the_window(api: Api) -> None:
    assert respond(api, _respond_body(timestamp="1900-01-01T00:00:00Z")).status_code == 200
    assert respond(api, _respond_body(timestamp="1900-01-01T05:00:00+05:00", idempotencyKey="k2"))
    stored = api.store.get_interaction("acme", "k2")
    assert stored is not None and stored.occurred_at.isoformat() == "1900-01-01T00:00:00+00:00"


def test_a_lone_surrogate_in_context_is_a_400_naming_the_path(api: Api) -> None:
    body = json.dumps(_respond_body()).replace("}", ', "context": {"a": {"b": "x\\ud83d"}}}')
    response = api.client.post(
        "/api/v1/respond",
        content=body,
        headers=api.headers(role="editor", **{"Content-Type": "application/json"}),
    )
    error = error_of(response, 400)
    assert fields_of(error) == ["body.context.a.b"] and "Unicode" in error["message"]
    assert list(api.store.iter_interactions("acme")) == []


def test_context_and_attributes_are_capped(api: Api) -> None:
    big = {"note": "x" * 16_400}
    error = error_of(respond(api, _respond_body(context=big)), 400)
    assert fields_of(error) == ["body.context"] and "16384 bytes" in error["message"]
    error = error_of(api.post("/api/v1/recommend", ADA | {"attributes": big}, role="editor"), 400)
    assert fields_of(error) == ["body.attributes"]
    # Just under the cap is fine, and nothing of the refused outcome was kept.
    fits = {"note": "x" * (16_384 - len('{"note":""}'))}
    assert respond(api, _respond_body(context=fits)).status_code == 200
    assert [i.context for i in api.store.iter_interactions("acme")] == [fits]
    assert (
        api.post("/api/v1/recommend", ADA | {"attributes": fits}, role="editor").status_code == 200
    )


def test_customer_ids_up_to_the_store_limit_are_recommended(api: Api) -> None:
    # The decision model allowed 200 characters, the API and the store 256: 201-256 were a 500.
    for length in (201, 256):
        body = api.recommend(customerId="c" * length)
        assert body["customerId"] == "c" * length
    error = error_of(api.post("/api/v1/recommend", {"customerId": "c" * 257}, role="editor"), 400)
    assert fields_of(error) == ["body.customerId"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"conversionValue": 1e12 + 1}, "body.conversionValue"),
        ({"conversionValue": -0.5}, "body.conversionValue"),
        ({"offerId": None, "recommendationId": "r", "rank": 51}, "body.rank"),
        ({"offerId": None, "recommendationId": "r", "rank": 2**62}, "body.rank"),
        ({"outcome": "click\x00"}, "body.outcome"),
        ({"outcome": "o" * 257}, "body.outcome"),
    ],
)
def test_respond_values_and_ranks_out_of_range_are_400(
    api: Api, changes: dict[str, Any], field: str
) -> None:
    error = error_of(respond(api, _respond_body(**changes)), 400)
    assert fields_of(error) == [field], error
    assert list(api.store.iter_interactions("acme")) == []


def test_the_largest_value_is_accepted(api: Api) -> None:
    response = respond(api, _respond_body(conversionValue=1e12))
    assert response.status_code == 200 and response.json()["conversionValue"] == 1e12


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"limit": 51}, "body.limit"),
        ({"segments": ["s"] * 101}, "body.segments"),
        ({"segments": ["ok", "bad\x07"]}, "body.segments.1"),
        ({"segments": ["x" * 257]}, "body.segments.0"),
    ],
)
def test_recommend_limits(api: Api, changes: dict[str, Any], field: str) -> None:
    error = error_of(api.post("/api/v1/recommend", ADA | changes, role="editor"), 400)
    assert fields_of(error) == [field], error


def test_numbers_in_paths_and_queries_are_bounded(api: Api) -> None:
    huge = str(10**19)  # beyond 64 bits: a 500 from SQLite before
    error = error_of(api.get(f"/api/v1/flows/cross-sell?version={huge}"), 400)
    assert fields_of(error) == ["query.version"]
    error = error_of(api.post(f"/api/v1/flows/cross-sell/versions/{huge}/publish"), 400)
    assert fields_of(error) == ["path.version"]
    for query in ("limit=0", "limit=1001", "limit=1e3", "cursor="):
        error = error_of(api.get(f"/api/v1/offers?{query}"), 400)
        assert fields_of(error) == [f"query.{query.split('=')[0]}"], query
    error = error_of(api.get("/api/v1/offers?cursor=not-a-cursor"), 400)
    assert fields_of(error) == ["query.cursor"]


def test_a_key_with_control_characters_is_401_on_every_store(api: Api) -> None:
    # Never a valid key; PostgreSQL could not even look it up (NUL), which was a 500.
    for key in ("nbk_0123456789abcde\x00_secret", "nbk_\x01"):
        response = api.client.get(
            "/api/v1/offers", headers={"X-Tenant-Id": "acme", "Authorization": f"Bearer {key}"}
        )
        assert error_of(response, 401)["code"] == "unauthorized"


def test_stored_documents_are_checked_before_the_store(api: Api) -> None:
    headers = api.headers(**{"Content-Type": "application/json"})
    deep = "[" * 40 + "]" * 40
    cases = [
        (
            "POST",
            "/api/v1/offers",
            '{"id": "o-deep", "attributes": ' + deep + "}",
            "body.attributes",
        ),
        ("PUT", "/api/v1/offers/o-nan", '{"name": "n", "priority": NaN}', "body.priority"),
        ("POST", "/api/v1/flows", '{"key": "f", "nodes": [' + deep + "]}", "body.nodes[0]"),
    ]
    for method, path, body, field in cases:
        response = api.client.request(method, path, content=body, headers=headers)
        assert fields_of(error_of(response, 400))[0].startswith(field), (path, response.text)
    assert api.store.get_offer("acme", "o-deep") is None
    assert api.store.get_offer("acme", "o-nan") is None


# -- the decision model: the same limits for every entry point ----------------------------------
def test_decision_requests_follow_the_store_limits() -> None:
    assert DecisionRequest(customer_id="c" * 256).customer_id == "c" * 256
    for bad in (
        {"customerId": "c" * 257},
        {"customerId": "a\x00"},
        {"customerId": "ada", "channel": ""},
        {"customerId": "ada", "asOf": "0001-01-01T00:00:00+05:00"},
        {"customerId": "ada", "asOf": "2200-01-01T00:00:00Z"},
        {"customerId": "ada", "attributes": {"x": "y" * 16_400}},
        {"customerId": "ada", "attributes": {"x": float("nan")}},
        {"customerId": "ada", "segments": ["s"] * 101},
        {"customerId": "ada", "limit": 51},
    ):
        with pytest.raises(ValidationError):
            DecisionRequest.model_validate(bad)
    assert DecisionRequest.model_validate({"customerId": "ada", "asOf": "1900-01-01"}).as_of
