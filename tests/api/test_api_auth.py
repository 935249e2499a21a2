"""Keys, tenants and roles: 401 / 400 / 404 / 403, and isolation between tenants."""

from __future__ import annotations

from typing import Any

import pytest
from apikit import ADA, FLOW, Api, error_of

RESPOND = {
    "customerId": "ada",
    "offerId": "premium-card",
    "outcome": "click",
    "idempotencyKey": "i",
}
# (method, path, body, roles allowed)
ENDPOINTS: list[tuple[str, str, Any, set[str]]] = [
    ("POST", "/api/v1/recommend", ADA, {"editor", "admin"}),
    ("POST", "/api/v1/respond", RESPOND, {"editor", "admin"}),
    ("GET", "/api/v1/offers", None, {"viewer", "editor", "admin"}),
    ("POST", "/api/v1/offers", {"id": "fresh"}, {"editor", "admin"}),
    ("GET", "/api/v1/offers/premium-card", None, {"viewer", "editor", "admin"}),
    ("PUT", "/api/v1/offers/premium-card", {"name": "P"}, {"editor", "admin"}),
    ("DELETE", "/api/v1/offers/savings-boost", None, {"editor", "admin"}),
    ("GET", "/api/v1/flows", None, {"viewer", "editor", "admin"}),
    ("POST", "/api/v1/flows", FLOW, {"editor", "admin"}),
    ("GET", "/api/v1/flows/cross-sell", None, {"viewer", "editor", "admin"}),
    ("POST", "/api/v1/flows/cross-sell/validate", None, {"viewer", "editor", "admin"}),
    ("POST", "/api/v1/flows/cross-sell/versions/1/publish", None, {"editor", "admin"}),
    ("GET", "/api/v1/outcome-types", None, {"viewer", "editor", "admin"}),
    ("POST", "/api/v1/outcome-types", {"name": "vip", "classification": "positive"}, {"admin"}),
    ("GET", "/api/v1/keys", None, {"admin"}),
    ("GET", "/api/v1/reports/lift?flow=cross-sell", None, {"viewer", "editor", "admin"}),
    ("POST", "/api/v1/keys", {"role": "viewer"}, {"admin"}),
    ("GET", "/api/v1/recorder/whoami", None, {"admin"}),
]
IDS = [f"{m} {p}" for m, p, _, _ in ENDPOINTS]


def call(api: Api, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    return api.client.request(method, path, json=body, headers=headers)


def snapshot(api: Api, tenant: str) -> dict[str, Any]:
    store = api.store
    return {
        "offers": store.list_offers(tenant, limit=1000).items,
        "flows": store.list_flows(tenant).items,
        "interactions": list(store.iter_interactions(tenant)),
        "keys": store.list_api_keys(tenant),
        "types": store.list_outcome_types(tenant),
    }


@pytest.mark.parametrize(("method", "path", "body", "roles"), ENDPOINTS, ids=IDS)
def test_every_endpoint_needs_a_valid_key(
    api: Api, method: str, path: str, body: Any, roles: set[str]
) -> None:
    error = error_of(call(api, method, path, body, {"X-Tenant-Id": "acme"}), 401)
    assert error["code"] == "unauthorized"
    for bad in ("Bearer nbk_0000000000000000_nope", "Bearer ", "Basic dXNlcjpwdw==", "junk"):
        error_of(call(api, method, path, body, {"X-Tenant-Id": "acme", "Authorization": bad}), 401)
    error_of(call(api, method, path, body, {"X-Tenant-Id": "acme", "X-API-Key": "wrong"}), 401)
    missing = call(api, method, path, body, {"Authorization": api.headers()["Authorization"]})
    assert error_of(missing, 400)["code"] == "missing_tenant"


@pytest.mark.parametrize(("method", "path", "body", "roles"), ENDPOINTS, ids=IDS)
def test_roles(api: Api, method: str, path: str, body: Any, roles: set[str]) -> None:
    first = True
    for role in ("viewer", "editor", "admin"):
        response = call(api, method, path, body, api.headers(role=role))
        if role in roles:
            # A repeated create or delete may then conflict (409) or be gone (404).
            assert response.status_code < 400 if first else response.status_code not in (401, 403)
            first = False
        else:
            assert error_of(response, 403)["code"] == "forbidden"


def test_another_tenants_key_and_ids_reveal_nothing(api: Api) -> None:
    globex_flow = FLOW | {"key": "globex-secret-flow"}
    api.store.save_flow("globex", "globex-secret-flow", globex_flow)
    globex_rec = api.recommend(tenant="globex")["recommendationId"]
    globex_key_id = api.store.list_api_keys("globex")[0].key_id
    before = snapshot(api, "globex")

    acme_admin = api.headers()
    as_globex = {**acme_admin, "X-Tenant-Id": "globex"}
    as_nobody = {**acme_admin, "X-Tenant-Id": "no-such-tenant"}
    for method, path, body, _ in ENDPOINTS:
        # acme's key presented for globex: the same 404 as for a tenant that does not exist.
        mismatch = call(api, method, path, body, as_globex)
        error_of(mismatch, 404)
        assert mismatch.json() == call(api, method, path, body, as_nobody).json()

    # acme's key for acme, naming globex's resources: they do not exist for acme.
    for method, path in [
        ("GET", "/api/v1/offers/globex-only"),
        ("DELETE", "/api/v1/offers/globex-only"),
        ("GET", "/api/v1/flows/globex-secret-flow"),
        ("POST", "/api/v1/flows/globex-secret-flow/validate"),
        ("POST", "/api/v1/flows/globex-secret-flow/versions/1/publish"),
        ("DELETE", f"/api/v1/keys/{globex_key_id}"),
    ]:
        response = call(api, method, path, None, acme_admin)
        error = error_of(response, 404)
        assert "Globex" not in response.text and error["details"] == []
    error = error_of(
        call(
            api,
            "POST",
            "/api/v1/respond",
            {**RESPOND, "offerId": None, "recommendationId": globex_rec, "rank": 1},
            acme_admin,
        ),
        400,
    )
    assert error["code"] == "unknown_recommendation"
    listed = call(api, "GET", "/api/v1/offers", None, acme_admin).json()["items"]
    assert "globex-only" not in {o["id"] for o in listed}
    flows = call(api, "GET", "/api/v1/flows", None, acme_admin).json()["items"]
    assert "globex-secret-flow" not in {f["key"] for f in flows}
    keys = call(api, "GET", "/api/v1/keys", None, acme_admin).json()["items"]
    assert globex_key_id not in {k["keyId"] for k in keys}
    decided = api.recommend()
    assert "globex-only" not in {d["offerId"] for d in decided["decisions"]}
    # Writing an offer with globex's id creates acme's own offer; globex's stays as it was.
    assert (
        call(api, "PUT", "/api/v1/offers/globex-only", {"name": "mine"}, acme_admin).status_code
        == 201
    )
    assert snapshot(api, "globex") == before


def test_revoked_key_is_rejected(api: Api) -> None:
    key_id, key = api.store.create_api_key("acme", "editor")
    headers = {"X-Tenant-Id": "acme", "Authorization": f"Bearer {key}"}
    assert api.client.get("/api/v1/offers", headers=headers).status_code == 200
    api.store.revoke_api_key("acme", key_id)
    error = error_of(api.client.get("/api/v1/offers", headers=headers), 401)
    assert "revoked" in error["message"]
