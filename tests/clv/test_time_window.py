"""One window of valid times: every time the plugin takes (an asOf on the four routes, the
CLI's --as-of / --end / calibration and holdout ends, fits, back-tests, the scheduler) goes
through the store's ``time_problem`` / ``parse_time`` ([1900-01-01, 2200-01-01) UTC): outside it
is a 400 naming the field, a CLI usage error (exit 2) or a ``ClvInputError`` naming the field;
inside it, at both ends, the RFM core and the models score."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from clvkit import DAY, T0, FakeClock, add_interactions, store_settings_unchecked, worked_tenant
from fastapi.testclient import TestClient
from modelkit import TRUE_BGNBD, add_buyers, add_subscriber
from nextbest_clv.backtest.runs import compare_models, run_backtest
from nextbest_clv.core.estimators import SpendModel
from nextbest_clv.core.models import (
    ParetoNBDModel,
    ShiftedBetaGeometricModel,
    summarize_transactions,
)
from nextbest_clv.core.probabilistic import subscription_fields, transaction_fields
from nextbest_clv.core.rfm import score_batch, score_one
from nextbest_clv.core.subscriptions import subscriptions_from_events
from nextbest_clv.errors import ClvInputError
from nextbest_clv.scheduler import ClvScheduler
from nextbest_clv.service import CONFIG_NAMESPACE, SCHEDULE_STATE_KEY, ClvService
from nextbest_clv.service.batch_compute import compute_records
from nextbest_clv.service.fits import fit_tenant_model

from nextbest import Host
from nextbest.api import create_app
from nextbest.cli import build_cli
from nextbest.store import TIME_MAX, TIME_MIN, Store

LOW = TIME_MIN.timestamp()  # the first valid time
TOP = TIME_MAX.timestamp() - 1e-6  # the last valid time (whole microseconds)
OUTSIDE = [
    "2300-01-01T00:00:00Z",  # after year ~2255 answered 500 before
    "2200-01-01T00:00:00Z",  # the window's end is exclusive
    "1899-12-31T23:59:59Z",
    "0001-01-01T00:00:00+05:00",  # no UTC equivalent
    "9999-12-31T23:59:59Z",
]
WINDOW = "must be between 1900-01-01T00:00:00Z and 2200-01-01T00:00:00Z (UTC)"


@pytest.fixture
def client(store: Store) -> tuple[TestClient, dict[str, str]]:
    worked_tenant(store)
    key = store.create_api_key("acme", "editor")[1]
    app = create_app(Host(store=store), store)
    return TestClient(app), {"Authorization": f"Bearer {key}", "X-Tenant-Id": "acme"}


def field_error(response: Any, field: str) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert [d["field"] for d in error["details"]] == [field]
    return str(error["details"][0]["message"])


@pytest.mark.parametrize("value", OUTSIDE)
def test_query_as_of_outside_the_window_is_a_400(
    client: tuple[TestClient, dict[str, str]], value: str
) -> None:
    http, headers = client
    for url in ("/api/v1/customers/ada/clv", "/api/v1/clv/distribution"):
        response = http.get(url, params={"asOf": value}, headers=headers)
        message = field_error(response, "query.asOf")
        assert value in message and ("must be between" in message or "ISO-8601" in message)


@pytest.mark.parametrize("value", [*OUTSIDE, "soon", 1e9, True])
def test_body_as_of_outside_the_window_is_a_400(
    client: tuple[TestClient, dict[str, str]], value: Any
) -> None:
    http, headers = client
    for url in ("/api/v1/customers/ada/clv", "/api/v1/clv/compute"):
        response = http.post(url, json={"asOf": value}, headers=headers)
        message = field_error(response, "body.asOf")
        assert WINDOW in message or "ISO-8601" in message


def test_the_window_ends_are_scored_on_every_route(store: Store) -> None:
    add_interactions(store, "acme", "old", [LOW, LOW + DAY], [5.0, 7.0])
    add_interactions(store, "acme", "older", [LOW], [1.0])
    key = store.create_api_key("acme", "editor")[1]
    http = TestClient(create_app(Host(store=store), store))
    headers = {"Authorization": f"Bearer {key}", "X-Tenant-Id": "acme"}
    for as_of in ("1900-01-02T00:00:00Z", "2199-12-31T23:59:59.999999Z"):
        got = http.get("/api/v1/customers/old/clv", params={"asOf": as_of}, headers=headers)
        assert got.status_code == 200, got.text
        assert got.json()["computedAt"] == as_of
        posted = http.post("/api/v1/customers/older/clv", json={"asOf": as_of}, headers=headers)
        assert posted.status_code == 200, posted.text
        batch = http.post("/api/v1/clv/compute", json={"asOf": as_of}, headers=headers)
        assert batch.status_code == 200 and batch.json()["computed"] == 2, batch.text
        report = http.get("/api/v1/clv/distribution", params={"asOf": as_of}, headers=headers)
        assert report.status_code == 200 and report.json()["customers"] == 2
    start = http.get(
        "/api/v1/customers/older/clv", params={"asOf": "1900-01-01T00:00:00Z"}, headers=headers
    )
    assert start.status_code == 200 and start.json()["rfmRecency"] == 0


def test_the_service_names_the_field_for_every_caller(store: Store) -> None:
    worked_tenant(store)
    service = ClvService(store, FakeClock(T0))
    settings = service.get_settings("acme")
    calls = {
        "asOf": [
            lambda: service.get("acme", "ada", as_of=1e11),
            lambda: service.recompute("acme", "ada", as_of=LOW - 1),
            lambda: service.compute_batch("acme", as_of=math.nan),
            lambda: service.distribution("acme", as_of=math.inf),
            lambda: service.models.compute_batch(
                "acme", settings.model_copy(update={"model": "bgnbd"}), as_of=TOP + 1
            ),
        ],
        "end": [lambda: fit_tenant_model(store, "acme", "bgnbd", settings, end=1e11)],
        "calibrationEnd": [
            lambda: run_backtest(store, "acme", "bgnbd", settings, calibration_end=-1e10)
        ],
        "holdoutEnd": [lambda: compare_models(store, "acme", settings, holdout_end=1e12)],
    }
    for field, functions in calls.items():
        for function in functions:
            with pytest.raises(ClvInputError) as info:
                function()
            assert info.value.field == field
            assert str(info.value).startswith(field)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["compute", "--as-of", "2300-01-01"], "--as-of"),
        (["show", "ada", "--as-of", "1899-12-31T23:59:59Z"], "--as-of"),
        (["fit", "--model", "bgnbd", "--end", "2200-01-01"], "--end"),
        (["backtest", "--calibration-end", "1800-01-01"], "--calibration-end"),
        (
            ["backtest", "--calibration-end", "2024-01-01", "--holdout-end", "3000-01-01"],
            "--holdout-end",
        ),
        (["models", "--calibration-end", "0001-01-01"], "--calibration-end"),
        (["models", "--holdout-end", "not a date"], "--holdout-end"),
    ],
)
def test_cli_times_outside_the_window_are_usage_errors(
    store: Store, tmp_path: Path, args: list[str], option: str
) -> None:
    worked_tenant(store)
    db = f"sqlite:///{tmp_path / 'clv.db'}"
    result = CliRunner().invoke(build_cli(), ["clv", *args, "--tenant", "acme", "--database", db])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for {option}" in result.output
    assert WINDOW in result.output or "not an ISO-8601 time" in result.output


def test_the_rfm_core_scores_both_ends_of_the_window() -> None:
    last = np.array([LOW, LOW + DAY, LOW + 400 * DAY])
    first = np.array([LOW, LOW, LOW + 10 * DAY])
    for as_of in (LOW + 400 * DAY, TOP):
        batch, snapshot = score_batch(last, first, [1, 3, 2], [1.0, 2.0, 3.0], as_of)
        assert batch.finite().all()
        one = score_one(LOW, LOW, 1, 1.0, as_of, snapshot)
        assert one == batch.record(0)
    assert batch.recency_days[0] == (TIME_MAX - TIME_MIN).days - 1


def test_the_models_score_both_ends_of_the_window() -> None:
    days = np.array(["1900-01-01", "1900-02-01", "1900-03-15", "1900-01-01"], dtype="datetime64[D]")
    summary = summarize_transactions(
        ["a", "a", "a", "b"],
        days,
        [5.0, 6.0, 7.0, 3.0],
        observation_end=np.datetime64("2199-12-31"),
    )
    spend = SpendModel(None, 6.0)
    pareto = ParetoNBDModel.from_params(0.55, 10.6, 0.61, 11.7)
    for model in (TRUE_BGNBD, pareto):
        fields = transaction_fields(
            model,
            spend,
            summary.frequency,
            summary.recency,
            summary.T,
            summary.monetary_value,
            clv_months=24,
            discount_rate_monthly=0.01,
        )
        assert fields.finite().all(), type(model).__name__
    subs = subscriptions_from_events(["s", "t"], [LOW, LOW + DAY], [10.0, 5.0], ["t"], [LOW], TOP)
    sbg = ShiftedBetaGeometricModel.from_params(0.7, 5.0)
    fields = subscription_fields(
        sbg, subs, TOP, period_days=30.0, clv_months=12, discount_rate_monthly=0.01
    )
    assert fields.finite().all()


def test_a_tenant_from_1900_is_scored_by_every_model_as_of_2199(store: Store) -> None:
    start = LOW + 300 * DAY
    add_buyers(store, "acme", start, n=120)
    store.create_outcome_type("globex", "subscribe", "positive")
    store.create_outcome_type("globex", "cancel", "negative")
    for i in range(30):
        add_subscriber(store, "globex", f"s{i}", LOW + i * DAY, LOW + (40 + 9 * i) * DAY)
    for i in range(30, 40):
        add_subscriber(store, "globex", f"s{i}", LOW + i * DAY)
    service = ClvService(store, FakeClock(start))
    for tenant, models in (("acme", ("bgnbd", "paretonbd")), ("globex", ("sbg",))):
        for model in models:
            fit_tenant_model(store, tenant, model, service.get_settings(tenant), end=start)
            service.update_settings(tenant, {"model": model})
            result, model_result = compute_records(service, tenant, as_of=TOP)
            assert result.failed == 0
            assert model_result is not None and model_result.failed == 0, model
            assert model_result.computed == len(store.customer_summary_columns(tenant))
            record = service.get(tenant, "s0" if tenant == "globex" else "c0", as_of=TOP)
            assert record["computedAt"] == "2199-12-31T23:59:59.999999Z"
            assert all(math.isfinite(v) for v in record.values() if isinstance(v, float))


def test_the_scheduler_isolates_tenants_and_distrusts_state_times(store: Store) -> None:
    worked_tenant(store, "acme")
    worked_tenant(store, "globex")
    clock = FakeClock(T0)
    service = ClvService(store, clock)
    scheduler = ClvScheduler(service, clock=clock)
    # acme's job fails (its model was never fitted); globex's must still run.
    service.update_settings("acme", {"schedule": "0 * * * *"})
    store_settings_unchecked(store, "acme", model="bgnbd")  # re-read after the clock moves
    service.update_settings("globex", {"schedule": "0 * * * *"})
    clock.advance(3600)
    results = scheduler.run_due()
    assert [r.tenant_id for r in results] == ["globex"]
    failed = store.get_document(CONFIG_NAMESPACE, "acme", SCHEDULE_STATE_KEY)
    assert failed["lastRun"] == T0 + 3600
    assert failed["lastError"].startswith("ModelNotFittedError: tenant 'acme'")
    assert scheduler.run_due() == []  # a failed run waits for the next cron time
    # A state time outside the window (a corrupt document) restarts the count from now.
    state = {**failed, "lastRun": 1e20}
    store.put_documents(CONFIG_NAMESPACE, "acme", {SCHEDULE_STATE_KEY: state})
    clock.advance(3600)
    assert [r.tenant_id for r in scheduler.run_due()] == ["globex"]
    reset = store.get_document(CONFIG_NAMESPACE, "acme", SCHEDULE_STATE_KEY)
    assert reset == {"since": T0 + 7200, "schedule": "0 * * * *"}
    # A clock outside the window runs nothing (and raises nothing).
    assert ClvScheduler(service, clock=lambda: 1e11).run_due() == []
