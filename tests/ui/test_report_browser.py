"""The report in a real browser (issue 11 §4): Debian's Chromium through Playwright against the
app served over HTTP. Sign in through the form, open every page of the navigation (pages are
read from the nav, so a new page is covered), check the charts drew data marks and the tables
hold the seeded rows; sort, paginate and download the at-risk table; sign out; another
tenant sees nothing of ours; the exported file draws the same charts from disk, offline."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from browserkit import BUYER_PREFIX, BUYERS, Served, screenshot
from nextbest_clv.report_pages import value_column
from nextbest_clv.service import service_for
from nextbest_clv.service.record_columns import record_columns
from uikit import NOW

from nextbest.store import to_epoch
from nextbest.ui.export import export_report
from nextbest.ui.session import COOKIE

pytestmark = pytest.mark.browser

AS_OF = f"asOf={quote(NOW.isoformat())}"
CUSTOMERS = BUYERS + 3  # the generated buyers and c0, c1, c2 of uikit.seed
#: Data marks Plotly draws: bars and markers (points), lines, heatmap images.
MARKS = "g.point, path.js-line, g.hm image, .heatmaplayer image"
#: Charts per page (served at sign-in, checked against the export): page -> [(title, marks)].
SERVED_CHARTS: dict[str, list[tuple[str, int]]] = {}


def sign_in(page: Any, served: Served, tenant: str = "acme", key: str | None = None) -> None:
    page.goto(f"{served.base}/ui/sign-in")
    page.fill("input[name=tenant]", tenant)
    page.fill("input[name=key]", key or served.keys[(tenant, "viewer")])
    page.click("button[type=submit]")


def nav_links(page: Any) -> list[tuple[str, str]]:
    """(name, href) of every page in the navigation, in order."""
    links = page.eval_on_selector_all(
        "nav.nb-nav a", "els => els.map(a => [a.textContent, a.getAttribute('href')])"
    )
    return [(str(text).strip(), str(href)) for text, href in links]


def charts(page: Any, scope: str = "body") -> list[tuple[str, int]]:
    """(title, data marks) of every non-empty chart under ``scope``, after it has drawn."""
    found = []
    for figure in page.query_selector_all(f"{scope} figure.nb-chart"):
        title = str(figure.get_attribute("aria-label"))
        if figure.query_selector("figcaption.nb-note"):
            continue  # the page says this chart has no data yet
        page.wait_for_function("f => f.dataset.rendered === 'true'", arg=figure)
        assert figure.query_selector("svg.main-svg"), title
        found.append((title, len(figure.query_selector_all(MARKS))))
    return found


def table(page: Any, table_id: str) -> list[list[str]]:
    """The body rows of table ``table-<id>`` as cell texts."""
    rows = page.eval_on_selector_all(
        f"#table-{table_id} tbody tr",
        "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent.trim()))",
    )
    return [[str(c) for c in row] for row in rows]


def expected_at_risk(served: Served, sort: str = "risk") -> list[str]:
    """The acme customers by value at risk (descending, ties by id) as of ``NOW``."""
    records = record_columns(service_for(served.host), "acme", to_epoch(NOW))
    _, value = value_column(records)
    risk = value * np.asarray(records.columns["churnProbability"], dtype=float)
    ids = [str(c) for c in records.columns["customerId"].tolist()]
    return [c for _, c in sorted(zip(-risk, ids, strict=True))]


def test_wrong_key_shows_an_error_and_sets_no_cookie(context: Any, served: Served) -> None:
    page = context.new_page()
    sign_in(page, served, key="nb_wrong-key")
    assert "/ui/sign-in" in page.url
    assert page.get_by_text("The tenant or the API key is not valid.").is_visible()
    assert COOKIE not in {c["name"] for c in context.cookies()}
    screenshot(page, "sign-in-error")


def test_every_page_in_the_navigation_renders(context: Any, served: Served) -> None:
    page = context.new_page()
    sign_in(page, served)
    assert page.url.endswith("/ui/overview")
    session = [c for c in context.cookies() if c["name"] == COOKIE]
    assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict"
    links = nav_links(page)
    names = [href.rsplit("/", 1)[-1] for _, href in links]
    # The host's and the CLV plugin's pages at least; other plugins' pages join the nav.
    for name in ("overview", "distribution", "migration", "at-risk", "predicted-vs-actual"):
        assert name in names
    for name in ("customer", "offers", "lift", "triggers"):
        assert name in names
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    for title, href in links:
        response = page.goto(served.base + href)
        assert response is not None and response.status == 200, href
        name = href.rsplit("/", 1)[-1]
        assert page.inner_text("main h1") == title
        SERVED_CHARTS[name] = charts(page)
        for chart, marks in SERVED_CHARTS[name]:
            assert marks > 0, (name, chart)
        print(screenshot(page, f"page-{name}"))
    assert errors == []
    # The seeded tenant's CLV chart pages all draw charts; the tables hold its rows.
    for name in ("overview", "distribution", "migration", "predicted-vs-actual"):
        assert SERVED_CHARTS[name], name
    page.goto(f"{served.base}/ui/at-risk")
    assert len(table(page, "at-risk")) == 25
    page.goto(f"{served.base}/ui/distribution")
    snapshots = table(page, "snapshots")
    # newest first: everyone now; a month ago only the buyers who had bought by then
    assert len(snapshots) == 2 and snapshots[0][2] == str(CUSTOMERS)
    assert 0 < int(snapshots[1][2]) < BUYERS
    page.goto(f"{served.base}/ui/migration")  # defaults to the two snapshots
    matrix = {row[0]: [int(c) for c in row[1:] if c.isdigit()] for row in table(page, "migration")}
    new = sum(matrix.pop("(new customers)"))
    assert new == CUSTOMERS - int(snapshots[1][2])
    assert sum(map(sum, matrix.values())) == int(snapshots[1][2])
    page.goto(f"{served.base}/ui/predicted-vs-actual")
    assert [row[1] for row in table(page, "backtests")] == ["bgnbd"]
    page.goto(f"{served.base}/ui/offers?days=30")
    offers = {row[0] for row in table(page, "offers")}
    assert {"gold", "silver"} <= offers
    page.goto(f"{served.base}/ui/customer?customer={BUYER_PREFIX}007")
    assert BUYER_PREFIX + "007" in page.inner_text("main")
    screenshot(page, "page-customer-profile")


def test_at_risk_sorts_paginates_and_downloads(
    context: Any, served: Served, tmp_path: Path
) -> None:
    page = context.new_page()
    sign_in(page, served)
    expected = expected_at_risk(served)
    page.goto(f"{served.base}/ui/at-risk?{AS_OF}")
    first = [row[0] for row in table(page, "at-risk")]
    assert first == expected[:25]
    # Sort by customer through the column's header link; a second click reverses the order.
    page.click("#table-at-risk thead a:has-text('Customer')")
    direction = page.get_attribute("#table-at-risk th[aria-sort]", "aria-sort")
    by_customer = [row[0] for row in table(page, "at-risk")]
    assert by_customer == sorted(expected, reverse=direction == "descending")[:25] != first
    page.click("#table-at-risk thead a:has-text('Customer')")
    again = page.get_attribute("#table-at-risk th[aria-sort]", "aria-sort")
    assert {direction, again} == {"ascending", "descending"}
    assert [row[0] for row in table(page, "at-risk")] == sorted(
        expected, reverse=again == "descending"
    )[:25]
    # Back to value at risk, then the next pages.
    page.goto(f"{served.base}/ui/at-risk?{AS_OF}")
    page.click("a[rel=next]")
    assert [row[0] for row in table(page, "at-risk")] == expected[25:50]
    assert "page 2 of 3" in page.inner_text(".nb-table-foot")
    screenshot(page, "at-risk-page-2")
    page.click("a[rel=next]")
    assert [row[0] for row in table(page, "at-risk")] == expected[50:]
    assert page.query_selector("a[rel=next]") is None
    with page.expect_download() as info:
        page.click("text=Download CSV")
    path = tmp_path / "at-risk.csv"
    info.value.save_as(path)
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert rows[0][0] == "Customer" and rows[0][-1] == "Top offer"
    assert len(rows) == 1 + CUSTOMERS
    assert [r[0] for r in rows[1:]] == expected


def test_sign_out_then_pages_redirect_to_sign_in(context: Any, served: Served) -> None:
    page = context.new_page()
    sign_in(page, served)
    page.click("form.nb-sign-out button")
    assert "/ui/sign-in" in page.url
    assert COOKIE not in {c["name"] for c in context.cookies()}
    page.goto(f"{served.base}/ui/at-risk")
    assert "/ui/sign-in" in page.url and "next=" in page.url
    assert page.query_selector("input[name=key]")


def test_another_tenant_sees_nothing_of_ours(context: Any, served: Served) -> None:
    page = context.new_page()
    sign_in(page, served, "globex")
    assert "globex" in page.inner_text("header")
    ours = [BUYER_PREFIX, "gold", "silver", "Gold", "Silver"]
    for _, href in nav_links(page):
        page.goto(served.base + href)
        text = page.inner_text("main")
        assert not [word for word in ours if word in text], href
    page.goto(f"{served.base}/ui/offers?days=30")
    assert "globex-secret" in page.inner_text("main")  # its own data is there
    response = page.goto(f"{served.base}/ui/customer?customer={BUYER_PREFIX}007")
    assert response is not None and response.status == 404
    assert BUYER_PREFIX not in page.inner_text("main").replace(f"'{BUYER_PREFIX}007'", "")
    screenshot(page, "other-tenant-profile-404")


def test_the_export_draws_the_same_charts_offline(
    context: Any, served: Served, tmp_path: Path
) -> None:
    if not SERVED_CHARTS:
        test_every_page_in_the_navigation_renders(context, served)
    # As of now, like the served pages (the back-test was stored after NOW).
    out = tmp_path / "report.html"
    out.write_text(export_report(served.host, "acme", datetime.now(UTC)), encoding="utf-8")
    requested: list[str] = []

    def block(route: Any) -> None:
        requested.append(route.request.url)
        route.abort()

    context.route(re.compile(r"^https?://"), block)
    page = context.new_page()
    page.goto(out.as_uri())
    sections = page.eval_on_selector_all("section.nb-page", "els => els.map(e => e.id)")
    for section in sections:
        name = section.removeprefix("page-")
        drawn = charts(page, f"#{section}")
        # The same charts with the same number of bars, points and lines as served.
        assert drawn == SERVED_CHARTS.get(name, []), name
    assert requested == []
    print(screenshot(page, "export"))


def test_customer_page_draws_the_clv_history(context: Any, served: Served) -> None:
    page = context.new_page()
    sign_in(page, served)
    page.goto(f"{served.base}/ui/customer?customer={BUYER_PREFIX}007")
    rows = table(page, "clv-history")
    assert 1 <= len(rows) <= 2  # the seeded snapshots that hold this buyer
    drawn = dict(charts(page))
    history = [title for title in drawn if title.endswith(" per snapshot")]
    assert history and drawn[history[0]] > 0, drawn
    screenshot(page, "page-customer-clv-history")


def test_a_signed_out_cookie_replayed_in_the_browser_is_refused(
    context: Any, served: Served
) -> None:
    page = context.new_page()
    sign_in(page, served)
    kept = [c for c in context.cookies() if c["name"] == COOKIE]
    page.click("form.nb-sign-out button")
    assert "/ui/sign-in" in page.url
    context.add_cookies(kept)  # the old cookie, replayed
    page.goto(f"{served.base}/ui/overview")
    assert "/ui/sign-in" in page.url
