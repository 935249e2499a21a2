"""The CLV history in the report: the overview's trend, the distribution over time, the
migration page (a GET form choosing two snapshots) and the predicted-vs-actual page (stored
back-tests and the snapshots' predictions scored against what happened)."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

from nextbest_clv.backtest.runs import BACKTESTS_NAMESPACE
from nextbest_clv.service import service_for
from nextbest_clv.service.batch_compute import compute_records
from nextbest_clv.service.history import list_all_snapshots, load_customers
from nextbest_clv.service.history_compare import migration
from nextbest_clv.service.records import SEGMENTS
from uikit import NOW, Ui

from nextbest.store import InteractionIn, to_epoch


def _snapshots(ui: Ui, tenant: str = "acme", n: int = 2) -> list[str]:
    service = service_for(ui.host)
    ids = []
    for _ in range(n):
        result, _ = compute_records(service, tenant)
        assert result.snapshot is not None
        ids.append(result.snapshot)
    return ids


def _table(text: str, table_id: str) -> list[list[str]]:
    """The body rows of a table as cell texts."""
    found = re.search(rf'<table[^>]*id="table-{table_id}".*?<tbody>(.*?)</tbody>', text, re.S)
    assert found, table_id
    rows = re.findall(r"<tr>(.*?)</tr>", found[1], re.S)
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, re.S)
        ]
        for r in rows
    ]


def test_pages_say_there_is_no_history_yet(ui: Ui) -> None:
    ui.sign_in()
    for page in ("overview", "distribution", "migration", "predicted-vs-actual"):
        text = ui.client.get(f"/ui/{page}").text
        assert "No CLV snapshots yet" in text or "No back-tests yet" in text, page
    assert (
        "A migration needs two snapshots; the tenant has 0" in ui.client.get("/ui/migration").text
    )


def test_overview_and_distribution_over_time(ui: Ui) -> None:
    _snapshots(ui)
    ui.sign_in()
    overview = ui.client.get("/ui/overview").text
    assert "Since the previous snapshot" in overview
    assert "Total predicted revenue by snapshot" in overview
    distribution = ui.client.get("/ui/distribution").text
    assert "Predicted revenue quantiles by snapshot" in distribution
    assert "Customers per segment by snapshot" in distribution
    rows = _table(distribution, "snapshots")
    assert len(rows) == 2 and all(row[2] == "3" for row in rows)  # c0, c1, c2


def test_migration_page_default_chosen_and_bad_choices(ui: Ui) -> None:
    first, second = _snapshots(ui)
    (theirs,) = _snapshots(ui, "globex", 1)
    ui.sign_in()
    text = ui.client.get("/ui/migration").text
    assert 'name="from"' in text and 'name="to"' in text and "heatmap" in text
    expected = migration(ui.store, "acme", first, second)
    rows = {row[0]: row[1:] for row in _table(text, "migration")}
    for segment, counts in expected["matrix"].items():
        assert rows[segment][:4] == [str(counts[t]) for t in ("at_risk", "high", "medium", "low")]
    backwards = ui.client.get(f"/ui/migration?from={second}&to={first}")
    assert backwards.status_code == 200
    for query, field in (
        (f"from={first}&to={first}", "query.to"),
        (f"from=nope&to={second}", "query.from"),
        (f"from={theirs}&to={second}", "query.from"),
        (f"from={first}&to={theirs}", "query.to"),
    ):
        response = ui.client.get(f"/ui/migration?{query}")
        assert response.status_code == 400, query
        assert f"<code>{field}</code>" in response.text, query
        assert "globex" not in response.text


def test_predicted_vs_actual_shows_backtests_and_scored_snapshots(ui: Ui) -> None:
    store = ui.store
    service = service_for(ui.host)
    service.update_settings("acme", {"lifespanMonths": 1.0})
    # a customer long ago: predicted (one month) 40.00; then 25.00 inside the horizon
    long_ago = NOW - timedelta(days=400)

    def buy(key: str, value: float, at: datetime) -> None:
        row = InteractionIn(
            customer_id="old",
            outcome="conversion",
            idempotency_key=key,
            value=value,
            occurred_at=at,
        )
        store.record_interactions_bulk("acme", [row])

    buy("o1", 40.0, long_ago)
    past, _ = compute_records(service, "acme", as_of=to_epoch(long_ago + timedelta(days=1)))
    assert past.snapshot is not None and past.customer_ids == ["old"]
    buy("o2", 25.0, long_ago + timedelta(days=10))  # what happened in the horizon
    compute_records(service, "acme")  # scores the old snapshot: its horizon has passed
    drift = next(s for s in list_all_snapshots(store, "acme") if s["id"] == past.snapshot)["drift"]
    assert (drift["predicted"], drift["actual"]) == (40.0, 25.0)
    run = {
        "id": "r1",
        "runAt": (NOW - timedelta(days=1)).isoformat().replace("+00:00", "Z"),
        "model": "bgnbd",
        "calibrationEnd": "2024-01-01",
        "holdoutEnd": "2024-06-30",
        "customers": 10,
        "transactions": {"predicted": 12.0, "actual": 10.0, "mae": 0.5, "rmse": 0.7, "bias": 0.2},
        "revenue": {"predicted": 120.0, "actual": 100.0, "mae": 5.0, "rmse": 7.0, "bias": 2.0},
        "deciles": [
            {"decile": 1, "customers": 5, "predicted": 9.0, "actual": 8.0},
            {"decile": 2, "customers": 5, "predicted": 3.0, "actual": 2.0},
        ],
        "weekly": {"weeks": [1, 2], "predicted": [5.0, 12.0], "actual": [4.0, 10.0]},
    }
    store.put_documents(BACKTESTS_NAMESPACE, "acme", {"r1": run})
    ui.sign_in()
    text = ui.client.get("/ui/predicted-vs-actual").text
    assert "Back-test error by run" in text
    assert "cumulative repeat transactions" in text
    assert "per decile of the prediction" in text
    assert _table(text, "backtests")[0][1] == "bgnbd"
    scored = _table(text, "drift")
    assert len(scored) == 1 and scored[0][4:6] == ["40.00", "25.00"]
    # another tenant sees none of it
    ui.client.post("/ui/sign-out", data={"csrf": ui.csrf()})
    ui.sign_in("globex")
    other = ui.client.get("/ui/predicted-vs-actual").text
    assert "bgnbd" not in other and "No back-tests yet" in other


def test_customer_profile_shows_the_clv_history(ui: Ui) -> None:
    service = service_for(ui.host)
    older, _ = compute_records(service, "acme")
    # c1 buys again: the next snapshot predicts more for c1
    ui.store.record_interactions_bulk(
        "acme",
        [
            InteractionIn(
                customer_id="c1",
                outcome="conversion",
                idempotency_key="again",
                offer_id="gold",
                channel="web",
                value=500.0,
                occurred_at=NOW,
            )
        ],
    )
    newer, _ = compute_records(service, "acme")
    summaries = {s["id"]: s for s in list_all_snapshots(ui.store, "acme")}
    ui.sign_in()
    headers = {"X-Tenant-Id": "acme", "Authorization": f"Bearer {ui.keys[('acme', 'viewer')]}"}
    profile = ui.client.get("/api/v1/customers/c1/profile", headers=headers).json()
    history = profile["sections"]["clv"]["history"]
    assert [h["snapshot"] for h in history] == [older.snapshot, newer.snapshot]
    for h in history:
        summary = summaries[h["snapshot"]]
        customers = load_customers(ui.store, "acme", summary)
        at = customers.ids.tolist().index("c1")
        assert h["asOf"] == summary["asOf"] and h["field"] == summary["prediction"]["field"]
        assert h["segment"] == SEGMENTS[int(customers.segments[at])]
        assert h["predicted"] == float(customers.predicted[at])
    assert history[1]["predicted"] > history[0]["predicted"]
    # the profile as of the first snapshot's time has only that snapshot in its history
    past = ui.client.get(
        "/api/v1/customers/c1/profile",
        headers=headers,
        params={"asOf": summaries[older.snapshot or ""]["asOf"]},
    ).json()
    assert [h["snapshot"] for h in past["sections"]["clv"]["history"]] == [older.snapshot]
    page = ui.client.get("/ui/customer?customer=c1").text
    rows = _table(page, "clv-history")
    assert [r[1] for r in rows] == [h["segment"] for h in history]
    assert "2 entries" in page  # the section's field table points at the rows, not JSON
    assert re.search(
        r'<figure class="nb-chart"[^>]*aria-label="Predicted [^"]+ per snapshot"', page
    )
    # another tenant's customer of the same id has no history of ours
    other = {"X-Tenant-Id": "globex", "Authorization": f"Bearer {ui.keys[('globex', 'admin')]}"}
    assert ui.client.get("/api/v1/customers/c1/profile", headers=other).status_code == 404
