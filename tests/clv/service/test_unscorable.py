"""One customer never fails the tenant: a customer whose stored data cannot give a record (a
value written before the store refused values over 1e12, or by another writer) is skipped and
reported by the batches (RFM and a fitted model), refused with a clear error by the
single-customer paths (service, API, CLI, decisions), and nothing non-finite is ever stored or
served."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from clvkit import T0, FakeClock
from fastapi.testclient import TestClient
from modelkit import add_buyers, add_subscriber
from nextbest_clv.backtest.runs import run_backtest
from nextbest_clv.core.estimators import SpendModel
from nextbest_clv.core.models import BetaGeoModel, summarize_transactions
from nextbest_clv.core.probabilistic import transaction_fields
from nextbest_clv.core.rfm import score_batch
from nextbest_clv.errors import UnscorableCustomerError
from nextbest_clv.service import RECORDS_NAMESPACE, ClvService, attach
from nextbest_clv.service.batch_compute import compute_records
from nextbest_clv.service.fits import FITS_NAMESPACE, fit_tenant_model
from nextbest_clv.service.model_records import MODEL_RECORDS_NAMESPACE
from nextbest_clv.service.settings import ClvSettings
from nextbest_clv.service.tenant_data import epoch_day, load_transactions

from nextbest import Host
from nextbest.api import create_app
from nextbest.cli import build_cli
from nextbest.store import Store

BAD = "c4"  # a repeat buyer of add_buyers(seed=7)
ABSURD = 1e307  # accepted before the store refused values over 1e12


def db_path(tmp_path: Path) -> Path:
    return tmp_path / "clv.db"  # the conftest store's file


def write_sql(tmp_path: Path, sql: str, *params: Any) -> None:
    """Write through the store's SQL, as an older version or another writer could."""
    with sqlite3.connect(db_path(tmp_path)) as connection:
        connection.execute(sql, params)


def poison(tmp_path: Path, customer: str = BAD, value: float = ABSURD) -> None:
    """Give ``customer`` an absurd value on each of its interactions and in its summary."""
    write_sql(tmp_path, "UPDATE interactions SET value = ? WHERE customer_id = ?", value, customer)
    write_sql(
        tmp_path,
        "UPDATE customer_summaries SET total_value = ? WHERE customer_id = ?",
        value,
        customer,
    )


@pytest.fixture
def tenant(store: Store, tmp_path: Path) -> Store:
    """60 buyers of tenant acme, one of them (c4) with absurd values."""
    add_buyers(store, "acme", T0, n=60)
    poison(tmp_path)
    return store


def finite_document(document: Any) -> bool:
    return all(not isinstance(v, float) or math.isfinite(v) for v in document.values())


def test_rfm_batch_stores_the_others_and_reports_the_bad_one(tenant: Store) -> None:
    service = ClvService(tenant, FakeClock(T0))
    result, model_result = compute_records(service, "acme", as_of=T0)
    assert model_result is None
    assert result.failed == 1 and result.computed == 59
    [failure] = result.failures
    assert failure["customerId"] == BAD
    assert "monetary total 1e+307 is too large to score" in failure["reason"]
    stored = tenant.get_documents(RECORDS_NAMESPACE, "acme")
    assert len(stored) == 59 and BAD not in stored
    assert all(finite_document(d) for d in stored.values())
    # The bad customer is out of the percentiles too: the others score as if it did not exist.
    cols = tenant.customer_summary_columns("acme")
    keep = cols.customer_ids != BAD
    alone, _ = score_batch(
        cols.last_at[keep],
        cols.first_at[keep],
        cols.interactions[keep],
        cols.total_value[keep],
        T0,
        ClvSettings(),
    )
    ids = cols.customer_ids[keep].tolist()
    assert [stored[c]["clvScore"] for c in ids] == alone.clv_score.tolist()
    assert [stored[c]["segment"] for c in ids] == alone.segments().tolist()


def test_single_reads_refuse_the_bad_customer_and_agree_with_the_batch(tenant: Store) -> None:
    service = ClvService(tenant, FakeClock(T0))
    with pytest.raises(UnscorableCustomerError, match=r"c4.*cannot be scored.*1e\+307") as info:
        service.get("acme", BAD, as_of=T0)
    assert info.value.code == "clv_unscorable_customer"
    with pytest.raises(UnscorableCustomerError):
        service.recompute("acme", BAD)
    assert tenant.get_document(RECORDS_NAMESPACE, "acme", BAD) is None  # nothing stored
    # The snapshot leaves the bad customer out like the batch: a single read equals it.
    single = {c: service.get("acme", c, as_of=T0) for c in ("c1", "c5", "c30")}
    compute_records(ClvService(tenant, FakeClock(T0)), "acme", as_of=T0)
    stored = tenant.get_documents(RECORDS_NAMESPACE, "acme")
    for customer, record in single.items():
        assert record["clvScore"] == stored[customer]["clvScore"]
        assert record["segment"] == stored[customer]["segment"]
    report = service.distribution("acme", as_of=T0)
    assert (report["customers"], report["excluded"]) == (59, 1)


