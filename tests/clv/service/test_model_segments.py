"""Segments and record fields that follow the active probabilistic model (issue 12 §6)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from modelkit import ingest_cdnow
from nextbest_clv.core.model_segments import (
    ModelTiers,
    build_tiers,
    clv_percentile,
    model_segment,
    model_segment_codes,
)
from nextbest_clv.core.rfm import Segment
from nextbest_clv.errors import ClvSettingsError
from nextbest_clv.report_pages import render_overview
from nextbest_clv.service import RECORDS_NAMESPACE, ClvService, service_for
from nextbest_clv.service.batch_compute import compute_records
from nextbest_clv.service.fits import fit_tenant_model
from nextbest_clv.service.history import get_snapshot
from nextbest_clv.service.model_records import MODEL_RECORDS_NAMESPACE
from nextbest_clv.service.record_columns import record_columns

from nextbest import Host, PageRequest
from nextbest.api import create_app
from nextbest.cli import build_cli
from nextbest.store import Store

#: CDNOW as of the end of its data (the last purchases are on 1998-06-30).
AS_OF_TIME = datetime(1998, 7, 1, tzinfo=UTC)
AS_OF = AS_OF_TIME.timestamp()
SEGMENTS = ("at_risk", "high", "medium", "low")
#: Customers per segment on CDNOW as of AS_OF: the RFM rule (30 days of silence) and each
#: model with the default atRiskProbabilityAlive 0.5 and tier percentiles 75 / 25.
EXPECTED = {
    "rfm": {"at_risk": 2219, "high": 133, "medium": 5, "low": 0},
    "paretonbd": {"at_risk": 1670, "high": 172, "medium": 343, "low": 172},
    "bgnbd": {"at_risk": 436, "high": 481, "medium": 963, "low": 477},
}


def counts(segments: Any) -> dict[str, int]:
    values = np.asarray(segments).astype(str)
    return {s: int((values == s).sum()) for s in SEGMENTS}


# --------------------------------------------------------------------------- pure core


def test_tiers_rank_the_active_customers_and_at_risk_overrides() -> None:
    alive = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.2, np.nan])
    clv = np.array([100.0, 50.0, 20.0, 10.0, 1000.0, 0.0, 5.0])
    tiers = build_tiers(
        alive, clv, at_risk_probability_alive=0.5, high_percentile=75.0, low_percentile=25.0
    )
    # Percentiles over the four active customers only (10, 20, 50, 100).
    assert tiers.clv_high == pytest.approx(float(np.percentile([10, 20, 50, 100], 75)))
    assert tiers.clv_low == pytest.approx(float(np.percentile([10, 20, 50, 100], 25)))
    assert tiers.customers == 6
    codes = model_segment_codes(alive, clv, tiers)
    # high, medium, medium, low; the big spender with P(alive) 0.1 is at risk; NaN: none.
    assert codes.tolist() == [1, 2, 2, 3, 0, 0, -1]
    assert [model_segment(a, c, tiers) for a, c in zip(alive[:6], clv[:6], strict=True)] == [
        Segment.HIGH,
        Segment.MEDIUM,
        Segment.MEDIUM,
        Segment.LOW,
        Segment.AT_RISK,
        Segment.AT_RISK,
    ]
    with pytest.raises(ValueError, match="finite"):
        model_segment(float("nan"), 1.0, tiers)
    # Mid-rank percentile among all six known customers (at risk included).
    got = clv_percentile([0.0, 20.0, 1000.0, 2000.0, np.nan], tiers)
    assert got[:4].tolist() == pytest.approx([100 / 12, 100 * 5 / 12, 100 * 11 / 12, 100.0])
    assert np.isnan(got[4])


def test_no_active_customer_puts_everyone_at_risk_or_low() -> None:
    tiers = build_tiers(
        [0.1, 0.2],
        [5.0, 6.0],
        at_risk_probability_alive=0.5,
        high_percentile=75.0,
        low_percentile=25.0,
    )
    assert tiers == ModelTiers(0.5, None, None, 2)
    assert model_segment_codes([0.1, 0.9], [5.0, 6.0], tiers).tolist() == [0, 3]


# --------------------------------------------------------------------------- CDNOW


@pytest.fixture
def cdnow(store: Store) -> ClvService:
    """CDNOW as tenant ``acme`` with Pareto/NBD and BG/NBD fitted on all of it (model rfm)."""
    ingest_cdnow(store, "acme")
    service = ClvService(store)
    settings = service.get_settings("acme")
    for model in ("paretonbd", "bgnbd"):
        fit_tenant_model(store, "acme", model, settings, end=AS_OF)
    return service


@pytest.mark.parametrize("model", ["paretonbd", "bgnbd"])
def test_cdnow_segments_follow_the_model(cdnow: ClvService, store: Store, model: str) -> None:
    assert counts(record_columns(cdnow, "acme", AS_OF).columns["segment"]) == EXPECTED["rfm"]
    cdnow.update_settings("acme", {"model": model})
    records = record_columns(cdnow, "acme", AS_OF)
    columns = records.columns
    assert counts(columns["segment"]) == EXPECTED[model]
    assert all(n > 0 for n in EXPECTED[model].values())
    alive, clv = columns["probabilityAlive"], columns["clv"]
    segment = np.asarray(columns["segment"]).astype(str)
    assert np.array_equal(segment == "at_risk", alive < 0.5)
    active = segment != "at_risk"
    assert clv[active & (segment == "high")].min() >= clv[active & (segment == "medium")].max()
    assert clv[active & (segment == "medium")].min() >= clv[active & (segment == "low")].max()

    # The batch stores, counts and snapshots the same segments.
    result, model_result = compute_records(cdnow, "acme", as_of=AS_OF)
    assert model_result is not None and result.counts == EXPECTED[model]
    assert result.snapshot is not None
    snapshot = get_snapshot(store, "acme", result.snapshot)
    assert {s: snapshot["segments"][s]["customers"] for s in SEGMENTS} == EXPECTED[model]
    ids = columns["customerId"].tolist()
    served = {c: cdnow.get("acme", c, as_of=AS_OF) for c in ids[::7]}
    assert all(r["segment"] == segment[ids.index(c)] for c, r in served.items())

    # A single compute, nothing stored and a fresh service: the same segment.
    store.put_documents(MODEL_RECORDS_NAMESPACE, "acme", {}, replace=True)
    store.put_documents(RECORDS_NAMESPACE, "acme", {}, replace=True)
    fresh = ClvService(store)
    for c in ids[::11]:
        record = fresh.get("acme", c, as_of=AS_OF)
        assert record["source"] == "computed"
        assert record["segment"] == segment[ids.index(c)], c


def test_at_risk_probability_alive_setting(cdnow: ClvService) -> None:
    cdnow.update_settings("acme", {"model": "paretonbd", "atRiskProbabilityAlive": 0.25})
    columns = record_columns(cdnow, "acme", AS_OF).columns
    segment = np.asarray(columns["segment"]).astype(str)
    assert np.array_equal(segment == "at_risk", columns["probabilityAlive"] < 0.25)
    assert 0 < counts(segment)["at_risk"] < EXPECTED["paretonbd"]["at_risk"]
    with pytest.raises(ClvSettingsError, match="atRiskProbabilityAlive"):
        cdnow.update_settings("acme", {"atRiskProbabilityAlive": 1.0})


def test_a_model_record_does_not_contradict_itself(cdnow: ClvService) -> None:
    """With a model the record's predictedRevenue is the model's clv (to the cent), so a
    customer the model sees as gone has neither a high revenue nor a value tier."""
    rfm = record_columns(cdnow, "acme", AS_OF).columns
    churned = rfm["churnProbability"] > 0.99
    assert rfm["predictedRevenue"][churned].max() > 1000  # the RFM extrapolation ignores churn
    cdnow.update_settings("acme", {"model": "paretonbd"})
    columns = record_columns(cdnow, "acme", AS_OF).columns
    assert np.array_equal(columns["predictedRevenue"], np.round(columns["clv"], 2))
    gone = columns["churnProbability"] > 0.99
    assert gone.any()
    assert columns["predictedRevenue"][gone].max() < 1.0
    assert set(np.asarray(columns["segment"])[gone].tolist()) == {"at_risk"}
    record = cdnow.get("acme", str(columns["customerId"][0]), as_of=AS_OF)
    assert record["predictedRevenue"] == round(record["clv"], 2)


def _decide(host: Host, customer: str) -> dict[str, Any]:
    names = {
        "segment": "customer.clv.segment",
        "revenue": "customer.clv.predicted_revenue",
        "value": "customer.clv.value",
        "churn": "customer.clv.churn_probability",
        "percentile": "customer.clv.value_percentile",
    }
    flow = {
        "key": "segments",
        "version": 2,
        "nodes": [
            {"type": "inventory", "id": "inv", "config": {}},
            {
                "type": "compute",
                "id": "c",
                "config": {"fields": [{"name": k, "formula": f} for k, f in names.items()]},
            },
            {"type": "score", "id": "s", "config": {"method": "formula", "clvWeight": 1.0}},
            {"type": "rank", "id": "r", "config": {"maxCandidates": 5}},
            {"type": "response", "id": "out", "config": {"fields": list(names)}},
        ],
    }
    offers = host.load_offers([{"id": "o", "name": "O", "businessValue": 10, "propensity": 0.5}])
    request = {"customerId": customer, "asOf": "1998-07-01T00:00:00Z", "explain": True}
    decision = host.decide("acme", request, flow=host.load_flow(flow), offers=offers).to_dict()
    personalization: dict[str, Any] = decision["decisions"][0]["personalization"]
    terms = decision["trace"]["scores"]["o"]["terms"]
    return {**personalization, "term": terms}


def test_decisions_and_reports_read_the_models_figures(store: Store, cdnow: ClvService) -> None:
    host = Host(store=store)
    shared = service_for(host)
    shared.update_settings("acme", {"model": "paretonbd"})
    columns = record_columns(shared, "acme", AS_OF).columns
    ids = columns["customerId"].tolist()
    # A customer whose RFM segment and revenue differ from the model's.
    rfm = ClvService(store)
    for customer in ids:
        i = ids.index(customer)
        if columns["segment"][i] in ("high", "low"):
            break
    got = _decide(host, customer)
    terms = got.pop("term")
    assert got == {
        "segment": columns["segment"][i],
        "revenue": columns["predictedRevenue"][i],
        "value": columns["clv"][i],
        "churn": columns["churnProbability"][i],
        "percentile": columns["clvPercentile"][i],
    }
    # The value provider's term is the model's percentile, not the RFM clvScore.
    assert columns["clvPercentile"][i] != columns["clvScore"][i]
    assert terms[0]["exponent"] == pytest.approx(1.0 * columns["clvPercentile"][i] / 100)
    assert got["revenue"] == round(got["value"], 2)
    del rfm

    page = render_overview(PageRequest(host, "acme", {}, AS_OF_TIME))
    table = next(b for b in page if getattr(b, "id", None) == "segments")
    rows = {row[0]: row for row in table.rows}
    assert {s: rows[s][1] for s in SEGMENTS} == EXPECTED["paretonbd"]
    segment = np.asarray(columns["segment"]).astype(str)
    for s in SEGMENTS:  # the value per segment is the model's clv
        assert rows[s][3] == pytest.approx(float(columns["clv"][segment == s].sum()))


# --------------------------------------------------------------------------- choosing a model


def test_choosing_a_model_never_fitted_is_refused(store: Store, tmp_path: Path) -> None:
    service = ClvService(store)
    ingest_cdnow(store, "acme")
    with pytest.raises(ClvSettingsError) as caught:
        service.update_settings("acme", {"model": "bgnbd"})
    assert caught.value.problems[0][0] == "model"
    assert "nextbest clv fit --tenant acme --model bgnbd" in str(caught.value)
    assert service.get_settings("acme").model == "rfm"

    client = TestClient(create_app(Host(store=store), store))
    key = store.create_api_key("acme", "admin")[1]
    headers = {"Authorization": f"Bearer {key}", "X-Tenant-Id": "acme"}
    response = client.put("/api/v1/clv/settings", json={"model": "paretonbd"}, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["details"][0]["field"] == "body.model"
    assert "nextbest clv fit --tenant acme --model paretonbd" in error["details"][0]["message"]

    db = ["--database", f"sqlite:///{tmp_path / 'clv.db'}"]
    cli = build_cli()
    out = CliRunner().invoke(
        cli, ["clv", "settings", "--tenant", "acme", "--set", "model=bgnbd", *db]
    )
    assert out.exit_code == 1 and "nextbest clv fit --tenant acme --model bgnbd" in out.output

    # Fitting while the setting is rfm says so and how to switch; then switching works.
    out = CliRunner().invoke(cli, ["clv", "fit", "--tenant", "acme", "--model", "bgnbd", *db])
    assert out.exit_code == 0, out.output
    assert "model setting is rfm" in out.output
    assert "nextbest clv settings --tenant acme --set model=bgnbd" in out.output
    out = CliRunner().invoke(
        cli, ["clv", "settings", "--tenant", "acme", "--set", "model=bgnbd", *db]
    )
    assert out.exit_code == 0, out.output
    out = CliRunner().invoke(cli, ["clv", "fit", "--tenant", "acme", "--model", "bgnbd", *db])
    assert out.exit_code == 0 and "model setting is" not in out.output
