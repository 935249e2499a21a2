"""Back-testing: hand-checked metrics and holdout counts, the report, its plot, stored runs
listed over the API, model comparison, and CDNOW through the store and the CLI."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path

import nextbest_clv.backtest.evaluate as evaluate_module
import numpy as np
import pytest
from click.testing import CliRunner
from clvkit import T0, add_interactions
from fastapi.testclient import TestClient
from modelkit import add_buyers, ingest_cdnow
from nextbest_clv.backtest.evaluate import backtest, decile_table, error_stats, rmse_margin
from nextbest_clv.backtest.plot import plot_backtest
from nextbest_clv.backtest.runs import compare_models, list_backtests, run_backtest
from nextbest_clv.core.estimators import check_fit
from nextbest_clv.core.models import BetaGeoModel, ParetoNBDModel, summarize_transactions
from nextbest_clv.errors import ClvInputError, ModelFitError, UnknownModelError
from nextbest_clv.service.settings import ClvSettings

from nextbest import Host
from nextbest.api import create_app
from nextbest.cli import build_cli
from nextbest.store import Store

ACME = {"X-Tenant-Id": "acme"}
# A tiny log: calibration to 2024-01-31, holdout to 2024-02-28 (4 weeks).
TINY = [
    ("a", "2024-01-01", 10.0),
    ("a", "2024-01-10", 12.0),
    ("a", "2024-01-20", 14.0),
    ("a", "2024-02-05", 10.0),  # holdout day 5 (week 1) ...
    ("a", "2024-02-05", 5.0),  # ... same day: one transaction worth 15
    ("a", "2024-02-20", 20.0),  # day 20 (week 3)
    ("b", "2024-01-05", 8.0),
    ("b", "2024-01-25", 9.0),
    ("c", "2024-01-15", 30.0),
    ("c", "2024-02-28", 30.0),  # day 28 (week 4)
    ("d", "2024-02-10", 99.0),  # first purchase in the holdout: not in the cohort
    ("e", "2024-01-02", 6.0),
    ("e", "2024-01-03", 7.0),
    ("e", "2024-01-30", 8.0),
    ("e", "2024-02-01", 8.0),  # day 1 (week 1)
    ("f", "2024-01-20", 11.0),
    ("g", "2024-01-08", 4.0),
    ("g", "2024-01-09", 4.0),
    ("g", "2024-01-12", 4.0),
    ("g", "2024-01-29", 4.0),
    ("h", "2024-01-01", 5.0),  # h and i buy early and then go quiet
    ("h", "2024-01-02", 6.0),
    ("h", "2024-01-04", 7.0),
    ("i", "2024-01-02", 5.0),
    ("i", "2024-01-05", 9.0),
]


def tiny() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids, days, values = zip(*TINY, strict=True)
    return np.array(ids), np.array(days, dtype="datetime64[D]"), np.array(values)


def test_error_stats_by_hand() -> None:
    stats = error_stats([1.0, 2.0, 3.0], [0.0, 2.0, 5.0])  # errors 1, 0, -2
    assert (stats.predicted, stats.actual) == (6.0, 7.0)
    assert stats.mae == pytest.approx(1.0)
    assert stats.rmse == pytest.approx(math.sqrt(5 / 3))
    assert stats.bias == pytest.approx(-1 / 3)


def test_decile_table_by_hand() -> None:
    rows = decile_table(
        [0.5, 3.0, 1.0, 2.0], [1.0, 2.0, 0.0, 4.0], [5, 30, 10, 20], [0, 1, 2, 3], 2
    )
    # ranked by prediction: customers 1 (3.0), 3 (2.0) | 2 (1.0), 0 (0.5)
    assert [(r.decile, r.customers, r.predicted, r.actual) for r in rows] == [
        (1, 2, 5.0, 6.0),
        (2, 2, 1.5, 1.0),
    ]
    assert (rows[0].predicted_mean, rows[0].actual_mean) == (2.5, 3.0)
    assert (rows[0].predicted_spend, rows[0].actual_spend) == (50.0, 4.0)
    assert len(decile_table(np.arange(25.0), np.zeros(25))) == 10
    assert len(decile_table([1.0, 2.0], [0.0, 0.0])) == 2  # fewer customers than deciles


def test_tiny_backtest_counts_and_predictions() -> None:
    ids, days, values = tiny()
    report = backtest(
        ids,
        days,
        values,
        calibration_end="2024-01-31",
        holdout_end="2024-02-28",
        model="bgnbd",
        penalizer=0.01,
    )
    assert report.customers == 8  # d started in the holdout
    assert report.repeat_customers == 6  # a, b, e, g, h, i
    assert report.holdout_weeks == pytest.approx(4.0)
    assert (report.calibration_start, report.calibration_end) == ("2024-01-01", "2024-01-31")
    # actual: a 2 (02-05 counted once, 02-20), c 1, e 1 -> 4 transactions worth 15+20+30+8
    assert report.transactions.actual == 4.0
    assert report.revenue.actual == pytest.approx(73.0)
    assert report.weekly.weeks == [1, 2, 3, 4]
    assert report.weekly.actual == [2.0, 2.0, 3.0, 4.0]
    # predictions are the fitted model's own
    summary = summarize_transactions(
        ids, days, values, calibration_end="2024-01-31", observation_end="2024-02-28"
    )
    model = BetaGeoModel.from_params(**report.params)
    expected = model.conditional_expected_purchases(
        4.0, summary.frequency, summary.recency, summary.T
    )
    assert report.transactions.predicted == pytest.approx(expected.sum(), rel=1e-9)
    assert report.weekly.predicted[-1] == pytest.approx(expected.sum(), rel=1e-9)
    assert np.all(np.diff(report.weekly.predicted) > 0)
    errors = expected - summary.frequency_holdout
    assert report.transactions.mae == pytest.approx(np.abs(errors).mean())
    assert report.transactions.bias == pytest.approx(errors.mean())
    assert sum(r.customers for r in report.deciles) == 8
    assert sum(r.actual for r in report.deciles) == 4.0
    # Tracking over both periods, from 2024-01-01 to 2024-02-28 (58 days: 9 weeks, the last of
    # 2 days); the repeat days by week, by hand: e h h i | a g g | a | b g | a e e | | | a | c.
    tracking = report.tracking
    assert tracking["weeks"] == pytest.approx([1, 2, 3, 4, 5, 6, 7, 8, 58 / 7])
    assert tracking["calibrationWeeks"] == pytest.approx(30 / 7)
    assert tracking["actual"] == [4.0, 7.0, 8.0, 10.0, 13.0, 13.0, 13.0, 14.0, 15.0]
    assert tracking["actualIncrements"] == [4.0, 3.0, 1.0, 2.0, 3.0, 0.0, 0.0, 1.0, 1.0]
    births = (30 - summary.T * 7) / 7  # first transaction, weeks from 2024-01-01
    for week, value in zip(tracking["weeks"], tracking["expected"], strict=True):
        direct = sum(float(model.expected_purchases(max(week - b, 0.0))) for b in births)
        assert value == pytest.approx(direct, rel=1e-9)
    assert np.sum(tracking["expectedIncrements"]) == pytest.approx(tracking["expected"][-1])
    histogram = report.calibration_histogram
    # Calibration repeat days: a 2, b 1, c 0, e 2, f 0, g 3, h 2, i 1.
    assert histogram["actual"] == [2.0, 2.0, 3.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert sum(histogram["expected"]) == pytest.approx(8.0)


def test_report_json_fields() -> None:
    ids, days, values = tiny()
    doc = backtest(
        ids, days, values, calibration_end="2024-01-31", model="paretonbd", penalizer=0.01
    ).to_json()
    assert doc["model"] == "paretonbd"
    assert doc["holdoutEnd"] == "2024-02-28"  # default: the last transaction day
    assert set(doc["params"]) == {"r", "alpha", "s", "beta"}
    assert set(doc["transactions"]) == {"predicted", "actual", "mae", "rmse", "bias"}
    assert set(doc["revenue"]) == {"predicted", "actual", "mae", "rmse", "bias"}
    assert set(doc["deciles"][0]) == {
        "decile",
        "customers",
        "predicted",
        "actual",
        "predictedMean",
        "actualMean",
        "predictedSpend",
        "actualSpend",
    }
    assert set(doc["weekly"]) == {"weeks", "predicted", "actual"}
    assert set(doc["tracking"]) == {
        "weeks",
        "calibrationWeeks",
        "expected",
        "expectedIncrements",
        "actual",
        "actualIncrements",
    }
    assert doc["calibrationHistogram"]["labels"][-1] == "7+"
    assert doc["spendModel"]["model"] in {"gammagamma", "mean"}
    json.dumps(doc)  # JSON-serialisable as stored


def test_backtest_errors() -> None:
    ids, days, values = tiny()
    with pytest.raises(ModelFitError, match="calibration end"):
        backtest(ids, days, values, calibration_end="2023-12-01")
    with pytest.raises(ModelFitError, match="calibration end"):
        backtest(ids, days, values, calibration_end="2024-02-28")  # no holdout left
    with pytest.raises(UnknownModelError, match="bgnbd, paretonbd"):
        backtest(ids, days, values, calibration_end="2024-01-31", model="sbg")
    one_each = np.array(["x", "y"]), np.array(["2024-01-01", "2024-03-01"], "datetime64[D]")
    with pytest.raises(ModelFitError, match="repeat"):
        backtest(*one_each, None, calibration_end="2024-02-01")


def test_plot_png_and_svg(tmp_path: Path) -> None:
    ids, days, values = tiny()
    doc = backtest(ids, days, values, calibration_end="2024-01-31", penalizer=0.01).to_json()
    png = plot_backtest(doc, tmp_path / "bt.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000
    svg = plot_backtest(doc, tmp_path / "sub" / "bt.svg").read_text()
    assert "<svg" in svg and "cumulative repeat transactions" in svg
    with pytest.raises(ClvInputError, match=r"\.png or \.svg"):
        plot_backtest(doc, tmp_path / "bt.pdf")


def test_runs_are_stored_and_listed_over_the_api(store: Store) -> None:
    add_buyers(store, "acme", T0)
    add_buyers(store, "globex", T0, n=60, seed=3)
    settings = ClvSettings()
    cal = T0 - 120 * 86_400
    first = run_backtest(store, "acme", "bgnbd", settings, calibration_end=cal, clock=lambda: T0)
    second = run_backtest(
        store, "acme", "paretonbd", settings, calibration_end=cal, clock=lambda: T0 + 60
    )
    assert first["runAt"] == "2024-07-01T00:00:00Z" and first["tenantId"] == "acme"
    assert [r["id"] for r in list_backtests(store, "acme")] == [second["id"], first["id"]]
    assert list_backtests(store, "acme", model="bgnbd") == [first]
    assert list_backtests(store, "globex") == []

    client = TestClient(create_app(Host(store=store), store))
    for role in ("viewer", "editor", "admin"):
        key = store.create_api_key("acme", role)[1]
        response = client.get(
            "/api/v1/clv/backtests", headers={"Authorization": f"Bearer {key}", **ACME}
        )
        assert response.status_code == 200, response.text
        assert [r["id"] for r in response.json()["backtests"]] == [second["id"], first["id"]]
    viewer = {"Authorization": f"Bearer {store.create_api_key('acme', 'viewer')[1]}", **ACME}
    one = client.get("/api/v1/clv/backtests?model=paretonbd&limit=1", headers=viewer).json()
    assert [r["model"] for r in one["backtests"]] == ["paretonbd"]
    assert client.get("/api/v1/clv/backtests", headers=ACME).status_code == 401
    other_key = store.create_api_key("globex", "viewer")[1]
    other = {"Authorization": f"Bearer {other_key}", "X-Tenant-Id": "globex"}
    assert client.get("/api/v1/clv/backtests", headers=other).json() == {"backtests": []}
    wrong_tenant = {**viewer, "X-Tenant-Id": "globex"}
    assert client.get("/api/v1/clv/backtests", headers=wrong_tenant).status_code == 404


def test_compare_models_recommends_the_lowest_holdout_error(store: Store) -> None:
    add_buyers(store, "acme", T0, n=200)
    result = compare_models(
        store, "acme", ClvSettings(), calibration_end=T0 - 120 * 86_400, clock=lambda: T0
    )
    rmse = {run["model"]: run["transactions"]["rmse"] for run in result["runs"]}
    # These buyers are drawn from BG/NBD: BG/BB's dropout is not identified on them and its fit
    # may stop without converging, which the comparison reports instead of failing.
    tried = set(rmse) | {f["model"] for f in result["failed"]}
    assert tried == {"bgnbd", "paretonbd", "mbgnbd", "bgbb"}
    assert {"bgnbd", "paretonbd", "mbgnbd"} <= set(rmse)
    assert result["recommended"] == min(rmse, key=rmse.__getitem__)
    assert result["runs"][0]["model"] == result["recommended"]
    margin = result["margin"]
    assert margin["second"] == result["runs"][1]["model"]
    assert margin["rmseDifference"] == pytest.approx(
        result["runs"][1]["transactions"]["rmse"] - result["runs"][0]["transactions"]["rmse"]
    )
    assert margin["withinNoise"] == (margin["rmseDifference"] < 2 * margin["standardError"])
    assert len(list_backtests(store, "acme")) == len(rmse)  # every run stored
    assert result["notApplicable"][0]["model"] == "sbg" and result["subscription"] is None
    assert "no subscriptions" in result["notApplicable"][0]["reason"]


def test_cdnow_through_the_store_and_cli(store: Store, tmp_path: Path) -> None:
    """CDNOW sample, calibration to 1997-09-30: BG/NBD predicts 1,653.4 holdout repeat
    transactions (lifetimes' figure for the same fit) against 1,882 observed."""
    ingest_cdnow(store, "acme")
    url = f"sqlite:///{tmp_path / 'clv.db'}"  # the fixture's store, opened by the CLI
    runner = CliRunner()
    cli = build_cli()
    out = runner.invoke(
        cli,
        ["clv", "models", "--tenant", "acme", "--calibration-end", "1997-09-30", "--json"],
        env={"NEXTBEST_DATABASE_URL": url},
    )
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    runs = {run["model"]: run for run in result["runs"]}
    bg, pareto = runs["bgnbd"], runs["paretonbd"]
    assert bg["customers"] == 2357 and bg["repeatCustomers"] == 946
    assert bg["logLikelihood"] == pytest.approx(-9582.43, abs=0.01)
    assert pareto["logLikelihood"] == pytest.approx(-9594.98, abs=0.01)
    assert bg["transactions"]["predicted"] == pytest.approx(1653.4, abs=0.05)
    assert bg["transactions"]["actual"] == pareto["transactions"]["actual"] == 1882.0
    assert bg["spendModel"]["params"]["p"] == pytest.approx(6.25, abs=0.005)
    assert pareto["transactions"]["rmse"] < bg["transactions"]["rmse"]  # 1.6028 < 1.6080
    # The gaps between the models are far inside the noise of 2,357 customers.
    assert result["margin"]["withinNoise"] is True
    assert result["margin"]["standardError"] > result["margin"]["rmseDifference"]
    plot = tmp_path / "cdnow.png"
    out = runner.invoke(
        cli,
        [
            "clv",
            "backtest",
            "--tenant",
            "acme",
            "--calibration-end",
            "1997-09-30",
            "--model",
            "bgnbd",
            "--plot",
            str(plot),
        ],
        env={"NEXTBEST_DATABASE_URL": url},
    )
    assert out.exit_code == 0, out.output
    assert "repeat transactions" in out.stdout and "1653.4" in out.stdout
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert ParetoNBDModel.from_params(**pareto["params"]).s == pytest.approx(0.606, abs=5e-4)


def day(text: str) -> float:
    """Noon UTC of a day, epoch seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() + 43_200


#: How a fit on :func:`degenerate_tenant`'s data fails (see the tests below).
DEGENERATE = r"(cannot fit bgnbd: .*|the bgnbd fit is degenerate .*)The data do not determine"
#: The calibration end of :func:`degenerate_tenant`.
T_CAL = day("2024-03-31")


def degenerate_tenant(store: Store, tenant: str = "acme") -> None:
    """Three customers who each bought again on the calibration end day (2024-03-31), and a
    holdout purchase each: BG/NBD runs off to r ~ 8e6, a ~ 1 and predicts NaN."""
    for customer, first in (("a", "2024-01-01"), ("b", "2024-02-01"), ("c", "2024-03-01")):
        times = [day(first), day("2024-03-31"), day("2024-04-20")]
        add_interactions(store, tenant, customer, times, [10.0, 10.0, 10.0])


def test_degenerate_fit_is_a_clear_error_in_backtests(store: Store) -> None:
    degenerate_tenant(store)
    settings = ClvSettings()
    # Depending on SciPy's line search, the optimiser either "converges" to extremes (a
    # degenerate fit) or stops without converging; both are a ModelFitError with the remedy.
    with pytest.raises(ModelFitError, match=DEGENERATE) as info:
        run_backtest(store, "acme", "bgnbd", settings, calibration_end=T_CAL, holdout_end=None)
    assert "--penalizer 0.01" in str(info.value)
    # The comparison reports each model's failure (no "not JSON-serialisable" error).
    with pytest.raises(ModelFitError) as info:
        compare_models(store, "acme", settings, calibration_end=T_CAL)
    text = str(info.value)
    for model in ("bgnbd", "paretonbd", "mbgnbd", "bgbb"):
        assert re.search(f"{model}: (cannot fit {model}|the {model} fit is degenerate)", text)
    assert text.count("The data do not determine the model") >= 3


def test_comparison_goes_on_when_one_model_is_degenerate(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_buyers(store, "acme", T0)
    real = evaluate_module.check_fit

    def paretonbd_degenerate(  # type: ignore[no-untyped-def]
        name: str, params, errors, predictions, penalizer
    ) -> None:
        if name == "paretonbd":
            check_fit(name, params, errors, {"predicted": [float("nan")]}, penalizer)
        real(name, params, errors, predictions, penalizer)

    monkeypatch.setattr(evaluate_module, "check_fit", paretonbd_degenerate)
    result = compare_models(store, "acme", ClvSettings(), calibration_end=T0 - 120 * 86_400.0)
    assert sorted(r["model"] for r in result["runs"]) == ["bgbb", "bgnbd", "mbgnbd"]
    assert result["recommended"] == result["runs"][0]["model"]
    assert [f["model"] for f in result["failed"]] == ["paretonbd"]
    assert "degenerate" in result["failed"][0]["reason"]


def test_the_rmse_margin_standard_error_against_a_paired_bootstrap() -> None:
    rng = np.random.default_rng(13)
    n = 3000
    shared = rng.standard_normal(n) * rng.gamma(0.5, 2.0, n)  # heavy-tailed, shared errors
    best = shared + 0.3 * rng.standard_normal(n)
    second = 1.08 * shared + 0.3 * rng.standard_normal(n)
    margin = rmse_margin(best, second)
    draws = rng.integers(0, n, (2000, n))
    boot = np.sqrt(np.mean(second[draws] ** 2, axis=1)) - np.sqrt(np.mean(best[draws] ** 2, axis=1))
    assert margin["standardError"] == pytest.approx(boot.std(), rel=0.1)
    assert margin["rmseDifference"] == pytest.approx(
        np.sqrt(np.mean(second**2)) - np.sqrt(np.mean(best**2))
    )
    assert margin["withinNoise"] is False  # 8% apart on shared errors: a real difference
    noisy = rmse_margin(best, best + 0.01 * rng.standard_normal(n) * (rng.random(n) < 0.5))
    assert noisy["withinNoise"] is True
    with pytest.raises(ValueError):
        rmse_margin(best, second[:-1])
