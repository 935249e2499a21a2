"""Every report page renders with data and for an empty tenant; the Offers, Customer and CLV
pages show the right numbers; tables sort, paginate and export as CSV; bad parameters are
400s naming the field; the profile API; the at-risk page records nothing."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from urllib.parse import quote

import numpy as np
import pytest
from nextbest_clv.report_pages import value_column
from nextbest_clv.service import service_for
from nextbest_clv.service.record_columns import record_columns
from uikit import NOW, Ui

from nextbest.store import InteractionIn, to_epoch

PAGES = [
    "overview",
    "distribution",
    "migration",
    "at-risk",
    "predicted-vs-actual",
    "customer",
    "offers",
    "simulations",
    "lift",
    "triggers",
]


def test_nav_lists_every_page_in_order(ui: Ui) -> None:
    ui.sign_in()
    text = ui.client.get("/ui/offers").text
    nav = re.findall(r'<li><a href="/ui/([a-z-]+)"', text)
    assert nav == PAGES
    assert ui.client.get("/ui/", follow_redirects=False).headers["location"] == "/ui/overview"


@pytest.mark.parametrize("tenant", ["acme", "empty"])
def test_every_page_renders(ui: Ui, tenant: str) -> None:
    ui.sign_in(tenant)
    for page in PAGES:
        response = ui.client.get(f"/ui/{page}")
        assert response.status_code == 200, (page, response.text[-800:])
        assert "content-security-policy" in response.headers
        assert "<h1>" in response.text
    if tenant == "empty":
        assert "No customer has a CLV record yet" in ui.client.get("/ui/overview").text
        assert "No interactions in this window" in ui.client.get("/ui/offers").text


def _stats(text: str) -> dict[str, str]:
    return dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+?)(?: <span|</dd>)", text))


def test_offers_page_numbers(ui: Ui) -> None:
    ui.sign_in()
    stats = _stats(ui.client.get("/ui/offers?days=30").text)
    # seeded: 5 days x (3 impressions, 1 click, 1 conversion of 30)
    assert stats["Impressions"] == "15" and stats["Responses"] == "10"
    assert stats["Conversions"] == "5" and stats["Value"] == "150.00"
    assert stats["Conversion rate"] == "33.33"
    rows = list(csv.reader(io.StringIO(ui.client.get("/ui/offers/offers.csv?days=30").text)))
    assert rows[0][:3] == ["Offer", "Channel", "Impressions (count)"]
    body = {r[0]: r for r in rows[1:]}
    assert body["gold"][2:4] == ["10", "10"] and body["silver"][2:4] == ["5", "0"]
    week = ui.client.get("/ui/offers?period=week")
    assert week.status_code == 200 and "per offer and week" in week.text


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("/ui/offers?days=0", "query.days"),
        ("/ui/offers?days=x", "query.days"),
        ("/ui/offers?period=month", "query.period"),
        ("/ui/offers?offers.sort=secret", "query.offers.sort"),
        ("/ui/offers?asOf=yesterday", "query.asOf"),
        ("/ui/at-risk?at-risk.page=0", "query.at-risk.page"),
        ("/ui/customer?customer=%00", "query.customer"),
        ("/ui/lift?flow=nope", "query.flow"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(ui: Ui, query: str, field: str) -> None:
    ui.sign_in()
    response = ui.client.get(query)
    assert response.status_code == 400
    assert f"<code>{field}</code>" in response.text


def test_unknown_page_and_table_are_404(ui: Ui) -> None:
    ui.sign_in()
    assert ui.client.get("/ui/nope").status_code == 404
    assert ui.client.get("/ui/offers/nope.csv").status_code == 404
    assert ui.client.get("/ui/static/secret.py").status_code == 404


def test_customer_page_and_profile_api(ui: Ui) -> None:
    ui.sign_in()
    page = ui.client.get("/ui/customer?customer=c1")
    assert page.status_code == 200
    assert "Latest interactions" in page.text and "r1" not in page.text  # ids are not shown
    assert "clvScore" in page.text  # the CLV plugin's section, through the hook
    assert ui.client.get("/ui/customer?customer=ghost").status_code == 404
    headers = {"X-Tenant-Id": "acme", "Authorization": f"Bearer {ui.keys[('acme', 'viewer')]}"}
    profile = ui.client.get("/api/v1/customers/c1/profile", headers=headers).json()
    assert profile["customerId"] == "c1" and profile["summary"]["interactions"] == 10
    assert profile["recentRecommendations"][0]["offers"] == [
        {"rank": 1, "offerId": "gold", "score": 1.0}
    ]
    assert profile["sections"]["clv"]["customerId"] == "c1"
    assert profile["failedSections"] == []
    assert len(profile["recentInteractions"]) == 10
    times = [i["occurredAt"] for i in profile["recentInteractions"]]
    assert times == sorted(times, reverse=True)
    missing = ui.client.get("/api/v1/customers/ghost/profile", headers=headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "customer_not_found"
    other = {"X-Tenant-Id": "globex", "Authorization": f"Bearer {ui.keys[('globex', 'admin')]}"}
    assert ui.client.get("/api/v1/customers/c1/profile", headers=other).status_code == 404
    past = ui.client.get(
        "/api/v1/customers/c1/profile",
        headers=headers,
        params={"asOf": (NOW - timedelta(days=2, hours=12)).isoformat()},
    ).json()
    assert len(past["recentInteractions"]) == 4  # the two oldest days of c1's interactions
    bad = ui.client.get("/api/v1/customers/c1/profile", headers=headers, params={"asOf": "x"})
    assert bad.status_code == 400 and bad.json()["error"]["details"][0]["field"] == "query.asOf"


def _many_customers(ui: Ui, n: int = 30) -> None:
    rows = [
        InteractionIn(
            customer_id=f"m{i:02d}",
            outcome="conversion",
            idempotency_key=f"m-{i}-{k}",
            offer_id="gold",
            value=float(10 + i),
            occurred_at=NOW - timedelta(days=k * (1 + i % 7), hours=3),
        )
        for i in range(n)
        for k in range(1 + i % 4)
    ]
    ui.store.record_interactions_bulk("acme", rows)


def test_overview_matches_the_records(ui: Ui) -> None:
    _many_customers(ui)
    ui.sign_in()
    text = ui.client.get(f"/ui/overview?asOf={quote(NOW.isoformat())}").text
    records = record_columns(service_for(ui.host), "acme", to_epoch(NOW))
    _, value = value_column(records)
    stats = _stats(text)
    assert stats["Customers"] == str(len(value)) == "33"
    assert stats["Total predicted revenue"] == f"{value.sum():,.2f}"
    assert "Customers per segment" in text


def test_at_risk_sorts_paginates_exports_and_records_nothing(ui: Ui) -> None:
    _many_customers(ui)
    ui.sign_in()
    before = sum(len(ui.store.customer_recommendations("acme", f"m{i:02d}", 5)) for i in range(30))
    records = record_columns(service_for(ui.host), "acme", to_epoch(NOW))
    _, value = value_column(records)
    risk = value * np.asarray(records.columns["churnProbability"], dtype=float)
    ids = records.columns["customerId"].tolist()
    expected = [c for _, c in sorted(zip(-risk, ids, strict=True))]
    as_of = f"asOf={quote(NOW.isoformat())}"

    def customers(text: str) -> list[str]:
        return re.findall(r'<tr><th scope="row">([^<]+)</th>', text)

    first = ui.client.get(f"/ui/at-risk?{as_of}").text
    second = ui.client.get(f"/ui/at-risk?{as_of}&at-risk.page=2").text
    assert customers(first) + customers(second) == expected
    assert len(customers(first)) == 25 and "page 1 of 2" in first
    assert 'rel="next"' in first and 'rel="prev"' in second
    assert "<td>gold</td>" in first  # the default flow's top offer for the rows shown
    ascending = ui.client.get(f"/ui/at-risk?{as_of}&at-risk.sort=customer&at-risk.desc=0").text
    assert customers(ascending) == sorted(ids)[:25]
    rows = list(csv.reader(io.StringIO(ui.client.get(f"/ui/at-risk/at-risk.csv?{as_of}").text)))
    assert [r[0] for r in rows[1:]] == expected and rows[0][-1] == "Top offer"
    after = sum(len(ui.store.customer_recommendations("acme", f"m{i:02d}", 5)) for i in range(30))
    assert before == after == 0


def test_csv_cells_cannot_become_formulas() -> None:
    from nextbest import Column, Table
    from nextbest.ui.routes import csv_lines

    table = Table("t", "T", [Column("a", "A")], [["=HYPERLINK(1)"], ["plain"], [None]])
    rows = list(csv.reader(io.StringIO("".join(csv_lines(table)))))
    assert rows == [["A"], ["'=HYPERLINK(1)"], ["plain"], [""]]


def test_text_is_escaped(ui: Ui) -> None:
    ui.store.record_interactions_bulk(
        "acme",
        [
            InteractionIn(
                customer_id="x",
                outcome="click",
                idempotency_key="xss",
                offer_id="gold",
                channel="web",
                value=0.0,
                occurred_at=NOW,
            )
        ],
    )
    ui.sign_in()
    response = ui.client.get("/ui/customer", params={"customer": "<script>alert(1)</script>"})
    assert "<script>alert(1)" not in response.text