def test_a_customer_with_overflowing_revenue_but_a_finite_total_is_reported(
    store: Store, tmp_path: Path
) -> None:
    # 1e306 is a finite total, but the predicted revenue (x lifespan x 100) overflows.
    add_buyers(store, "acme", T0, n=20)
    poison(tmp_path, "c2", 1e306)
    result = ClvService(store, FakeClock(T0)).compute_batch("acme", as_of=T0)
    assert (result.computed, result.failed) == (19, 1)
    assert result.failures[0]["customerId"] == "c2"


def test_unusable_summary_rows_are_reported_with_their_reason(store: Store, tmp_path: Path) -> None:
    add_buyers(store, "acme", T0, n=20)
    write_sql(tmp_path, "UPDATE customer_summaries SET last_at = 1e11 WHERE customer_id = 'c1'")
    write_sql(tmp_path, "UPDATE customer_summaries SET first_at = -1e10 WHERE customer_id = 'c2'")
    write_sql(
        tmp_path, "UPDATE customer_summaries SET total_value = 9e999 WHERE customer_id = 'c3'"
    )
    write_sql(tmp_path, "UPDATE customer_summaries SET last_at = 1e15 WHERE customer_id = 'c4'")
    # refunds beyond purchases: a net total below 0 is scored as no spend, not a failure
    write_sql(tmp_path, "UPDATE customer_summaries SET total_value = -5 WHERE customer_id = 'c5'")
    service = ClvService(store, FakeClock(T0))
    result = service.compute_batch("acme", as_of=T0)
    reasons = {f["customerId"]: f["reason"] for f in result.failures}
    assert result.computed == 16 and "c5" not in reasons
    assert service.get("acme", "c5", as_of=T0)["rfmMonetary"] == 0.0
    window = "must be between 1900-01-01T00:00:00Z and 2200-01-01T00:00:00Z (UTC)"
    assert reasons["c1"] == f"last interaction time 5138-11-16T09:46:40Z {window}"
    assert reasons["c2"] == f"first interaction time 1653-02-10T06:13:20Z {window}"
    assert reasons["c3"] == "monetary total inf is not a finite number"
    # beyond the calendar: the reason shows the number and never fails itself
    assert reasons["c4"] == f"last interaction time 1000000000000000.0 (epoch seconds) {window}"
    for customer in ("c1", "c2", "c3"):  # (the store cannot read c4's summary back at all)
        reason = reasons[customer]
        with pytest.raises(UnscorableCustomerError) as info:
            service.get("acme", customer)
        assert info.value.reason == reason


def test_fitted_bgnbd_path_excludes_and_reports_the_bad_customer(tenant: Store) -> None:
    service = ClvService(tenant, FakeClock(T0))
    settings = service.get_settings("acme")
    fit = fit_tenant_model(tenant, "acme", "bgnbd", settings, end=T0)
    # Left out of the fit: its value cannot poison the tenant's spend model.
    assert fit["excludedCustomers"] == 1 and fit["customers"] == 59
    reason = "a transaction value 1e+307 must be at most 1e+12 in magnitude"
    assert fit["excluded"] == [{"customerId": BAD, "reason": reason}]
    assert 5.0 <= fit["spend"]["meanValue"] <= 50.0
    service.update_settings("acme", {"model": "bgnbd"})
    result, model_result = compute_records(service, "acme", as_of=T0)
    assert result.failed == 1
    assert model_result is not None
    assert model_result.failed == 1
    assert model_result.failures == fit["excluded"]
    assert model_result.computed + model_result.without_data == 59
    stored = tenant.get_documents(MODEL_RECORDS_NAMESPACE, "acme")
    assert len(stored) == 59 and BAD not in stored
    assert all(finite_document(d) for d in stored.values())
    assert json.loads(json.dumps(model_result.to_dict()))["failed"] == 1
    with pytest.raises(UnscorableCustomerError):
        service.get("acme", BAD, as_of=T0)
    record = service.get("acme", "c5", as_of=T0)
    assert record["model"] == "bgnbd" and 0 < record["expectedRevenue12m"] < 1e4
    cal = T0 - 90 * 86_400
    run = run_backtest(tenant, "acme", "bgnbd", settings, calibration_end=cal, penalizer=0.01)
    assert run["excludedCustomers"] == 1 and run["excluded"] == fit["excluded"]


