"""Control groups through the API (the group in the response, the stored recommendation and
explain; modes none and random; flow over tenant setting) and ``GET /api/v1/reports/lift``
(figures, viewer access, tenant isolation, bad parameters)."""

from __future__ import annotations

from typing import Any

import pytest
from apikit import ADA, FLOW, Api, error_of, fields_of

from nextbest.experiments import ControlGroupSettings, assign
from nextbest.service import DecisionService
from nextbest.store import InvalidInputError

AS_OF = "2026-11-02T10:00:00Z"  # for decisions through the service (recommend runs as of now)
CUSTOMERS = [f"cust-{i}" for i in range(60)]


def _publish(api: Api, tenant: str, settings: dict[str, Any] | None, key: str = "cross-sell"):
    flow = {**FLOW, "key": key}
    if settings is not None:
        flow["settings"] = {**FLOW.get("settings", {}), "controlGroup": settings}
    version = api.store.save_flow(tenant, key, flow)
    api.store.publish_flow(tenant, key, version)


def _recommend(api: Api, customer: str, **extra: Any) -> dict[str, Any]:
    return api.recommend(customerId=customer, **extra)


def test_without_a_control_group_there_is_no_group(api: Api) -> None:
    body = _recommend(api, "ada")
    assert "group" not in body and body["decisions"]
    assert api.store.get_recommendation("acme", body["recommendationId"]).group is None


def test_tenant_control_group_mode_none(api: Api) -> None:
    api.store.update_tenant_settings("acme", {"controlGroup": {"share": 0.3, "salt": "q4"}})
    settings = ControlGroupSettings(share=0.3, salt="q4")
    groups = set()
    for customer in CUSTOMERS:
        body = _recommend(api, customer)
        expected = assign(settings, "acme", customer).group
        assert body["group"] == expected
        groups.add(expected)
        stored = api.store.get_recommendation("acme", body["recommendationId"])
        assert stored is not None and stored.group == expected
        if expected == "control":
            assert body["decisions"] == [] and stored.items == []
        else:
            assert body["decisions"]
    assert groups == {"control", "treatment"}


def test_explain_says_why(api: Api) -> None:
    api.store.update_tenant_settings("acme", {"controlGroup": {"share": 0.5}})
    for customer in CUSTOMERS[:10]:
        body = _recommend(api, customer, explain=True)
        reason = body["trace"]["controlGroup"]
        assert reason["group"] == body["group"] and reason["source"] == "tenant"
        assert reason["reason"].startswith("draw ")
        assert ("receives no offer" in reason["reason"]) == (body["group"] == "control")


def test_flow_setting_overrides_the_tenant_and_mode_random(api: Api) -> None:
    api.store.update_tenant_settings("acme", {"controlGroup": {"share": 0.0}})
    _publish(api, "acme", {"share": 0.5, "salt": "r", "mode": "random"})
    settings = ControlGroupSettings(share=0.5, salt="r", mode="random")
    service = DecisionService(api.host, api.store)
    picked = set()
    for customer in CUSTOMERS:
        body = _recommend(api, customer, explain=True)
        assert body["trace"]["controlGroup"]["source"] == "flow"
        if assign(settings, "acme", customer).group == "control":
            assert body["group"] == "control"
            assert len(body["decisions"]) == 1 and body["decisions"][0]["rank"] == 1
            picked.add(body["decisions"][0]["offerId"])
            # reproducible: the same decision (asOf) picks the same offer
            first, again = (
                service.decide("acme", {**ADA, "customerId": customer, "asOf": AS_OF})
                for _ in range(2)
            )
            assert first.decision.group == "control"
            assert [i.offer_id for i in first.decision.items] == [
                i.offer_id for i in again.decision.items
            ]
            dropped = {d["reason"] for d in body["trace"]["dropped"] if d["nodeId"] == "rank"}
            assert dropped <= {"control group (mode random): another offer was picked"}
        else:
            assert body["group"] == "treatment"
    # random over the eligible offers: not always the best one
    assert len(picked) > 1
    assert picked <= {o["id"] for o in api.store.list_offers("acme", limit=1000).items}


def test_bad_control_group_settings_are_refused(api: Api) -> None:
    flow = {**FLOW, "settings": {"controlGroup": {"share": 0.8}}}
    error = error_of(api.post("/api/v1/flows", flow), 400)
    assert any("controlGroup" in (f or "") for f in fields_of(error)), error
    with pytest.raises(InvalidInputError, match=r"controlGroup\.share"):
        api.store.update_tenant_settings("acme", {"controlGroup": {"share": "half"}})


def _respond(api: Api, customer: str, key: str, outcome: str, value: float = 0.0) -> None:
    body = {
        "customerId": customer,
        "offerId": "premium-card",
        "outcome": outcome,
        "idempotencyKey": key,
        "conversionValue": value,
    }
    response = api.post("/api/v1/respond", body, role="editor")
    assert response.status_code in (200, 201), response.text


