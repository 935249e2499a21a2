"""Fitting a tenant's model: stored, versioned, with log-likelihood and data span; the data it
reads (transaction outcomes, subscriptions); clear errors; the CLI and the fits route."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from clvkit import DAY, T0, add_interactions
from fastapi.testclient import TestClient
from modelkit import add_buyers, add_subscriber
from nextbest_clv.core.models import (
    BetaGeoModel,
    ShiftedBetaGeometricModel,
    summarize_transactions,
)
from nextbest_clv.core.subscriptions import subscriber_periods, subscriptions_from_events
from nextbest_clv.errors import ModelFitError, NoTransactionsError, UnknownModelError
from nextbest_clv.service.fits import (
    FITS_NAMESPACE,
    fit_tenant_model,
    latest_fit,
    list_fits,
)
from nextbest_clv.service.settings import ClvSettings
from nextbest_clv.service.tenant_data import load_transactions

from nextbest import Host
from nextbest.api import create_app
from nextbest.cli import build_cli
from nextbest.store import Store

MONTH = 365.25 / 12 * DAY


def test_fit_is_stored_and_versioned(store: Store) -> None:
    add_buyers(store, "acme", T0)
    settings = ClvSettings()
    first = fit_tenant_model(store, "acme", "bgnbd", settings, clock=lambda: T0)
    second = fit_tenant_model(store, "acme", "bgnbd", settings, clock=lambda: T0 + 60)
    assert (first["version"], second["version"]) == (1, 2)
    assert latest_fit(store, "acme", "bgnbd") == second
    assert [f["version"] for f in list_fits(store, "acme")] == [2, 1]
    assert store.get_document(FITS_NAMESPACE, "acme", "bgnbd/v1") == first
    assert latest_fit(store, "globex", "bgnbd") is None

    # The parameters are the model's own fit of the tenant's summary, in weeks.
    data = load_transactions(store, "acme", ("conversion",))
    summary = summarize_transactions(
        data.customer_ids, data.days, data.values, observation_end="2024-07-01"
    )
    reference = BetaGeoModel.fit(summary.frequency, summary.recency, summary.T)
    for name, value in reference.params.items():
        assert first["params"][name] == pytest.approx(value, rel=1e-6)
    assert first["logLikelihood"] == pytest.approx(reference.log_likelihood, rel=1e-9)
    assert first["customers"] == 150
    assert first["repeatCustomers"] == int((summary.frequency > 0).sum())
    assert first["dataSpan"]["end"] == "2024-07-01"
    assert first["dataSpan"]["start"] == str(data.days.min())
    assert first["dataSpan"]["transactions"] == len(data)
    assert first["fittedAt"] == "2024-07-01T00:00:00Z"
    assert first["timeUnit"] == "weeks"
    assert first["spend"]["model"] in {"gammagamma", "mean"}


def test_only_transaction_outcomes_count(store: Store) -> None:
    add_buyers(store, "acme", T0, n=80)
    before = fit_tenant_model(store, "acme", "paretonbd", ClvSettings(), clock=lambda: T0)
    for c in range(0, 80, 3):  # impressions and clicks are not purchases
        add_interactions(store, "acme", f"c{c}", [T0 - 2 * DAY], outcome="impression")
        add_interactions(store, "acme", f"c{c}", [T0 - DAY], outcome="click")
    after = fit_tenant_model(store, "acme", "paretonbd", ClvSettings(), clock=lambda: T0)
    assert after["params"] == pytest.approx(before["params"])
    assert after["dataSpan"]["transactions"] == before["dataSpan"]["transactions"]
    clicks = ClvSettings(transactionOutcomes=("conversion", "click"))
    with_clicks = fit_tenant_model(store, "acme", "paretonbd", clicks, clock=lambda: T0)
    assert with_clicks["dataSpan"]["transactions"] == before["dataSpan"]["transactions"] + 27
    assert with_clicks["outcomes"] == ["conversion", "click"]


def test_fit_end_limits_the_data(store: Store) -> None:
    add_buyers(store, "acme", T0)
    early = fit_tenant_model(store, "acme", "bgnbd", ClvSettings(), end=T0 - 60 * DAY)
    full = fit_tenant_model(store, "acme", "bgnbd", ClvSettings(), end=T0)
    assert early["dataSpan"]["end"] == "2024-05-02"
    assert early["dataSpan"]["transactions"] < full["dataSpan"]["transactions"]
    assert early["customers"] < full["customers"]


def test_fit_errors(store: Store) -> None:
    with pytest.raises(NoTransactionsError, match="no transactions"):
        fit_tenant_model(store, "acme", "bgnbd", ClvSettings(), clock=lambda: T0)
    with pytest.raises(UnknownModelError, match="bgnbd, paretonbd, mbgnbd, bgbb, sbg"):
        fit_tenant_model(store, "acme", "nbd", ClvSettings())
    with pytest.raises(UnknownModelError, match="'rfm' has no parameters"):
        fit_tenant_model(store, "acme", "rfm", ClvSettings())
    for c in range(5):  # one purchase each: nobody repeats
        add_interactions(store, "acme", f"one{c}", [T0 - (c + 1) * DAY], [10.0])
    with pytest.raises(ModelFitError, match="repeat"):
        fit_tenant_model(store, "acme", "bgnbd", ClvSettings(), clock=lambda: T0)
    with pytest.raises(NoTransactionsError, match="no subscriptions"):
        fit_tenant_model(store, "acme", "sbg", ClvSettings(), clock=lambda: T0)
    assert list_fits(store, "acme") == []


def test_subscriptions_from_events() -> None:
    day = DAY
    subs = subscriptions_from_events(
        ["a", "b", "b", "c", "d"],
        [0.0, 0.0, 50 * day, 10 * day, 500 * day],
        [9.0, 5.0, 6.0, 7.0, 1.0],
        ["a", "b", "c", "c"],
        [40 * day, 20 * day, 30 * day, 200 * day],
        as_of=100 * day,
    )
    assert subs.customer_ids.tolist() == ["a", "b", "c"]  # d starts after as_of
    assert subs.start.tolist() == [0.0, 50 * day, 10 * day]  # b re-subscribed at day 50
    assert subs.churned.tolist() == [True, False, True]  # b's cancel precedes its new start
    assert subs.end[0] == 40 * day and subs.end[2] == 30 * day  # c's later cancel is ignored
    assert subs.price.tolist() == [9.0, 6.0, 7.0]
    periods, churned = subscriber_periods(subs, 100 * day, 30.0)
    # a: ended on day 40 -> churned in period 2; b: 50 days active -> 1 period completed;
    # c: ended on day 20 of its subscription -> churned in period 1
    assert periods.tolist() == [2.0, 1.0, 1.0]
    assert churned.tolist() == [True, False, True]


def test_sbg_fit_from_subscription_outcomes(store: Store) -> None:
    store.create_outcome_type("acme", "subscribe", "positive")
    store.create_outcome_type("acme", "cancel", "negative")
    start = T0 - 12 * MONTH
    # 20 subscribers since 12 months ago: 6 cancel in month 1, 4 in month 2, 2 in month 5.
    for i in range(20):
        month = 0.5 if i < 6 else 1.5 if i < 10 else 4.5 if i < 12 else None
        cancel = None if month is None else start + month * MONTH
        add_subscriber(store, "acme", f"s{i}", start, cancel, price=12.0)
    doc = fit_tenant_model(store, "acme", "sbg", ClvSettings(), clock=lambda: T0)
    periods = [1.0] * 6 + [2.0] * 4 + [5.0] * 2 + [12.0] * 8
    churned = [True] * 12 + [False] * 8
    reference = ShiftedBetaGeometricModel.fit_subscribers(periods, churned)
    assert doc["params"] == pytest.approx(reference.params, rel=1e-6)
    assert doc["logLikelihood"] == pytest.approx(reference.log_likelihood, rel=1e-9)
    assert (doc["customers"], doc["churned"]) == (20, 12)
    assert doc["outcomes"] == {"start": ["subscribe"], "end": ["cancel"]}
    assert doc["periodDays"] == pytest.approx(30.4375)
    # Other outcome names, per settings.
    store.create_outcome_type("acme", "join", "positive")
    add_interactions(store, "acme", "j1", [start], [5.0], outcome="join")
    named = ClvSettings(subscriptionStartOutcomes=("join",))
    with pytest.raises(ModelFitError, match="nobody churned"):
        fit_tenant_model(store, "acme", "sbg", named, clock=lambda: T0)


def test_cli_fit_and_fits_route(store: Store, tmp_path: Path) -> None:
    add_buyers(store, "acme", T0)
    db = f"sqlite:///{tmp_path / 'clv.db'}"
    runner = CliRunner()
    out = runner.invoke(
        build_cli(), ["clv", "fit", "--tenant", "acme", "--database", db, "--end", "2024-07-01"]
    )
    assert out.exit_code == 2 and "--model" in out.output  # the tenant's model is rfm
    out = runner.invoke(
        build_cli(),
        [
            *[
                "clv",
                "fit",
                "--tenant",
                "acme",
                "--model",
                "bgnbd",
                "--end",
                "2024-07-01",
                "--json",
            ],
            "--database",
            db,
        ],
    )
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["version"] == 1 and doc["dataSpan"]["end"] == "2024-07-01"
    assert "model setting is rfm" in out.stderr  # and how to switch (stdout stays JSON)
    settings = ["clv", "settings", "--tenant", "acme", "--set", "model=paretonbd", "--database", db]
    out = runner.invoke(build_cli(), settings)
    assert out.exit_code == 1 and "never been fitted" in out.output  # fit it first
    fit = ["clv", "fit", "--tenant", "acme", "--end", "2024-07-01", "--database", db]
    out = runner.invoke(build_cli(), [*fit, "--model", "paretonbd"])
    assert out.exit_code == 0 and "paretonbd fit version 1" in out.stdout, out.output
    out = runner.invoke(build_cli(), settings)
    assert out.exit_code == 0, out.output
    out = runner.invoke(build_cli(), fit)  # the tenant's model by default
    assert out.exit_code == 0, out.output
    assert "paretonbd fit version 2" in out.stdout and "log-likelihood" in out.stdout
    out = runner.invoke(
        build_cli(), ["clv", "fit", "--tenant", "acme", "--model", "sbg", "--database", db]
    )
    assert out.exit_code == 1 and "no subscriptions" in out.output

    client = TestClient(create_app(Host(store=store), store))
    key = store.create_api_key("acme", "viewer")[1]
    headers = {"Authorization": f"Bearer {key}", "X-Tenant-Id": "acme"}
    fits = client.get("/api/v1/clv/fits", headers=headers).json()["fits"]
    assert sorted(f["model"] for f in fits) == ["bgnbd", "paretonbd", "paretonbd"]
    only = client.get("/api/v1/clv/fits?model=bgnbd", headers=headers).json()["fits"]
    assert [f["version"] for f in only] == [1]
    assert client.get("/api/v1/clv/fits?model=rfm", headers=headers).status_code == 400
    assert np.isfinite(only[0]["logLikelihood"])


def test_degenerate_fit_fails_clearly_and_stores_nothing(store: Store, tmp_path: Path) -> None:
    # Three customers who each bought again on the fit's end day: BG/NBD runs off to r ~ 8e6.
    def noon(text: str) -> float:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() + 43_200

    for customer, first in (("a", "2024-01-01"), ("b", "2024-02-01"), ("c", "2024-03-01")):
        add_interactions(store, "acme", customer, [noon(first), noon("2024-03-31")], [10.0] * 2)
    # degenerate at convergence, or no convergence, depending on SciPy's line search
    with pytest.raises(ModelFitError, match=r"bgnbd.*The data do not determine the model"):
        fit_tenant_model(store, "acme", "bgnbd", ClvSettings(), end=noon("2024-03-31"))
    db = f"sqlite:///{tmp_path / 'clv.db'}"
    result = CliRunner().invoke(
        build_cli(),
        [
            "clv",
            "fit",
            "--tenant",
            "acme",
            "--model",
            "bgnbd",
            "--end",
            "2024-03-31",
            "--database",
            db,
        ],
    )
    assert result.exit_code == 1
    assert "do not determine the model" in result.output and "--penalizer" in result.output
    assert latest_fit(store, "acme", "bgnbd") is None