def test_sbg_path_excludes_a_subscriber_with_an_absurd_price(store: Store, tmp_path: Path) -> None:
    store.create_outcome_type("acme", "subscribe", "positive")
    store.create_outcome_type("acme", "cancel", "negative")
    for i in range(30):
        cancel = T0 - (200 - 7 * i) * 86_400 if i % 3 == 0 else None
        add_subscriber(store, "acme", f"s{i}", T0 - (300 - i) * 86_400, cancel)
    write_sql(tmp_path, "UPDATE interactions SET value = 1e307 WHERE customer_id = 's1'")
    service = ClvService(store, FakeClock(T0))
    fit = fit_tenant_model(store, "acme", "sbg", service.get_settings("acme"), end=T0)
    assert fit["excludedCustomers"] == 1 and fit["customers"] == 29
    service.update_settings("acme", {"model": "sbg"})
    _, model_result = compute_records(service, "acme", as_of=T0)
    assert model_result is not None
    assert [f["customerId"] for f in model_result.failures] == ["s1"]
    assert model_result.computed == 29
    with pytest.raises(UnscorableCustomerError, match="1e\\+307"):
        service.get("acme", "s1", as_of=T0)
    assert math.isfinite(service.get("acme", "s2", as_of=T0)["expectedRevenue12m"])


def test_model_fields_that_are_not_finite_fail_those_customers_only(store: Store) -> None:
    add_buyers(store, "acme", T0, n=60)
    # Extreme parameters (a hand-written or old fit, far outside what a fit that passes the
    # degenerate-fit check gives): some customers get fields that overflow.
    fit = {
        "model": "bgnbd",
        "version": 1,
        "fittedAt": "2024-07-01T00:00:00Z",
        "params": {"r": 10000.0, "alpha": 1.0, "a": 0.001, "b": 0.001},
        "spend": {"model": "mean", "params": None, "meanValue": 20.0, "reason": "test"},
    }
    store.put_documents(FITS_NAMESPACE, "acme", {"bgnbd": fit, "bgnbd/v1": fit})
    service = ClvService(store, FakeClock(T0))
    service.update_settings("acme", {"model": "bgnbd"})
    _, model_result = compute_records(service, "acme", as_of=T0)
    assert model_result is not None
    # The customers the model itself gives non-finite fields, computed with the core alone.
    data = load_transactions(store, "acme", ("conversion",), end=T0)
    summary = summarize_transactions(
        data.customer_ids, data.days, data.values, observation_end=epoch_day(T0)
    )
    with np.errstate(all="ignore"):
        fields = transaction_fields(
            BetaGeoModel.from_params(**fit["params"]),
            SpendModel(None, 20.0),
            summary.frequency,
            summary.recency,
            summary.T,
            summary.monetary_value,
            clv_months=12,
            discount_rate_monthly=0.01,
        )
    ids = np.asarray(summary.customer_ids)
    broken = sorted(ids[~fields.finite()].tolist())
    assert 0 < len(broken) < 60
    assert sorted(f["customerId"] for f in model_result.failures) == broken
    assert (
        "are not finite numbers under the stored fit bgnbd/v1"
        in (model_result.failures[0]["reason"])
    )
    assert model_result.computed == 60 - len(broken)
    stored = store.get_documents(MODEL_RECORDS_NAMESPACE, "acme")
    assert sorted(set(ids.tolist()) - set(stored)) == broken
    assert all(finite_document(d) for d in stored.values())
    with pytest.raises(UnscorableCustomerError, match="not finite"):
        service.get("acme", broken[0], as_of=T0)
    fine = ids[fields.finite()][0]
    assert math.isfinite(service.get("acme", fine, as_of=T0)["clv"])


def test_a_stored_record_with_infinity_is_never_served(tenant: Store, tmp_path: Path) -> None:
    service = ClvService(tenant, FakeClock(T0))
    service.compute_batch("acme", as_of=T0)
    served = ClvService(tenant, FakeClock(T0)).get("acme", "c5", as_of=T0)
    assert served["source"] == "cached"
    # An older writer left Infinity (Python's json writes it) in an otherwise current record.
    write_sql(
        tmp_path,
        "UPDATE documents SET document = replace(document, '\"predictedRevenue\":', "
        "'\"predictedRevenue\":Infinity,\"was\":') WHERE namespace = ? AND doc_key = 'c5'",
        RECORDS_NAMESPACE,
    )
    assert tenant.get_document(RECORDS_NAMESPACE, "acme", "c5")["predictedRevenue"] == math.inf
    again = ClvService(tenant, FakeClock(T0)).get("acme", "c5", as_of=T0)
    assert again["source"] == "computed"
    assert again["predictedRevenue"] == served["predictedRevenue"]


