"""Probabilistic models in the product: records with the model's own predictions (batch and
single), churnProbability = 1 - P(alive in 90 days), customer.clv.* in a flow, sBG from
subscription outcomes, settings, and clear errors over Python, HTTP and the CLI."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from clvkit import DAY, T0, FakeClock, add_interactions, store_settings_unchecked
from fastapi.testclient import TestClient
from modelkit import add_buyers, add_subscriber
from nextbest_clv.core.estimators import SpendModel, transaction_model_from_params
from nextbest_clv.core.models import (
    ShiftedBetaGeometricModel,
    customer_lifetime_value,
    summarize_transactions,
)
from nextbest_clv.errors import ClvSettingsError, ModelNotFittedError
from nextbest_clv.service import RECORDS_NAMESPACE, ClvService, service_for
from nextbest_clv.service.batch_compute import compute_records
from nextbest_clv.service.fits import fit_tenant_model
from nextbest_clv.service.history import get_snapshot, load_customers
from nextbest_clv.service.model_records import MODEL_RECORDS_NAMESPACE
from nextbest_clv.service.settings import merge_settings
from nextbest_clv.service.tenant_data import load_transactions
from scipy import integrate, stats

from nextbest import Host
from nextbest.api import create_app
from nextbest.cli import build_cli
from nextbest.store import Store

EXTRA = (
    "probabilityAlive",
    "expectedPurchases90d",
    "expectedRevenue12m",
    "clv",
    "expectedNextPurchaseAt",
    "model",
)
MONTH_DAYS = 365.25 / 12


@pytest.fixture
def service(store: Store, clock: FakeClock) -> ClvService:
    add_buyers(store, "acme", T0)
    add_interactions(store, "acme", "browser", [T0 - 3 * DAY], outcome="impression")
    return ClvService(store, clock)


def use_model(service: ClvService, model: str, **settings: Any) -> dict[str, Any]:
    # Fit first: a model never fitted cannot be chosen.
    chosen = merge_settings(service.get_settings("acme"), {"model": model, **settings})
    fit = fit_tenant_model(service.store, "acme", model, chosen, end=T0)
    service.update_settings("acme", {"model": model, **settings})
    service.models.forget("acme")
    service.invalidate_tenant("acme")
    return fit


def expected_fields(store: Store, fit: dict[str, Any], months: int = 12, rate: float = 0.01):
    """The model's own predictions for every buyer, computed here from the raw data."""
    data = load_transactions(store, "acme", ("conversion",))
    s = summarize_transactions(
        data.customer_ids, data.days, data.values, observation_end="2024-07-01"
    )
    model = transaction_model_from_params(fit["model"], fit["params"])
    value = SpendModel.from_json(fit["spend"]).expected_value(s.frequency, s.monetary_value)
    x, tx, big_t = s.frequency, s.recency, s.T
    out = {
        "probabilityAlive": model.probability_alive(x, tx, big_t),
        "expectedPurchases90d": model.conditional_expected_purchases(90 / 7, x, tx, big_t),
        "expectedRevenue12m": model.conditional_expected_purchases(365.25 / 7, x, tx, big_t)
        * value,
        "clv": customer_lifetime_value(
            model, x, tx, big_t, value, months=months, discount_rate_monthly=rate
        ),
    }
    return s.customer_ids.tolist(), out, (model, x, tx, big_t)


