"""The CLV HTTP routes through the host's app: records, batch, settings, distribution, roles and
tenant rules on every endpoint, and the scheduler started by the app's lifespan."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from clvkit import T0, store_settings_unchecked, worked_tenant
from fastapi.testclient import TestClient

from nextbest import Host
from nextbest.api import create_app
from nextbest.store import Store

AS_OF = "2024-07-01T00:00:00Z"
FIELDS = [
    "customerId",
    "clvScore",
    "predictedRevenue",
    "churnProbability",
    "rfmRecency",
    "rfmFrequency",
    "rfmMonetary",
    "segment",
    "computedAt",
    "source",
]
READ, WRITE, ADMIN = {"viewer", "editor", "admin"}, {"editor", "admin"}, {"admin"}
ENDPOINTS: list[tuple[str, str, Any, set[str]]] = [
    ("GET", f"/api/v1/customers/ada/clv?asOf={AS_OF}", None, READ),
    ("POST", "/api/v1/customers/ada/clv", {"asOf": AS_OF}, WRITE),
    ("POST", "/api/v1/clv/compute", {"asOf": AS_OF}, WRITE),
    ("GET", "/api/v1/clv/settings", None, READ),
    ("PUT", "/api/v1/clv/settings", {"atRiskDays": 30}, ADMIN),
    ("GET", f"/api/v1/clv/distribution?asOf={AS_OF}", None, READ),
]


@pytest.fixture
def client(store: Store) -> TestClient:
    worked_tenant(store)
    worked_tenant(store, "globex")
    return TestClient(create_app(Host(store=store), store))


@pytest.fixture
def keys(store: Store) -> dict[str, str]:
    return {role: store.create_api_key("acme", role)[1] for role in ("viewer", "editor", "admin")}


def headers(key: str, tenant: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "X-Tenant-Id": tenant}


def test_record_computed_then_cached(client: TestClient, keys: dict[str, str]) -> None:
    url = f"/api/v1/customers/ada/clv?asOf={AS_OF}"
    first = client.get(url, headers=headers(keys["viewer"]))
    assert first.status_code == 200, first.text
    body = first.json()
    assert list(body) == FIELDS
    assert body["source"] == "computed"
    assert (body["clvScore"], body["predictedRevenue"], body["segment"]) == (80, 1440.0, "high")
    assert round(body["churnProbability"], 3) == 0.119
    assert client.get(url, headers=headers(keys["viewer"])).json()["source"] == "cached"
    again = client.post(
        "/api/v1/customers/ada/clv", json={"asOf": AS_OF}, headers=headers(keys["editor"])
    )
    assert again.status_code == 200
    assert again.json()["source"] == "computed"


def test_no_interactions_is_a_404_with_a_code(
    client: TestClient, keys: dict[str, str], store: Store
) -> None:
    response = client.get("/api/v1/customers/nobody/clv", headers=headers(keys["viewer"]))
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "clv_no_interactions"
    assert "no recorded interactions" in error["message"]
    # globex's customer, asked with an acme key: not found for acme.
    from clvkit import add_interactions

    add_interactions(store, "globex", "gina", [T0], [1.0])
    other = client.get("/api/v1/customers/gina/clv", headers=headers(keys["admin"]))
    assert other.status_code == 404


def test_batch_compute_and_distribution(client: TestClient, keys: dict[str, str]) -> None:
    response = client.post(
        "/api/v1/clv/compute",
        json={"segment": "at_risk", "asOf": AS_OF},
        headers=headers(keys["editor"]),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["computed"] == 2
    assert body["counts"] == {"at_risk": 2, "high": 0, "medium": 0, "low": 0}
    assert body["failed"] == 0
    assert body["durationSeconds"] >= 0
    full = client.post("/api/v1/clv/compute", headers=headers(keys["admin"])).json()
    assert full["computed"] == 6
    dist = client.get(
        f"/api/v1/clv/distribution?asOf={AS_OF}", headers=headers(keys["viewer"])
    ).json()
    assert dist["counts"] == {"at_risk": 2, "high": 2, "medium": 2, "low": 0}
    assert sum(b["count"] for b in dist["histogram"]) == 6
    bad = client.post(
        "/api/v1/clv/compute", json={"segment": "vip"}, headers=headers(keys["editor"])
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["details"][0]["field"].startswith("body")
    early = client.post(
        "/api/v1/customers/ada/clv",
        json={"asOf": "2024-01-01T00:00:00Z"},
        headers=headers(keys["editor"]),
    )
    assert early.status_code == 400
    assert early.json()["error"]["code"] == "clv_invalid_input"


def test_settings_validation_via_api(client: TestClient, keys: dict[str, str]) -> None:
    admin = headers(keys["admin"])
    got = client.get("/api/v1/clv/settings", headers=admin).json()
    assert got["recencyWeight"] == 0.35 and got["cacheTtlSeconds"] == 300.0
    cases = [
        ({"recencyWeight": 0.5}, "body", "sum to 1"),
        ({"segmentLowPercentile": 90}, "body", "below segmentHighPercentile"),
        ({"churnSlope": 0}, "body.churnSlope", "greater than 0"),
        ({"lifespanMonths": "long"}, "body.lifespanMonths", "number"),
        ({"schedule": "3 am"}, "body.schedule", "cron"),
        ({"shoeSize": 42}, "body.shoeSize", "unknown setting"),
        ({"covariates": {}}, "body.covariates", "name at least one attribute"),
        ({"covariates": {"purchase": ["a", "a"]}}, "body.covariates.purchase", "more than once"),
        ({"covariates": {"dropout": [""]}}, "body.covariates.dropout", "not an attribute name"),
        ({"covariates": {"spend": ["a"], "missing": "drop"}}, "body.covariates.missing", "'error'"),
        ({"covariates": {"purchse": ["a"]}}, "body.covariates.purchse", "Extra inputs"),
    ]
    for payload, field, message in cases:
        response = client.put("/api/v1/clv/settings", json=payload, headers=admin)
        assert response.status_code == 400, payload
        error = response.json()["error"]
        assert error["code"] == "clv_invalid_settings"
        assert error["details"][0]["field"] == field
        assert message in error["details"][0]["message"]
    record = client.get(f"/api/v1/customers/ada/clv?asOf={AS_OF}", headers=admin).json()
    assert record["segment"] == "high"
    ok = client.put(
        "/api/v1/clv/settings", json={"atRiskDays": 3, "schedule": "15 3 * * *"}, headers=admin
    )
    assert ok.status_code == 200
    assert ok.json()["atRiskDays"] == 3 and ok.json()["recencyWeight"] == 0.35
    # Changing settings invalidated the cached record.
    after = client.get(f"/api/v1/customers/ada/clv?asOf={AS_OF}", headers=admin).json()
    assert (after["source"], after["segment"]) == ("computed", "at_risk")
    # globex is untouched.
    globex_key = client.app.state.store.create_api_key("globex", "viewer")[1]  # type: ignore[attr-defined]
    assert (
        client.get("/api/v1/clv/settings", headers=headers(globex_key, "globex")).json()[
            "atRiskDays"
        ]
        == 30
    )
    assert client.get("/api/v1/clv/settings", headers=admin).json()["covariates"] is None
    covariates = {"purchase": ["channel"], "dropout": [], "spend": ["value"], "missing": "exclude"}
    ok = client.put("/api/v1/clv/settings", json={"covariates": covariates}, headers=admin)
    assert ok.status_code == 200 and ok.json()["covariates"] == covariates


@pytest.mark.parametrize(("method", "url", "payload", "allowed"), ENDPOINTS)
def test_roles_and_tenant_rules(
    client: TestClient,
    keys: dict[str, str],
    method: str,
    url: str,
    payload: Any,
    allowed: set[str],
) -> None:
    def call(hdrs: dict[str, str]) -> Any:
        return client.request(method, url, json=payload, headers=hdrs)

    assert call({"X-Tenant-Id": "acme"}).status_code == 401
    assert call({"Authorization": "Bearer wrong", "X-Tenant-Id": "acme"}).status_code == 401
    assert call({"Authorization": f"Bearer {keys['admin']}"}).status_code == 400
    # An acme key asking for globex: 404, like an unknown resource.
    foreign = call(headers(keys["admin"], "globex"))
    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "not_found"
    for role, key in keys.items():
        response = call(headers(key))
        expected = 200 if role in allowed else 403
        assert response.status_code == expected, (role, response.text)
        if expected == 403:
            assert response.json()["error"]["code"] == "forbidden"


def test_lifespan_runs_the_scheduler(store: Store) -> None:
    app = create_app(Host(store=store), store)

    def schedulers() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name == "clv-scheduler"}

    before = schedulers()  # another app still serving in this process (a browser test's) has one
    with TestClient(app):
        ours = schedulers() - before
        assert len(ours) == 1
    (thread,) = ours
    thread.join(5)
    assert not thread.is_alive()


def test_the_spec_lists_each_routes_own_clv_errors_and_they_are_sent(
    client: TestClient, keys: dict[str, str], store: Store
) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    record = paths["/api/v1/customers/{customerId}/clv"]
    for method in ("get", "post"):
        assert "clv_model_not_fitted" in record[method]["responses"]["409"]["description"]
        assert "clv_unscorable_customer" in record[method]["responses"]["422"]["description"]
    compute = paths["/api/v1/clv/compute"]["post"]["responses"]
    assert "clv_fit_failed" in compute["422"]["description"]
    # With a model active the distribution counts the model's segments: it needs the fit.
    distribution = paths["/api/v1/clv/distribution"]["get"]["responses"]
    assert "clv_fit_failed" in distribution["422"]["description"]
    assert "clv_model_not_fitted" in distribution["409"]["description"]
    model = paths["/api/v1/clv/backtests"]["get"]["parameters"][0]
    assert model["name"] == "model" and model["schema"]["anyOf"][0]["enum"] == [
        "bgnbd",
        "paretonbd",
        "mbgnbd",
        "bgbb",
    ]
    # What the spec says is what is sent, with a probabilistic model that was never fitted.
    admin = headers(keys["admin"])
    got = client.put("/api/v1/clv/settings", json={"model": "bgnbd"}, headers=admin)
    assert got.status_code == 400 and got.json()["error"]["details"][0]["field"] == "body.model"
    # Settings stored before that check (or whose fits were removed): a fresh app reads them.
    store_settings_unchecked(store, "acme", model="bgnbd")
    client = TestClient(create_app(Host(store=store), store))
    got = client.get(f"/api/v1/customers/ada/clv?asOf={AS_OF}", headers=admin)
    assert got.status_code == 409 and got.json()["error"]["code"] == "clv_model_not_fitted"
    got = client.get(f"/api/v1/clv/distribution?asOf={AS_OF}", headers=admin)
    assert got.status_code == 409 and got.json()["error"]["code"] == "clv_model_not_fitted"
    got = client.get("/api/v1/clv/backtests?model=sbg", headers=admin)
    assert got.status_code == 400 and "model" in str(got.json()["error"]["details"])


def test_an_as_of_before_the_last_interaction_names_the_field(
    client: TestClient, keys: dict[str, str]
) -> None:
    early = "2001-01-01T00:00:00Z"  # before every interaction of the worked tenant
    got = client.get(f"/api/v1/customers/ada/clv?asOf={early}", headers=headers(keys["admin"]))
    error = got.json()["error"]
    assert got.status_code == 400 and "before customer 'ada'" in error["message"]
    assert [d["field"] for d in error["details"]] == ["query.asOf"]
    got = client.post(
        "/api/v1/customers/ada/clv", json={"asOf": early}, headers=headers(keys["admin"])
    )
    assert got.status_code == 400
    assert [d["field"] for d in got.json()["error"]["details"]] == ["body.asOf"]
