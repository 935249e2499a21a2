"""CLV history on SQLite and PostgreSQL: a snapshot per full batch, paging, retention, segment
migration between any two snapshots, predictions scored against known actuals, forgetting."""

from __future__ import annotations

import math

import pytest
from clvkit import DAY, T0, add_interactions, worked_tenant
from nextbest_clv.errors import ClvInputError, HorizonNotPassedError, SnapshotNotFoundError
from nextbest_clv.service import ClvService, service_for
from nextbest_clv.service import history as history_module
from nextbest_clv.service.batch_compute import compute_records
from nextbest_clv.service.history import (
    CUSTOMERS_NAMESPACE,
    customer_history,
    get_snapshot,
    list_snapshots,
    load_customers,
)
from nextbest_clv.service.history_compare import (
    drift_report,
    migration,
    score_due,
    score_snapshot,
)
from nextbest_clv.service.settings import settings_fingerprint

from nextbest import Host
from nextbest.store import Store

HORIZON = 30.4375 * DAY  # lifespanMonths 1


@pytest.fixture
def service(any_store: Store) -> ClvService:
    any_store.create_tenant("globex")
    return service_for(Host(store=any_store))


def _known_tenant(store: Store) -> None:
    """Three customers whose first purchase is under a month before T0, so the RFM prediction
    for one month (lifespanMonths 1) is exactly what each spent: a 100, b 40, c 0."""
    add_interactions(store, "acme", "a", [T0 - 10 * DAY], [100.0])
    add_interactions(store, "acme", "b", [T0 - 5 * DAY], [40.0])
    add_interactions(store, "acme", "c", [T0 - 3 * DAY], [0.0])


def test_each_full_batch_stores_a_snapshot_and_segment_batches_do_not(
    service: ClvService,
) -> None:
    store = service.store
    worked_tenant(store)
    result, _ = compute_records(service, "acme", as_of=T0)
    assert result.snapshot is not None and result.to_dict()["snapshot"] == result.snapshot
    snap = get_snapshot(store, "acme", result.snapshot)
    assert snap["asOf"] == "2024-07-01T00:00:00Z"
    assert snap["customers"] == 6 and snap["model"] == "rfm" and snap["fit"] is None
    assert {k: v["customers"] for k, v in snap["segments"].items()} == result.counts
    assert sum(b["count"] for b in snap["score"]["histogram"]) == 6
    assert sum(b["count"] for b in snap["value"]["histogram"]) == 6
    predicted = [float(v) for v in result.columns["predictedRevenue"]]
    assert snap["totalValue"] == pytest.approx(sum(predicted))
    assert snap["prediction"]["field"] == "predictedRevenue"
    assert snap["prediction"]["horizonDays"] == pytest.approx(24 * 30.4375)
    assert snap["value"]["quantiles"]["p100"] == pytest.approx(max(predicted))
    customers = load_customers(store, "acme", snap)
    assert customers.ids.tolist() == result.customer_ids
    assert customers.predicted.tolist() == pytest.approx(predicted)
    # a segment-only batch changes some records, not the history
    partial, _ = compute_records(service, "acme", segment="high", as_of=T0)
    assert partial.snapshot is None
    assert [s["id"] for s in list_snapshots(store, "acme")[0]] == [result.snapshot]
    # another tenant sees none of it
    assert list_snapshots(store, "globex") == ([], None)
    with pytest.raises(SnapshotNotFoundError):
        get_snapshot(store, "globex", result.snapshot)