def test_api_answers_422_for_the_bad_customer(tenant: Store) -> None:
    key = tenant.create_api_key("acme", "editor")[1]
    client = TestClient(create_app(Host(store=tenant), tenant))
    headers = {"Authorization": f"Bearer {key}", "X-Tenant-Id": "acme"}
    for method, url in (
        ("GET", f"/api/v1/customers/{BAD}/clv"),
        ("POST", f"/api/v1/customers/{BAD}/clv"),
    ):
        response = client.request(method, url, headers=headers)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "clv_unscorable_customer"
        assert "cannot be scored" in error["message"]
    batch = client.post("/api/v1/clv/compute", json={}, headers=headers)
    assert batch.status_code == 200
    assert batch.json()["failed"] == 1
    assert client.get("/api/v1/customers/c5/clv", headers=headers).status_code == 200


def test_cli_show_is_an_error_and_compute_reports(tenant: Store, tmp_path: Path) -> None:
    runner = CliRunner()
    db = f"sqlite:///{db_path(tmp_path)}"
    shown = runner.invoke(build_cli(), ["clv", "show", BAD, "--tenant", "acme", "--database", db])
    assert shown.exit_code == 1
    assert "cannot be scored" in shown.output and "Traceback" not in shown.output
    computed = runner.invoke(build_cli(), ["clv", "compute", "--tenant", "acme", "--database", db])
    assert computed.exit_code == 0, computed.output
    assert "failed" in computed.output and f"{BAD}: monetary total" in computed.output


def test_in_a_decision_the_names_are_null_with_a_plugin_failure(tenant: Store) -> None:
    host = Host(store=tenant)
    attach(host)
    flow = host.load_flow(
        {
            "key": "f",
            "version": 2,
            "nodes": [
                {"type": "inventory", "id": "inv", "config": {}},
                {
                    "type": "compute",
                    "id": "c",
                    "config": {"fields": [{"name": "score", "formula": "customer.clv_score"}]},
                },
                {"type": "score", "id": "s", "config": {}},
                {"type": "rank", "id": "r", "config": {}},
                {"type": "response", "id": "out", "config": {"fields": ["score"]}},
            ],
        }
    )
    offers = host.load_offers([{"id": "o1", "name": "One", "businessValue": 1, "propensity": 1}])
    request = {"customerId": BAD, "explain": True}
    decision = host.decide("acme", request, flow=flow, offers=offers).to_dict()
    assert decision["decisions"][0]["personalization"]["score"] is None
    assert decision["trace"]["context"]["customer.clv_score"] is None
    [failure] = decision["trace"]["pluginFailures"]
    assert failure["plugin"] == "clv" and "UnscorableCustomerError" in failure["error"]
    good = host.decide("acme", {**request, "customerId": "c5"}, flow=flow, offers=offers)
    assert isinstance(good.to_dict()["decisions"][0]["personalization"]["score"], int)


def test_the_finite_mask_of_the_core() -> None:
    last = np.array([T0 - 86_400.0, T0 - 2 * 86_400.0])
    batch, _ = score_batch(last, last - 86_400.0, [3, 2], [1e307, 10.0], T0, ClvSettings())
    assert batch.finite().tolist() == [False, True]


def test_the_batch_listeners_see_no_model_fields_for_a_failed_customer() -> None:
    from nextbest_clv.service.batch_compute import _add_model_columns
    from nextbest_clv.service.model_records import ModelBatchResult
    from nextbest_clv.service.tenant_batch import BatchResult

    result = BatchResult("acme", 0.0, None, 3, {}, 0, [], 0.0, ["a", "b", "c"],
                         {"churnProbability": np.array([0.1, 0.2, 0.3])})  # fmt: skip
    model = ModelBatchResult(
        "acme", "bgnbd", "bgnbd/v1", 1, 1, 0.0, 1, [], ["a"],
        {"probabilityAlive": np.array([0.9]), "churnProbability": np.array([0.5])},
        frozenset({"b"}),
    )  # fmt: skip
    _add_model_columns(result, model)
    alive = result.columns["probabilityAlive"]
    assert alive[0] == 0.9 and np.isnan(alive[1]) and np.isnan(alive[2])
    assert result.columns["churnProbability"].tolist() == [0.5, 0.2, 0.3]  # RFM where none
    assert result.columns["model"].tolist() == ["bgnbd", None, "bgnbd"]  # b failed; c no data
