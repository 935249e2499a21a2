"""`clv models` beyond the continuous-time models (issue 12, section 3): BG/BB scored on the
same holdout as the others, sBG's retention-curve back-test for subscription tenants, and the
models that do not apply, with the reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from clvkit import DAY, T0
from modelkit import add_subscriber
from nextbest_clv.backtest.discrete import bgbb_backtest
from nextbest_clv.backtest.runs import compare_models
from nextbest_clv.core.models import ShiftedBetaGeometricModel
from nextbest_clv.errors import NoTransactionsError
from nextbest_clv.service.settings import ClvSettings

from nextbest.cli import build_cli
from nextbest.store import Store

TRUE = {"alpha": 1.2, "beta": 2.5, "gamma": 0.7, "delta": 4.0}


def simulated_opportunities(customers: int, weeks: int, seed: int = 3):
    """Weekly buyers drawn from BG/BB with :data:`TRUE`: first purchase in the first 8 weeks
    of 2020, then at most one purchase a week (any day of the customer's week)."""
    rng = np.random.default_rng(seed)
    p = rng.beta(TRUE["alpha"], TRUE["beta"], customers)
    theta = rng.beta(TRUE["gamma"], TRUE["delta"], customers)
    death = rng.geometric(theta)  # first opportunity not alive at
    first = rng.integers(0, 56, customers)
    j = np.arange(1, weeks + 1)[None, :]
    bought = (j < death[:, None]) & (rng.random((customers, weeks)) < p[:, None])
    who, when = np.nonzero(bought)
    ids = np.concatenate([np.arange(customers), who]).astype(str)
    within = rng.integers(0, 7, who.size)  # any day of the week's period
    offsets = np.concatenate([first, first[who] + 7 * (when + 1) + within])
    days = np.datetime64("2020-01-01") + offsets.astype("timedelta64[D]")
    keep = days <= np.datetime64("2020-01-01") + np.timedelta64(7 * weeks, "D")
    return ids[keep], days[keep], np.full(int(keep.sum()), 20.0)


def test_bgbb_backtest_recovers_the_model_and_predicts_the_holdout() -> None:
    ids, days, values = simulated_opportunities(20_000, 90)
    cal, end = np.datetime64("2020-12-31"), np.datetime64("2021-07-31")
    report = bgbb_backtest(ids, days, values, calibration_end=cal, holdout_end=end, period_days=7)
    for name, value in TRUE.items():
        assert report.params[name] == pytest.approx(value, rel=0.15), name
    # One purchase a week at most: opportunities are transaction-days.
    assert report.extra["transactionsPerOpportunity"] == 1.0
    tx = report.transactions
    assert tx.predicted == pytest.approx(tx.actual, rel=0.05)
    assert report.weekly.predicted[-1] == pytest.approx(tx.predicted, rel=0.02)
    assert report.weekly.actual[-1] == tx.actual
    assert report.customers == 20_000 and report.transaction_errors.size == 20_000


def add_sbg_subscribers(store: Store, tenant: str, n: int = 400, seed: int = 5) -> None:
    """Monthly subscribers (sBG alpha 1, beta 3) starting over two years before T0."""
    store.create_outcome_type(tenant, "subscribe", "positive")
    store.create_outcome_type(tenant, "cancel", "negative")
    rng = np.random.default_rng(seed)
    month = 365.25 / 12 * DAY
    theta = rng.beta(1.0, 3.0, n)
    lasts = rng.geometric(theta)  # periods paid before cancelling
    starts = T0 - rng.uniform(0, 24, n) * month
    for i in range(n):
        cancel = starts[i] + (lasts[i] - 0.5) * month
        add_subscriber(store, tenant, f"s{i}", starts[i], cancel if cancel < T0 else None)


def test_subscription_tenant_gets_the_sbg_retention_backtest(store: Store) -> None:
    add_sbg_subscribers(store, "acme")
    result = compare_models(store, "acme", ClvSettings(), clock=lambda: T0)
    assert result["recommended"] == "sbg" and result["runs"] == []
    not_applicable = {r["model"]: r["reason"] for r in result["notApplicable"]}
    assert set(not_applicable) == {"bgnbd", "paretonbd", "mbgnbd", "bgbb"}
    assert all("no transactions" in reason for reason in not_applicable.values())
    sbg = result["subscription"]
    retention = sbg["retention"]
    # Calibration to the middle of the events (about a year), monthly boundaries after it.
    assert 10 <= len(retention["periods"]) <= 12
    assert retention["rmse"] < 0.05 and retention["mae"] <= retention["rmse"]
    assert retention["actual"][0] <= 1.0 and retention["predicted"][-1] < 1.0
    # The predicted curve is the fitted sBG's conditional survival, averaged.
    model = ShiftedBetaGeometricModel.from_params(**sbg["params"])
    assert model.survival(np.array([1.0]))[0] < 1.0


def test_a_tenant_with_neither_is_a_clear_error(store: Store) -> None:
    with pytest.raises(NoTransactionsError, match="nor subscriptions"):
        compare_models(store, "acme", ClvSettings(), clock=lambda: T0)


def test_clv_models_command_shows_sbg_and_what_does_not_apply(store: Store, tmp_path: Path) -> None:
    add_sbg_subscribers(store, "acme", n=200)
    url = f"sqlite:///{tmp_path / 'clv.db'}"  # the fixture's store, opened by the CLI
    out = CliRunner().invoke(
        build_cli(), ["clv", "models", "--tenant", "acme"], env={"NEXTBEST_DATABASE_URL": url}
    )
    assert out.exit_code == 0, out.output
    assert "bgbb      does not apply: no transactions" in out.stdout
    assert "subscriptions (sbg, calibration to" in out.stdout
    assert "not comparable with the transaction RMSE" in out.stdout
    assert "recommended: sbg" in out.stdout