def test_paging_newest_first_and_retention(
    service: ClvService, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = service.store
    worked_tenant(store)
    monkeypatch.setattr(history_module, "CHUNK", 4)  # six customers: two parts each
    service.update_settings("acme", {"historyRetention": 3})
    ids = [compute_records(service, "acme", as_of=T0 + i * DAY)[0].snapshot for i in range(4)]
    first_page, cursor = list_snapshots(store, "acme", limit=2)
    assert [s["id"] for s in first_page] == [ids[3], ids[2]] and cursor == ids[2]
    second_page, cursor = list_snapshots(store, "acme", limit=2, after=cursor)
    assert [s["id"] for s in second_page] == [ids[1]] and cursor is None
    # the oldest was dropped with its customers' parts
    parts = store.get_documents(CUSTOMERS_NAMESPACE, "acme")
    assert sorted({key.split("/")[0] for key in parts}) == sorted(ids[1:])
    assert len(parts) == 6
    assert load_customers(store, "acme", first_page[0]).ids.size == 6
    with pytest.raises(SnapshotNotFoundError) as info:
        list_snapshots(store, "acme", after=ids[0])
    assert info.value.field == "cursor"


def test_migration_between_any_two_snapshots(service: ClvService) -> None:
    store = service.store
    worked_tenant(store)
    first, _ = compute_records(service, "acme", as_of=T0)
    assert first.counts == {"at_risk": 2, "high": 2, "medium": 2, "low": 0}
    add_interactions(store, "acme", "zed", [T0 + 1 * DAY], [20.0])
    second, _ = compute_records(service, "acme", as_of=T0 + 30 * DAY)
    # 30 days on, every earlier customer is at risk (atRiskDays 30); zed joined
    zed = second.customer_ids.index("zed")
    zed_segment = str(second.columns["segment"][zed])
    assert zed_segment != "at_risk"
    result = migration(store, "acme")  # the two newest
    assert (result["from"]["id"], result["to"]["id"]) == (first.snapshot, second.snapshot)
    assert result["matrix"]["at_risk"]["at_risk"] == 2
    assert result["matrix"]["high"]["at_risk"] == 2
    assert result["matrix"]["medium"]["at_risk"] == 2
    assert result["stayed"] == 2 and result["moved"] == 4
    assert sum(result["joined"].values()) == 1 and result["joined"][zed_segment] == 1
    assert sum(result["left"].values()) == 0
    # any two, in either direction: backwards, zed left
    back = migration(store, "acme", second.snapshot, first.snapshot)
    assert back["matrix"]["at_risk"] == {"at_risk": 2, "high": 2, "medium": 2, "low": 0}
    assert back["left"][zed_segment] == 1
    with pytest.raises(ClvInputError) as same:
        migration(store, "acme", first.snapshot, first.snapshot)
    assert same.value.field == "to"
    with pytest.raises(SnapshotNotFoundError) as unknown:
        migration(store, "acme", "nope", first.snapshot)
    assert unknown.value.field == "from"
    with pytest.raises(SnapshotNotFoundError):  # another tenant's snapshot
        migration(store, "globex", first.snapshot, second.snapshot)
    with pytest.raises(ClvInputError) as half:
        migration(store, "acme", None, first.snapshot)
    assert half.value.field == "from"


def test_migration_needs_two_snapshots(service: ClvService) -> None:
    worked_tenant(service.store)
    compute_records(service, "acme", as_of=T0)
    with pytest.raises(ClvInputError, match="has 1 CLV snapshot"):
        migration(service.store, "acme")


def test_predictions_scored_against_known_actuals_once_the_horizon_passed(
    service: ClvService,
) -> None:
    store = service.store
    _known_tenant(store)
    service.update_settings("acme", {"lifespanMonths": 1.0})
    first, _ = compute_records(service, "acme", as_of=T0)
    snap = get_snapshot(store, "acme", first.snapshot or "")
    assert snap["prediction"]["total"] == 140.0
    assert [d["predicted"] for d in snap["prediction"]["deciles"]] == [100.0, 40.0, 0.0]
    # what happened: a spends 70 inside the horizon; b 50 less a refund of 10; c buys only
    # after the horizon; d is new (not predicted); a non-purchase outcome counts nothing
    add_interactions(store, "acme", "a", [T0 + 3 * DAY], [70.0])
    add_interactions(store, "acme", "b", [T0 + 20 * DAY], [50.0])
    add_interactions(store, "acme", "b", [T0 + 25 * DAY], [-10.0], outcome="refund")
    add_interactions(store, "acme", "b", [T0 + 26 * DAY], [0.0], outcome="impression")
    add_interactions(store, "acme", "c", [T0 + HORIZON + 60.0], [30.0])
    add_interactions(store, "acme", "d", [T0 + 2 * DAY], [500.0])
    # not yet: a batch before the horizon's end scores nothing
    early, _ = compute_records(service, "acme", as_of=T0 + 29 * DAY)
    assert get_snapshot(store, "acme", first.snapshot or "")["drift"] is None
    with pytest.raises(HorizonNotPassedError):
        score_snapshot(store, "acme", service.get_settings("acme"), snap, T0 + 29 * DAY)
    # the batch after the horizon scores it and stores the score
    third, _ = compute_records(service, "acme", as_of=T0 + HORIZON + 120.0)
    drift = get_snapshot(store, "acme", first.snapshot or "")["drift"]
    assert drift is not None
    assert (drift["customers"], drift["predicted"], drift["actual"]) == (3, 140.0, 110.0)
    assert drift["mae"] == pytest.approx(10.0)
    assert drift["rmse"] == pytest.approx(math.sqrt(300.0))
    assert drift["bias"] == pytest.approx(10.0)
    assert drift["relativeError"] == pytest.approx(30.0 / 110.0)
    assert [(d["predicted"], d["actual"]) for d in drift["deciles"]] == [
        (100.0, 70.0),
        (40.0, 40.0),
        (0.0, 0.0),
    ]
    customers = load_customers(store, "acme", snap)
    segment_of = dict(zip(customers.ids.tolist(), customers.segments.tolist(), strict=True))
    a_segment = ("at_risk", "high", "medium", "low")[segment_of["a"]]
    assert drift["segments"][a_segment]["actual"] >= 70.0
    assert sum(s["customers"] for s in drift["segments"].values()) == 3
    report = drift_report(store, "acme")
    assert [r["snapshot"] for r in report["scored"]] == [first.snapshot]
    assert early.snapshot in [p["snapshot"] for p in report["pending"]]
    # later, the other two are scored, the first not again; an explicit call agrees
    later = score_due(store, "acme", service.get_settings("acme"), T0 + 400 * DAY)
    assert later == sorted([early.snapshot or "", third.snapshot or ""])
    again = score_snapshot(store, "acme", service.get_settings("acme"), snap, T0 + 400 * DAY)
    assert (again["predicted"], again["actual"]) == (140.0, 110.0)


def test_forgetting_a_customer_drops_them_from_the_snapshots(service: ClvService) -> None:
    store = service.store
    worked_tenant(store)
    first, _ = compute_records(service, "acme", as_of=T0)
    store.forget_customer("acme", "ada")
    Host(store=store).notify_customer_forgotten("acme", "ada")
    customers = load_customers(store, "acme", get_snapshot(store, "acme", first.snapshot or ""))
    assert "ada" not in customers.ids.tolist() and customers.ids.size == 5
    assert customers.segments.size == customers.predicted.size == 5


def test_a_customers_history_is_their_row_in_each_snapshot(service: ClvService) -> None:
    store = service.store
    _known_tenant(store)
    service.update_settings("acme", {"lifespanMonths": 1.0})
    first, _ = compute_records(service, "acme", as_of=T0)
    add_interactions(store, "acme", "a", [T0 + 3 * DAY], [70.0])
    add_interactions(store, "acme", "d", [T0 + 2 * DAY], [500.0])
    second, _ = compute_records(service, "acme", as_of=T0 + 5 * DAY)
    history = customer_history(store, "acme", "a")
    assert [h["snapshot"] for h in history] == [first.snapshot, second.snapshot]
    assert [h["asOf"] for h in history] == ["2024-07-01T00:00:00Z", "2024-07-06T00:00:00Z"]
    assert [h["predicted"] for h in history] == [100.0, 170.0]
    assert {(h["field"], h["horizonDays"]) for h in history} == {("predictedRevenue", 30.4375)}
    segments = [
        load_customers(store, "acme", get_snapshot(store, "acme", s))
        for s in (first.snapshot or "", second.snapshot or "")
    ]
    expected = [
        ("at_risk", "high", "medium", "low")[int(c.segments[c.ids.tolist().index("a")])]
        for c in segments
    ]
    assert [h["segment"] for h in history] == expected
    # d joined after the first snapshot; asOf bounds the history; other customers and
    # tenants have none
    assert [h["snapshot"] for h in customer_history(store, "acme", "d")] == [second.snapshot]
    assert len(customer_history(store, "acme", "a", T0 + 5 * DAY - 0.5)) == 1
    assert customer_history(store, "acme", "ghost") == []
    assert customer_history(store, "globex", "a") == []


def test_a_snapshot_keeps_the_settings_it_ran_with(service: ClvService) -> None:
    store = service.store
    _known_tenant(store)
    service.update_settings("acme", {"lifespanMonths": 1.0})
    result, _ = compute_records(service, "acme", as_of=T0)
    snap = get_snapshot(store, "acme", result.snapshot or "")
    settings = service.get_settings("acme")
    assert snap["settings"] == settings.to_json()
    assert snap["settings"]["lifespanMonths"] == 1.0
    assert snap["settingsFingerprint"] == settings_fingerprint(settings)
    # later changes leave the stored snapshot as it was
    service.update_settings("acme", {"lifespanMonths": 2.0})
    assert get_snapshot(store, "acme", result.snapshot or "")["settings"]["lifespanMonths"] == 1.0
