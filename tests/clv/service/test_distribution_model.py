"""The distribution report follows the active model's segments (issue 12, section 6): the
counts are those of the records, the thresholds the model's tiers; rfm tenants keep RFM."""

from __future__ import annotations

from collections import Counter

import pytest
from clvkit import DAY, T0, FakeClock, add_interactions
from modelkit import add_buyers
from nextbest_clv.service import ClvService
from nextbest_clv.service.fits import fit_tenant_model
from nextbest_clv.service.settings import merge_settings

from nextbest.store import Store


@pytest.fixture
def service(store: Store, clock: FakeClock) -> ClvService:
    add_buyers(store, "acme", T0, n=120)
    add_interactions(store, "acme", "browser", [T0 - 40 * DAY], outcome="impression")
    return ClvService(store, clock)


@pytest.mark.parametrize("model", ["bgnbd", "bgbb"])
def test_counts_are_the_records_model_segments(service: ClvService, model: str) -> None:
    rfm = service.distribution("acme", as_of=T0)
    assert rfm["segmentsFrom"] == "rfm" and set(rfm["segmentThresholds"]) == {"high", "low"}
    chosen = merge_settings(service.get_settings("acme"), {"model": model})
    fit_tenant_model(service.store, "acme", model, chosen, end=T0)
    service.update_settings("acme", {"model": model, "atRiskProbabilityAlive": 0.3})
    service.invalidate_tenant("acme")
    report = service.distribution("acme", as_of=T0)
    ids = [f"c{i}" for i in range(120)] + ["browser"]
    segments = Counter(service.get("acme", c, as_of=T0)["segment"] for c in ids)
    assert report["segmentsFrom"] == "model" and report["fit"] == f"{model}/v1"
    assert report["counts"] == {s: segments.get(s, 0) for s in report["counts"]}
    assert report["customers"] == 121 and report["excluded"] == 0
    assert report["counts"] != rfm["counts"]  # the model's tiers, not RFM's
    tiers = report["segmentThresholds"]
    assert tiers["atRiskProbabilityAlive"] == 0.3 and tiers["clvHigh"] >= tiers["clvLow"]
    # The browser has no transaction: their RFM segment, as in their record.
    assert service.get("acme", "browser", as_of=T0)["probabilityAlive"] is None
