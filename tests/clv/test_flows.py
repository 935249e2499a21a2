"""CLV in decision flows through the Host: context names, propensity_threshold, functions and
the clvWeight value provider, with the plugin loaded from its entry point."""

from __future__ import annotations

from typing import Any

import pytest
from clvkit import T0, worked_tenant
from nextbest_clv.decisions.functions import clv_discount, clv_tier, value_at_risk
from nextbest_clv.service import RECORDS_NAMESPACE, attach

from nextbest import FlowValidationError, Host
from nextbest.store import Store

AS_OF = "2024-07-01T00:00:00Z"
OFFERS = [
    {"id": "retention", "name": "Stay with us", "businessValue": 100, "propensity": 0.5},
    {"id": "upsell", "name": "Go premium", "businessValue": 100, "propensity": 0.5},
]


def clv_flow(clv_weight: float | None = 1.0) -> dict[str, Any]:
    score: dict[str, Any] = {"method": "formula"}
    if clv_weight is not None:
        score["clvWeight"] = clv_weight
    return {
        "key": "clv",
        "version": 2,
        "nodes": [
            {"type": "inventory", "id": "inv", "config": {}},
            {
                "type": "qualify",
                "id": "q",
                "config": {
                    "rules": [
                        {
                            "id": "churners-only",
                            "ruleType": "propensity_threshold",
                            "stage": "eligibility",
                            "scope": "offer",
                            "scopeId": "retention",
                            "config": {"model": "churn_probability", "minScore": 0.5},
                        },
                        {
                            "id": "valuable",
                            "ruleType": "propensity_threshold",
                            "scope": "offer",
                            "scopeId": "upsell",
                            "config": {"minScore": 60, "multiplierBelow": 0.2},
                        },
                    ]
                },
            },
            {
                "type": "compute",
                "id": "c",
                "config": {
                    "fields": [
                        {"name": "tier", "formula": "clv_tier(customer.clv_score)"},
                        {
                            "name": "atRisk",
                            "formula": "value_at_risk(customer.clv.predicted_revenue, "
                            "customer.clv.churn_probability)",
                        },
                        {"name": "discount", "formula": "clv_discount(customer.clv_score, 5, 20)"},
                        {"name": "segment", "formula": "customer.clv.segment"},
                        {
                            "name": "rfm",
                            "formula": "concat(customer.clv.recency_days, '/', "
                            "customer.clv.frequency, '/', customer.clv.monetary)",
                        },
                    ]
                },
            },
            {"type": "score", "id": "s", "config": score},
            {"type": "rank", "id": "r", "config": {"maxCandidates": 5}},
            {
                "type": "response",
                "id": "out",
                "config": {"fields": ["tier", "atRisk", "discount", "segment", "rfm"]},
            },
        ],
    }


@pytest.fixture
def host(store: Store) -> Host:
    worked_tenant(store)
    return Host(store=store)


def decide(host: Host, flow: dict[str, Any], customer: str) -> dict[str, Any]:
    compiled = host.load_flow(flow)
    offers = host.load_offers(OFFERS)
    request = {"customerId": customer, "asOf": AS_OF, "explain": True}
    return host.decide("acme", request, flow=compiled, offers=offers).to_dict()


def items(decision: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["offerId"]: d for d in decision["decisions"]}


def test_flow_references_are_known(host: Host) -> None:
    compiled = host.load_flow(clv_flow())
    assert {
        "customer.clv_score",
        "customer.clv.churn_probability",
        "customer.clv.predicted_revenue",
        "customer.clv.segment",
        "customer.clv.recency_days",
        "customer.clv.frequency",
        "customer.clv.monetary",
    } <= compiled.customer_names


def test_high_value_customer(host: Host) -> None:
    decision = decide(host, clv_flow(), "ada")
    got = items(decision)
    assert set(got) == {"upsell"}  # hard rule: churn 0.119 < 0.5 drops the retention offer
    drop = next(d for d in decision["trace"]["dropped"] if d["offerId"] == "retention")
    assert drop["ruleId"] == "churners-only"
    assert drop["plugin"] == "clv"
    assert drop["inputs"]["model"] == "churn_probability"
    assert drop["inputs"]["minScore"] == 0.5
    assert drop["inputs"]["actualScore"] == pytest.approx(0.1192, abs=1e-4)
    assert "upsell" not in decision["trace"]["fitAdjustments"]  # 80 >= 60 passes
    fields = got["upsell"]["personalization"]
    assert fields["tier"] == "platinum"
    assert fields["atRisk"] == 171.65  # 1440 * 0.1192029... = 171.652...
    assert fields["discount"] == 17  # 5 + 15 * 0.80
    assert fields["segment"] == "high"
    assert fields["rfm"] == "5/48/360.0"
    score = decision["trace"]["scores"]["upsell"]
    assert score["terms"] == [
        {"provider": "clv", "plugin": "clv", "dimension": "impact", "exponent": 0.8}
    ]
    assert score["weights"]["impact"] == pytest.approx(0.3 + 0.8)
    assert decision["trace"]["context"]["customer.clv_score"] == 80