def test_lift_report(api: Api) -> None:
    api.store.update_tenant_settings("acme", {"controlGroup": {"share": 0.3, "salt": "q4"}})
    groups = {}
    for i, customer in enumerate(CUSTOMERS):
        groups[customer] = _recommend(api, customer)["group"]
        if i % 2 == 0:
            _respond(api, customer, f"k{i}", "conversion", 10.0)
    response = api.get(
        "/api/v1/reports/lift",
        role="viewer",
        params={"flow": "cross-sell", "since": "2026-01-01T00:00:00Z"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    n_control = sum(g == "control" for g in groups.values())
    assert report["customers"] == {
        "treatment": len(CUSTOMERS) - n_control,
        "control": n_control,
        "excludedMixed": 0,
    }
    rate = report["flow"]["successRate"]
    k_control = sum(groups[c] == "control" for c in CUSTOMERS[::2])
    assert rate["control"] == {
        "customers": n_control,
        "successes": k_control,
        "rate": k_control / n_control,
    }
    absolute = rate["absoluteLift"]
    assert absolute["low"] <= absolute["estimate"] <= absolute["high"]
    value = report["flow"]["valuePerCustomer"]
    assert value["control"]["total"] == 10.0 * k_control
    offers = {o["offerId"]: o for o in report["offers"]}
    card = offers["premium-card"]
    assert card["successRate"]["control"]["successes"] == k_control
    assert card["valuePerCustomer"]["treatment"]["customers"] == len(CUSTOMERS) - n_control
    # control customers are shown nothing (mode none); treatment customers the flow's offers
    assert all(o["shown"]["control"] == 0 for o in offers.values())
    assert sum(o["shown"]["treatment"] for o in offers.values()) > 0
    for offer_id, offer in offers.items():
        if offer_id != "premium-card":
            assert offer["successRate"]["treatment"]["successes"] == 0
    assert report["methods"]["absoluteLift"].startswith("treatment - control")
    # the window: nothing before the recommendations
    early = api.get(
        "/api/v1/reports/lift",
        params={
            "flow": "cross-sell",
            "since": "2026-01-01T00:00:00Z",
            "until": "2026-02-01T00:00:00Z",
        },
    ).json()
    assert (
        early["customers"]["treatment"] == 0
        and early["flow"]["successRate"]["absoluteLift"] is None
    )


def test_lift_is_tenant_scoped(api: Api) -> None:
    api.store.update_tenant_settings("acme", {"controlGroup": {"share": 0.3}})
    for customer in CUSTOMERS[:20]:
        _recommend(api, customer)
    _publish(api, "globex", None, key="globex-flow")
    # another tenant's flow is a 404
    error = error_of(api.get("/api/v1/reports/lift", params={"flow": "globex-flow"}), 404)
    assert error["code"] == "flow_not_found"
    # the same flow key in another tenant sees none of acme's customers
    params = {"flow": "cross-sell"}
    other = api.get("/api/v1/reports/lift", tenant="globex", params=params).json()
    assert other["customers"] == {"treatment": 0, "control": 0, "excludedMixed": 0}
    mine = api.get("/api/v1/reports/lift", params=params).json()
    assert mine["customers"]["treatment"] + mine["customers"]["control"] == 20


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "query.flow"),
        ({"flow": ""}, "query.flow"),
        ({"flow": "cross-sell", "since": "yesterday"}, "query.since"),
        ({"flow": "cross-sell", "until": "2026-13-01T00:00:00Z"}, "query.until"),
        (
            {
                "flow": "cross-sell",
                "since": "2026-11-02T00:00:00Z",
                "until": "2026-11-01T00:00:00Z",
            },
            "query.since",
        ),
        ({"flow": "cross-sell", "since": "1850-01-01T00:00:00Z"}, "query.since"),
    ],
)
def test_bad_parameters_name_the_field(api: Api, params: dict[str, str], field: str) -> None:
    error = error_of(api.get("/api/v1/reports/lift", params=params), 400)
    assert field in fields_of(error), error


def test_lift_needs_a_key(api: Api) -> None:
    response = api.client.get("/api/v1/reports/lift", params={"flow": "cross-sell"})
    error_of(response, 401)


def test_an_invalid_stored_tenant_setting_is_ignored_with_a_warning(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    # written before the store checked the setting (straight into the row)
    with api.store._transaction() as cur:  # type: ignore[attr-defined]
        cur.execute(
            "UPDATE tenants SET settings = ? WHERE tenant_id = ?",
            ('{"controlGroup": {"share": 2}}', "acme"),
        )
    with caplog.at_level("WARNING", logger="nextbest.service"):
        body = _recommend(api, "ada")
    assert "group" not in body and body["decisions"]
    assert "controlGroup.share" in caplog.text and "'acme'" in caplog.text


def test_refunds_netting_a_mean_to_almost_zero_are_a_report_not_a_500(api: Api) -> None:
    api.store.update_tenant_settings("acme", {"controlGroup": {"share": 0.5, "salt": "r"}})
    groups: dict[str, list[str]] = {"treatment": [], "control": []}
    for customer in CUSTOMERS:
        groups[_recommend(api, customer)["group"]].append(customer)
    treated, control = groups["treatment"], groups["control"]
    assert len(treated) >= 2 and len(control) >= 2
    _respond(api, treated[0], "t0", "conversion", 100.0)
    _respond(api, treated[1], "t1", "refund", -99.99)
    _respond(api, control[0], "c0", "conversion", 10.0)
    _respond(api, control[1], "c1", "conversion", 20.0)
    response = api.get(
        "/api/v1/reports/lift", params={"flow": "cross-sell", "since": "2026-01-01T00:00:00Z"}
    )
    assert response.status_code == 200, response.text
    value = response.json()["flow"]["valuePerCustomer"]
    # Two successes per group support neither interval: omitted, not invented.
    assert value["absoluteLift"] is None and value["relativeLift"] is None
