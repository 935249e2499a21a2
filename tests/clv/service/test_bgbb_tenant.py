"""BG/BB as a tenant model (issue 12, section 3): the donations data as a tenant's transactions
gives back the published fit; records carry the model's predictions in opportunities; the
bgbbPeriodDays setting is validated; `clv fit --model bgbb` over the CLI."""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from clvkit import DAY, T0, FakeClock, add_interactions
from modelkit import add_buyers
from nextbest_clv.core.estimators import SpendModel
from nextbest_clv.core.models import BetaGeoBetaBinomModel
from nextbest_clv.core.opportunities import summarize_opportunities
from nextbest_clv.errors import ClvSettingsError
from nextbest_clv.service import ClvService
from nextbest_clv.service.batch_compute import compute_records
from nextbest_clv.service.fits import fit_tenant_model
from nextbest_clv.service.settings import ClvSettings, merge_settings
from nextbest_clv.service.tenant_data import load_transactions
from scipy.special import betaln

from nextbest.cli import build_cli
from nextbest.store import InteractionIn, Store
from nextbest.store.base import from_epoch

PUBLISHED = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}  # FHS 2010


def donations_rows() -> np.ndarray:
    """(x, t_x, n, weight) rows of the donations data that ships with lifetimes (or skip)."""
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("lifetimes (the donations data) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "donations.csv"
    table = np.genfromtxt(path, delimiter=",", names=True)
    return np.stack([table[c] for c in ("frequency", "recency", "periods", "weights")], axis=1)


def add_donors(store: Store, tenant: str, end: float) -> int:
    """Every donor as conversions, one opportunity a week (the default bgbbPeriodDays): the
    first donation n + 1 weeks before the end day, then x donations ending at opportunity t_x
    (only x, t_x and n enter the likelihood). Returns the number of donors."""
    end_day = end // DAY
    rows: list[InteractionIn] = []
    donor = 0
    for x, tx, n, weight in donations_rows().astype(int).tolist():
        for _ in range(weight):
            first = end_day + 1 - (n + 1) * 7
            opportunities = [0, *range(tx - x + 1, tx + 1)]
            for j in opportunities:
                rows.append(
                    InteractionIn(
                        customer_id=f"d{donor}",
                        outcome="conversion",
                        idempotency_key=f"don-{donor}-{j}",
                        value=25.0 + (donor + j) % 7,
                        occurred_at=from_epoch((first + 7 * j) * DAY + 43_200),
                    )
                )
            donor += 1
    store.record_interactions_bulk(tenant, rows)
    return donor


def test_the_donations_tenant_gives_the_published_fit(store: Store) -> None:
    donors = add_donors(store, "globex", T0)
    fit = fit_tenant_model(store, "globex", "bgbb", ClvSettings(), clock=lambda: T0)
    assert donors == fit["customers"] == 11_104
    for name, value in PUBLISHED.items():
        assert fit["params"][name] == pytest.approx(value, abs=6e-4), name
    assert fit["logLikelihood"] == pytest.approx(-33225.6, abs=0.05)  # FHS 2010, table 2
    assert fit["timeUnit"] == "periods of 7 days" and fit["periodDays"] == 7.0
    assert all(v is not None and v > 0 for v in fit["standardErrors"].values())
    assert fit["spend"]["meanValue"] == pytest.approx(28.0, abs=0.5)  # values 25..31


@pytest.fixture
def service(store: Store, clock: FakeClock) -> ClvService:
    add_buyers(store, "acme", T0, n=200)
    add_interactions(store, "acme", "browser", [T0 - 3 * DAY], outcome="impression")
    return ClvService(store, clock)


def use_bgbb(service: ClvService, **settings: Any) -> dict[str, Any]:
    chosen = merge_settings(service.get_settings("acme"), {"model": "bgbb", **settings})
    fit = fit_tenant_model(service.store, "acme", "bgbb", chosen, end=T0)
    service.update_settings("acme", {"model": "bgbb", **settings})
    service.models.forget("acme")
    service.invalidate_tenant("acme")
    return fit


def test_records_carry_the_bgbb_predictions(service: ClvService, store: Store) -> None:
    fit = use_bgbb(service)
    assert fit["periodDays"] == 7.0 and fit["model"] == "bgbb"
    _, model_result = compute_records(service, "acme", as_of=T0)
    assert model_result is not None and model_result.fit == "bgbb/v1"
    assert (model_result.computed, model_result.without_data) == (200, 1)
    data = load_transactions(store, "acme", ("conversion",))
    s = summarize_opportunities(
        data.customer_ids, data.days, data.values, observation_end="2024-07-01", period_days=7
    )
    model = BetaGeoBetaBinomModel.from_params(**fit["params"])
    value = SpendModel.from_json(fit["spend"]).expected_value(s.frequency, s.monetary_value)
    checked = 0
    for i, cid in enumerate(s.customer_ids.tolist()):
        x, tx, n = s.frequency[i], s.recency[i], s.n_periods[i]
        if n < 1 or i % 10:
            continue
        record = service.get("acme", cid, as_of=T0)
        assert record["model"] == "bgbb"
        # FHS eq. 11 and 13 with the horizons in whole weeks: 90 days -> 12, a year -> 52.
        assert record["probabilityAlive"] == pytest.approx(
            float(model.probability_alive(x, tx, n)), rel=1e-9
        )
        assert record["expectedPurchases90d"] == pytest.approx(
            float(model.conditional_expected_purchases(12, x, tx, n)), rel=1e-9
        )
        assert record["expectedRevenue12m"] == pytest.approx(
            float(model.conditional_expected_purchases(52, x, tx, n) * value[i]), rel=1e-9
        )
        assert record["churnProbability"] == pytest.approx(
            1 - float(model.probability_alive(x, tx, n, m=12)), rel=1e-9
        )
        # CLV: each week's expected purchase, discounted by the month it falls in.
        weeks = np.arange(1, 53)
        each = np.diff(model.conditional_expected_purchases(np.r_[0, weeks], x, tx, n))
        months = np.maximum(np.ceil(weeks * 7 / (365.25 / 12)), 1)
        assert record["clv"] == pytest.approx(float((each * 1.01**-months).sum() * value[i]))
        # The median wait: the least k with B(a + x, b + n - x + k) / B(...) <= 1/2.
        a, b = model.alpha + x, model.beta + n - x
        k = next(k for k in range(1, 10_000) if betaln(a, b + k) - betaln(a, b) <= -np.log(2))
        at = datetime.fromisoformat(record["expectedNextPurchaseAt"]).timestamp()
        assert at == pytest.approx(T0 + k * 7 * DAY, abs=1e-3)
        assert record["segment"] in {"high", "medium", "low", "at_risk"}
        checked += 1
    assert checked >= 10
    # A single read computed afresh equals the batch.
    batch = service.get("acme", "c10", as_of=T0)
    single = service.recompute("acme", "c10", as_of=T0)
    assert single["clv"] == pytest.approx(batch["clv"], rel=1e-12)
    assert single["segment"] == batch["segment"]
    browser = service.get("acme", "browser", as_of=T0)
    assert browser["probabilityAlive"] is None and browser["model"] == "bgbb"


def test_the_period_setting_is_validated_and_used(service: ClvService) -> None:
    for bad in (0.5, 400.0, "week"):
        with pytest.raises(ClvSettingsError, match="bgbbPeriodDays"):
            service.update_settings("acme", {"bgbbPeriodDays": bad})
    monthly = use_bgbb(service, bgbbPeriodDays=30.0)
    assert monthly["timeUnit"] == "periods of 30 days"
    weekly = fit_tenant_model(service.store, "acme", "bgbb", ClvSettings(), end=T0)
    assert weekly["params"] != monthly["params"]


def test_clv_fit_command_fits_bgbb(store: Store, tmp_path: Path) -> None:
    add_buyers(store, "acme", T0, n=120)
    db = f"sqlite:///{tmp_path / 'clv.db'}"
    fit = ["clv", "fit", "--tenant", "acme", "--end", "2024-07-01", "--database", db]
    out = CliRunner().invoke(build_cli(), [*fit, "--model", "bgbb", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["model"] == "bgbb" and doc["version"] == 1 and doc["periodDays"] == 7.0
    assert set(doc["params"]) == set(PUBLISHED)