def test_soft_rule_and_weight_change_the_score(host: Host) -> None:
    # bob: score 48 < 60, so the soft rule multiplies the upsell's fit by 0.2.
    decision = decide(host, clv_flow(), "bob")
    adjustment = decision["trace"]["fitAdjustments"]["upsell"][0]
    assert adjustment["multiplier"] == 0.2
    assert adjustment["inputs"] == {
        "model": "clv_score",
        "minScore": 60.0,
        "maxScore": None,
        "actualScore": 48,
    }
    assert items(decision)["upsell"]["personalization"]["tier"] == "silver"
    # at-risk cy (churn 0.69) keeps the retention offer.
    assert "retention" in items(decide(host, clv_flow(), "cy"))
    # clvWeight: impact factor 1.0 here, so compare the exponent and the score with weight 2.
    with_two = decide(host, clv_flow(2.0), "bob")["trace"]["scores"]["upsell"]
    assert with_two["terms"][0]["exponent"] == pytest.approx(0.96)


def test_customer_without_record_resolves_to_null(host: Host) -> None:
    decision = decide(host, clv_flow(), "stranger")
    context = decision["trace"]["context"]
    assert context["customer.clv_score"] is None
    assert context["customer.clv.segment"] is None
    # Missing CLV is outside the range: the hard rule drops, the soft rule multiplies.
    assert "retention" not in items(decision)
    upsell = items(decision)["upsell"]
    assert decision["trace"]["fitAdjustments"]["upsell"][0]["inputs"]["actualScore"] is None
    assert decision["trace"]["scores"]["upsell"]["terms"] == []  # no CLV: term skipped
    assert upsell["personalization"]["tier"] is None
    assert upsell["personalization"]["discount"] is None


def test_flow_without_clv_names_computes_nothing(host: Host, store: Store) -> None:
    flow = {
        "key": "plain",
        "version": 2,
        "nodes": [
            {"type": "inventory", "id": "inv", "config": {}},
            {"type": "score", "id": "s", "config": {"method": "formula"}},
            {"type": "rank", "id": "r", "config": {}},
        ],
    }
    decision = decide(host, flow, "ada")
    assert len(decision["decisions"]) == 2
    service = attach(host)
    assert service is not None and service.computes == 0
    assert store.get_documents(RECORDS_NAMESPACE, "acme") == {}
    # The same host computes (once) as soon as a flow references CLV.
    decide(host, clv_flow(), "ada")
    assert service.computes == 1


def test_config_validation_errors(host: Host) -> None:
    flow = clv_flow()
    rules = flow["nodes"][1]["config"]["rules"]
    rules[0]["config"] = {"model": "churn_probability", "minScore": 2}
    rules[1]["config"] = {"minScore": 60, "maxScore": 40, "multiplierBelow": 1.5}
    flow["nodes"][3]["config"]["clvWeight"] = 3
    with pytest.raises(FlowValidationError) as info:
        host.load_flow(flow)
    text = str(info.value)
    assert "outside churn_probability's range" in text
    assert "multiplierBelow" in text or "multiplier_below" in text
    assert "clvWeight" in text or "clv_weight" in text


def test_functions() -> None:
    assert [clv_tier(s) for s in (100, 80, 79.9, 60, 40, 39, 0)] == [
        "platinum",
        "platinum",
        "gold",
        "gold",
        "silver",
        "bronze",
        "bronze",
    ]
    assert clv_tier(None) is None
    assert value_at_risk(1440.0, 0.5) == 720.0
    assert value_at_risk(100.0, 0.12345) == 12.35  # half up at cents
    assert value_at_risk(None, 0.5) is None
    assert value_at_risk(10.0, None) is None
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        value_at_risk(10.0, 1.5)
    assert clv_discount(0, 5, 20) == 5
    assert clv_discount(100, 5, 20) == 20
    assert clv_discount(50, 5, 20) == 13  # 12.5 rounds half up
    assert clv_discount(150, 5, 20) == 20
    assert clv_discount(None, 5, 20) is None
    with pytest.raises(TypeError):
        clv_tier("high")


def test_score_without_record_outside_store_host(store: Store) -> None:
    host = Host()  # no store: every CLV name is None, decisions still run
    assert attach(host) is None
    decision = decide(host, clv_flow(), "ada")
    assert decision["trace"]["context"]["customer.clv_score"] is None
    assert T0 > 0


def test_the_segment_is_the_suggested_report_breakdown(host: Host) -> None:
    """report_dimensions: reports (simulations) break down by the CLV segment by default."""
    assert host.report_dimensions("acme")[0] == "customer.clv.segment"