def test_batch_records_carry_the_models_predictions(service: ClvService, store: Store) -> None:
    fit = use_model(service, "bgnbd")
    result, model_result = compute_records(service, "acme", as_of=T0)
    assert result.computed == 151
    assert model_result is not None and model_result.fit == "bgnbd/v1"
    assert (model_result.computed, model_result.without_data) == (150, 1)
    ids, expected, (model, x, _, big_t) = expected_fields(store, fit)
    for i, cid in enumerate(ids):
        record = service.get("acme", cid, as_of=T0)
        assert record["source"] == "cached" and record["model"] == "bgnbd"
        assert list(record)[:10] == [
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
        for name, values in expected.items():
            assert record[name] == pytest.approx(float(values[i]), rel=1e-9, abs=1e-12), name
        # The median of the Lomax wait of the purchase clock, (alpha + T)(2^(1/(r+x)) - 1).
        weeks = (model.alpha + big_t[i]) * (2 ** (1 / (model.r + x[i])) - 1)
        at = datetime.fromisoformat(record["expectedNextPurchaseAt"]).timestamp()
        assert at == pytest.approx(T0 + weeks * 7 * 86_400, abs=1e-3)
    # A customer without purchases: null model fields, the RFM churn probability.
    browser = service.get("acme", "browser", as_of=T0)
    assert {k: browser[k] for k in EXTRA} == {**dict.fromkeys(EXTRA[:-1]), "model": "bgnbd"}
    assert browser["churnProbability"] == pytest.approx(1 / (1 + math.exp(-0.08 * (3 - 30))))


def test_single_compute_equals_batch(service: ClvService, store: Store) -> None:
    use_model(service, "paretonbd")
    compute_records(service, "acme", as_of=T0)
    batch = {c: service.get("acme", c, as_of=T0) for c in ("c0", "c5", "c17", "browser")}
    store.delete_documents(MODEL_RECORDS_NAMESPACE, "acme")
    service.invalidate_tenant("acme")
    for cid, record in batch.items():
        single = service.recompute("acme", cid, as_of=T0)
        assert single["model"] == record["model"] == "paretonbd"
        for name in (*EXTRA[:-1], "churnProbability"):
            if record[name] is None:  # the browser has no purchases
                assert single[name] is None and cid == "browser"
            elif isinstance(record[name], str):
                assert single[name] == record[name]
            else:
                assert single[name] == pytest.approx(record[name], rel=1e-12), (cid, name)
    assert store.get_document(MODEL_RECORDS_NAMESPACE, "acme", "c5")["fit"] == "paretonbd/v1"


def test_churn_probability_is_one_minus_alive_in_90_days(service: ClvService, store: Store) -> None:
    """Checked by integrating over the posterior of the dropout process given alive now."""
    h = 90 / 7
    for name in ("bgnbd", "paretonbd", "mbgnbd"):
        fit = use_model(service, name)
        ids, _, (model, x, tx, big_t) = expected_fields(store, fit)
        for i in (0, 3, 11):
            alive_now = float(model.probability_alive(x[i], tx[i], big_t[i]))
            if name != "paretonbd":  # lambda ~ Gamma(r + x, alpha + T), p ~ Beta(a, b + x)
                k, c = model.r + x[i], h / (model.alpha + big_t[i])
                chances = x[i] + (name == "mbgnbd")  # MBG/NBD: one after the first purchase
                pdf = stats.beta(model.a, model.b + chances).pdf
                stay = integrate.quad(lambda p, f=pdf, c=c, k=k: f(p) * (1 + c * p) ** -k, 0, 1)[0]
            else:  # mu ~ Gamma(s, beta + T)
                pdf = stats.gamma(model.s, scale=1 / (model.beta + big_t[i])).pdf
                stay = integrate.quad(lambda mu, f=pdf: f(mu) * math.exp(-mu * h), 0, math.inf)[0]
            record = service.get("acme", ids[i], as_of=T0)
            assert record["churnProbability"] == pytest.approx(1 - alive_now * stay, rel=1e-7)
            assert record["churnProbability"] >= 1 - record["probabilityAlive"]


def test_clv_horizon_and_discount_settings(service: ClvService, store: Store) -> None:
    use_model(service, "bgnbd")
    default = service.get("acme", "c2", as_of=T0)["clv"]
    service.update_settings("acme", {"clvMonths": 24, "discountRateMonthly": 0.0})
    fit = service.models.fit("acme", "bgnbd")
    ids, expected, (model, x, tx, big_t) = expected_fields(store, fit, months=24, rate=0.0)
    i = ids.index("c2")
    record = service.get("acme", "c2", as_of=T0)
    assert record["clv"] == pytest.approx(float(expected["clv"][i]), rel=1e-9)
    assert record["clv"] > default
    # Undiscounted, the CLV is E[purchases in 24 months] times the expected value per purchase.
    per_purchase = expected["expectedRevenue12m"][i] / model.conditional_expected_purchases(
        365.25 / 7, x[i], tx[i], big_t[i]
    )
    months24 = model.conditional_expected_purchases(24 * MONTH_DAYS / 7, x[i], tx[i], big_t[i])
    assert record["clv"] == pytest.approx(float(months24 * per_purchase), rel=1e-9)
    with pytest.raises(ClvSettingsError, match="clvMonths"):
        service.update_settings("acme", {"clvMonths": 18})
    with pytest.raises(ClvSettingsError, match="model"):
        service.update_settings("acme", {"model": "nbd"})


def test_rfm_default_has_no_model_fields(service: ClvService) -> None:
    record = service.get("acme", "c1", as_of=T0)
    assert service.get_settings("acme").model == "rfm"
    assert not set(EXTRA) & set(record)


def test_never_fitted_is_a_clear_error(
    service: ClvService, store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    with pytest.raises(ClvSettingsError, match="nextbest clv fit --tenant acme --model bgnbd"):
        service.update_settings("acme", {"model": "bgnbd"})
    # Settings stored before that check (or whose fits were removed) still fail clearly.
    store_settings_unchecked(store, "acme", model="bgnbd")
    clock.advance(10)  # past the settings' cache
    with pytest.raises(ModelNotFittedError, match="nextbest clv fit --tenant acme --model bgnbd"):
        service.get("acme", "c1", as_of=T0)
    stored = store.get_documents(RECORDS_NAMESPACE, "acme")
    with pytest.raises(ModelNotFittedError):
        compute_records(service, "acme", as_of=T0)
    assert store.get_documents(RECORDS_NAMESPACE, "acme") == stored  # the batch wrote nothing
    out = CliRunner().invoke(
        build_cli(),
        ["clv", "compute", "--tenant", "acme", "--database", f"sqlite:///{tmp_path / 'clv.db'}"],
    )
    assert out.exit_code == 1 and "never been fitted" in out.output

    client = TestClient(create_app(Host(store=store), store))
    key = store.create_api_key("acme", "editor")[1]
    headers = {"Authorization": f"Bearer {key}", "X-Tenant-Id": "acme"}
    for method, url in (("GET", "/api/v1/customers/c1/clv"), ("POST", "/api/v1/clv/compute")):
        response = client.request(method, url, headers=headers)
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "clv_model_not_fitted"


def test_api_compute_and_record_with_a_model(service: ClvService, store: Store) -> None:
    use_model(service, "bgnbd")
    client = TestClient(create_app(Host(store=store), store))
    key = store.create_api_key("acme", "editor")[1]
    headers = {"Authorization": f"Bearer {key}", "X-Tenant-Id": "acme"}
    body = client.post(
        "/api/v1/clv/compute", json={"asOf": "2024-07-01T00:00:00Z"}, headers=headers
    ).json()
    assert body["computed"] == 151 and body["model"]["fit"] == "bgnbd/v1"
    record = client.get("/api/v1/customers/c3/clv", headers=headers).json()
    assert record["model"] == "bgnbd" and 0 <= record["probabilityAlive"] <= 1
    assert record["clv"] > 0 and record["expectedRevenue12m"] > 0


def flow(fields: dict[str, str]) -> dict[str, Any]:
    return {
        "key": "models",
        "version": 2,
        "nodes": [
            {"type": "inventory", "id": "inv", "config": {}},
            {
                "type": "compute",
                "id": "c",
                "config": {"fields": [{"name": k, "formula": f} for k, f in fields.items()]},
            },
            {"type": "score", "id": "s", "config": {"method": "formula"}},
            {"type": "rank", "id": "r", "config": {"maxCandidates": 5}},
            {"type": "response", "id": "out", "config": {"fields": list(fields)}},
        ],
    }


def decide(host: Host, fields: dict[str, str], customer: str) -> dict[str, Any]:
    offers = host.load_offers([{"id": "o", "name": "O", "businessValue": 10, "propensity": 0.5}])
    request = {"customerId": customer, "asOf": "2024-07-01T00:00:00Z", "explain": True}
    decision = host.decide("acme", request, flow=host.load_flow(flow(fields)), offers=offers)
    return decision.to_dict()


def test_context_names_in_a_flow(service: ClvService, store: Store) -> None:
    host = Host(store=store)
    shared = service_for(host)
    model_only = {"model": "customer.clv.model"}
    assert decide(host, model_only, "c2")["decisions"][0]["personalization"] == {"model": "rfm"}
    use_model(shared, "bgnbd")
    fields = {
        "alive": "customer.clv.probability_alive",
        "next90": "customer.clv.expected_purchases_90d",
        "revenue": "customer.clv.expected_revenue_12m",
        "value": "customer.clv.value",
        "model": "customer.clv.model",
        "churn": "customer.clv.churn_probability",
    }
    decision = decide(host, fields, "c2")
    got = decision["decisions"][0]["personalization"]
    record = shared.get("acme", "c2", as_of=T0)
    assert got == {
        "alive": record["probabilityAlive"],
        "next90": record["expectedPurchases90d"],
        "revenue": record["expectedRevenue12m"],
        "value": record["clv"],
        "model": "bgnbd",
        "churn": record["churnProbability"],
    }
    assert decision["trace"]["context"]["customer.clv.model"] == "bgnbd"


def test_sbg_records_from_subscription_outcomes(store: Store, clock: FakeClock) -> None:
    store.create_outcome_type("acme", "subscribe", "positive")
    store.create_outcome_type("acme", "cancel", "negative")
    month = MONTH_DAYS * DAY
    start = T0 - 12.5 * month
    for i in range(20):  # churn in months 1, 2 and 5; eight still subscribed
        when = 0.5 if i < 6 else 1.5 if i < 10 else 4.5 if i < 12 else None
        add_subscriber(
            store, "acme", f"s{i}", start, None if when is None else start + when * month
        )
    add_interactions(store, "acme", "buyer", [T0 - DAY], [5.0])  # no subscription
    service = ClvService(store, clock)
    fit = use_model(service, "sbg")
    _, model_result = compute_records(service, "acme", as_of=T0)
    assert model_result is not None and model_result.computed == 20
    model = ShiftedBetaGeometricModel.from_params(**fit["params"])
    surv = model.survival(np.arange(30))
    # s19 is active with 12 completed months; renewals at 12.5 months + k months' time ...
    active = service.get("acme", "s19", as_of=T0)
    assert active["model"] == "sbg" and active["probabilityAlive"] == 1.0
    assert active["expectedPurchases90d"] == pytest.approx(surv[13:16].sum() / surv[12])
    assert active["churnProbability"] == pytest.approx(1 - surv[15] / surv[12])
    assert active["expectedRevenue12m"] == pytest.approx(10.0 * surv[13:25].sum() / surv[12])
    discount = 1.01 ** -np.arange(1, 13)  # renewal j falls in month j - 12
    assert active["clv"] == pytest.approx(10.0 * (surv[13:25] * discount).sum() / surv[12])
    ended = service.get("acme", "s0", as_of=T0)
    assert (ended["probabilityAlive"], ended["churnProbability"], ended["clv"]) == (0.0, 1.0, 0.0)
    buyer = service.get("acme", "buyer", as_of=T0)
    assert buyer["model"] == "sbg" and buyer["probabilityAlive"] is None


def test_history_snapshot_with_a_model(service: ClvService, store: Store) -> None:
    """With a probabilistic model the snapshot's value is the discounted ``clv`` and its
    prediction ``expectedRevenue12m`` over 365.25 days; the customer without transactions is
    counted but carries neither."""
    fit = use_model(service, "bgnbd")
    result, model_result = compute_records(service, "acme", as_of=T0)
    assert model_result is not None and result.snapshot is not None
    snap = get_snapshot(store, "acme", result.snapshot)
    assert (snap["model"], snap["fit"]) == ("bgnbd", model_result.fit)
    assert fit["version"] == 1 and snap["fit"] == "bgnbd/v1"
    assert snap["value"]["field"] == "clv" and snap["prediction"]["field"] == "expectedRevenue12m"
    assert snap["prediction"]["horizonDays"] == 365.25
    ids, expected, _ = expected_fields(store, fit)
    assert snap["customers"] == len(ids) + 1  # the buyers and "browser"
    assert snap["totalValue"] == pytest.approx(float(np.sum(expected["clv"])), rel=1e-9)
    assert snap["prediction"]["total"] == pytest.approx(
        float(np.sum(expected["expectedRevenue12m"])), rel=1e-9
    )
    customers = load_customers(store, "acme", snap)
    by_id = dict(zip(customers.ids.tolist(), customers.predicted.tolist(), strict=True))
    assert np.isnan(by_id["browser"])
    assert [by_id[c] for c in ids] == pytest.approx(expected["expectedRevenue12m"].tolist())


def test_the_alive_path_over_the_api(service: ClvService, store: Store) -> None:
    key = store.create_api_key("acme", "viewer")[1]
    headers = {"Authorization": f"Bearer {key}", "X-Tenant-Id": "acme"}
    url = "/api/v1/customers/c5/clv/alive-path?asOf=2024-07-01T00:00:00Z"

    def get(path: str = url) -> Any:  # a fresh app: it reads the settings changed here
        return TestClient(create_app(Host(store=store), store)).get(path, headers=headers)

    response = get()  # the rfm model has no alive path
    assert response.status_code == 422 and "transaction model" in response.text
    store_settings_unchecked(store, "acme", model="paretonbd")  # never fitted
    assert get().status_code == 409
    fit = use_model(service, "paretonbd")
    body = get().json()
    assert body["customerId"] == "c5" and body["fit"] == "paretonbd/v1"
    points = body["points"]
    assert points[-1]["at"][:10] == "2024-07-01"
    assert points[0]["at"] == body["firstPurchaseAt"]
    # The last point is the record's P(alive) (the same history as of the same day).
    ids, expected, _ = expected_fields(store, fit)
    record_alive = float(expected["probabilityAlive"][ids.index("c5")])
    assert points[-1]["probabilityAlive"] == pytest.approx(record_alive, rel=1e-9)
    assert points[-1]["purchases"] == len(body["purchases"])
    missing = get("/api/v1/customers/nobody/clv/alive-path")
    assert missing.status_code == 422
    assert missing.json()["error"]["code"] == "clv_no_transactions"
    bad = get("/api/v1/customers/c5/clv/alive-path?asOf=yesterday")
    assert bad.status_code == 400 and "asOf" in bad.text
