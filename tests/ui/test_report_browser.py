"""The web report in a real browser: Playwright for Python driving Debian's Chromium
(``/usr/bin/chromium``; .ci/run installs it) against ``nextbest serve``'s app in a real HTTP
server over a seeded SQLite store.

A tenant ``acme`` with a year and a half of purchases (CLV records, two snapshots, a stored
back-test, offers, a published flow) and a tenant ``globex`` with its own data. The tests sign
in through the form, open every page in the navigation (so a page a plugin adds is visited
too), check that the charts drew (Plotly's SVG with data) and the tables hold the seeded rows,
sort, paginate and download the at-risk table, sign out, check that another tenant's viewer
sees nothing of ours, and open the exported file from disk with every network request refused.

Screenshots of each page go to ``build/screenshots/`` (git-ignored; a test artifact, never
committed). Outside CI a missing Chromium or Playwright skips with the reason; with
``CI=true`` they are required.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from nextbest import Host
from nextbest.api import create_app
from nextbest.store import InteractionIn, Store, open_store, to_epoch

IN_CI = os.environ.get("CI") == "true"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None  # type: ignore[assignment]

if CHROMIUM is None or sync_playwright is None:
    missing = "Chromium (apt-get install chromium)" if CHROMIUM is None else "playwright"
    if IN_CI:
        raise RuntimeError(f"browser tests need {missing}; .ci/run installs it in CI")
    pytest.skip(f"{missing} is not installed: browser tests skipped", allow_module_level=True)

PEPPER = b"browser-test-pepper"
NOW = datetime.now(UTC).replace(microsecond=0)
SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
CUSTOMERS = 140  # more than one page of the at-risk table (25 rows)
FLOW = {
    "key": "main",
    "version": 2,
    "nodes": [
        {"type": "inventory", "id": "all", "config": {"scope": "all", "statuses": ["active"]}},
        {"type": "score", "id": "score", "config": {"method": "priority_weighted"}},
        {"type": "rank", "id": "top", "config": {"maxCandidates": 2}},
    ],
}


@dataclass
class Served:
    """The report served over HTTP, with the keys of the seeded tenants."""

    base: str
    keys: dict[tuple[str, str], str]
    store_url: str


def _purchases(rng: np.random.Generator) -> list[InteractionIn]:
    """Repeat buyers of varied frequency and spend over 540 days, some of them gone quiet."""
    rows = []
    for i in range(CUSTOMERS):
        customer = f"m{i:03d}"
        first = NOW - timedelta(days=float(rng.uniform(200, 540)))
        rate = float(rng.gamma(1.5, 1 / 40))  # purchases per day while active
        life = float(rng.exponential(300))
        t, n = first, 0
        while t < NOW and t < first + timedelta(days=life):
            rows.append(
                InteractionIn(
                    customer_id=customer,
                    outcome="conversion",
                    idempotency_key=f"{customer}-{n}",
                    offer_id="gold" if n % 2 else "silver",
                    channel="web",
                    value=float(round(rng.gamma(2.0, 25.0) + 5, 2)),
                    occurred_at=t,
                )
            )
            rows.append(  # what was shown before the purchase, and one more not taken
                InteractionIn(
                    customer_id=customer,
                    outcome="impression",
                    idempotency_key=f"{customer}-{n}-shown",
                    offer_id="gold" if n % 2 else "silver",
                    channel="web",
                    occurred_at=t - timedelta(minutes=5),
                )
            )
            n += 1
            t += timedelta(days=float(rng.exponential(1 / rate)) + 1)
    return rows


def _seed(store: Store) -> dict[tuple[str, str], str]:
    from nextbest_clv.backtest.runs import run_backtest
    from nextbest_clv.service import service_for
    from nextbest_clv.service.batch_compute import compute_records

    keys = {}
    for tenant in ("acme", "globex"):
        store.create_tenant(tenant)
        for role in ("viewer", "admin"):
            keys[(tenant, role)] = store.create_api_key(tenant, role)[1]
    for tenant, offers in (("acme", ("gold", "silver")), ("globex", ("globex-secret",))):
        for offer in offers:
            store.put_offer(
                tenant, {"id": offer, "name": offer.title(), "priority": 50, "status": "active"}
            )
        store.publish_flow(tenant, "main", store.save_flow(tenant, "main", FLOW))
        store.set_default_flow(tenant, "main")
    store.record_interactions_bulk("acme", _purchases(np.random.default_rng(20261204)))
    store.record_interactions_bulk(
        "globex",
        [
            InteractionIn(
                customer_id=f"gx-{k}",
                outcome="conversion",
                idempotency_key=f"g{k}",
                offer_id="globex-secret",
                channel="web",
                value=999.0,
                occurred_at=NOW - timedelta(days=k + 1),
            )
            for k in range(3)
        ],
    )
    store.save_recommendation(
        "acme", "r1", "m001", [(1, "gold", 1.0)], flow_key="main", flow_version=1,
        created_at=NOW - timedelta(hours=2),
    )  # fmt: skip
    host = Host(store=store)
    service = service_for(host)
    for tenant in ("acme", "globex"):  # two snapshots each: trends and a migration
        compute_records(service, tenant, as_of=to_epoch(NOW - timedelta(days=30)))
        compute_records(service, tenant)
    run_backtest(
        store,
        "acme",
        "bgnbd",
        service.get_settings("acme"),
        calibration_end=to_epoch(NOW - timedelta(days=120)),
    )
    return keys


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    import uvicorn

    os.environ["NEXTBEST_PLUGINS"] = "builtin,report,clv"
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'report.db'}"
    store = open_store(url, pepper=PEPPER)
    store.upgrade()
    keys = _seed(store)
    app = create_app(Host(store=store), store)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{port}", keys, url)
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()
        os.environ.pop("NEXTBEST_PLUGINS", None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert sync_playwright is not None and CHROMIUM is not None
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    yield tab
    context.close()


def sign_in(page: Page, served: Served, tenant: str = "acme", role: str = "viewer") -> None:
    page.goto(f"{served.base}/ui/")
    page.fill("input[name=tenant]", tenant)
    page.fill("input[name=key]", served.keys[(tenant, role)])
    page.click("button[type=submit]")
    page.wait_for_selector("nav.nb-nav")


def nav_links(page: Page) -> list[tuple[str, str]]:
    links = page.eval_on_selector_all(
        "nav.nb-nav a", "els => els.map(e => [e.textContent.trim(), e.getAttribute('href')])"
    )
    return [(str(title), str(href)) for title, href in links]


def charts_drawn(page: Page) -> list[dict[str, Any]]:
    """Each chart's state once every Plotly chart on the page has drawn: its title, whether
    it is marked empty, and the number of data marks (bars, points, lines, heat cells)."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('figure.nb-chart')]"
        ".every(f => f.dataset.rendered === 'true')"
    )
    found = page.eval_on_selector_all(
        "figure.nb-chart",
        """els => els.map(f => ({
            title: f.getAttribute('aria-label'),
            empty: !!f.querySelector('figcaption.nb-note'),
            svg: f.querySelectorAll('svg.main-svg').length,
            marks: f.querySelectorAll(
              'g.trace path.point, g.trace path.js-line, g.trace path.js-fill, '
              + 'g.bars path, g.points path, g.heatmaplayer image, g.hm image'
            ).length,
        }))""",
    )
    return list(found)


def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def table_rows(page: Page, table_id: str) -> list[list[str]]:
    return [
        [str(c) for c in row]
        for row in page.eval_on_selector_all(
            f"#table-{table_id} tbody tr",
            "rows => rows.map(r => [...r.children].map(c => c.textContent.trim()))",
        )
    ]


# -- tests ----------------------------------------------------------------------------------------
def test_a_wrong_key_is_refused_and_sets_no_session(page: Page, served: Served) -> None:
    page.goto(f"{served.base}/ui/")
    assert page.url.startswith(f"{served.base}/ui/sign-in")
    page.fill("input[name=tenant]", "acme")
    page.fill("input[name=key]", "nb_not-a-key")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").is_visible()
    assert "nextbest_ui" not in {c["name"] for c in page.context.cookies()}
    assert page.locator("nav.nb-nav").count() == 0


def test_every_page_renders_its_charts_and_tables(page: Page, served: Served) -> None:
    sign_in(page, served)
    session = next(c for c in page.context.cookies() if c["name"] == "nextbest_ui")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    links = nav_links(page)
    names = [href.rsplit("/", 1)[-1] for _, href in links]
    for expected in ("overview", "distribution", "migration", "at-risk", "predicted-vs-actual",
                     "customer", "offers", "lift", "triggers"):  # fmt: skip
        assert expected in names
    drawn_with_data = 0
    for title, href in links:
        response = page.goto(f"{served.base}{href}")
        assert response is not None and response.status == 200, href
        assert page.locator("h1").inner_text() == title
        charts = charts_drawn(page)
        for chart in charts:
            assert chart["svg"] >= 1, (href, chart)  # drawn, even when it says "no data yet"
            if not chart["empty"]:
                assert chart["marks"] > 0, (href, chart)
                drawn_with_data += 1
        shoot(page, href.rsplit("/", 1)[-1])
    assert drawn_with_data >= 8
    # the seeded numbers: every acme customer on the overview; offers per offer
    page.goto(f"{served.base}/ui/overview")
    customers = page.locator(".nb-stat:has(dt:text-is('Customers')) dd").first.inner_text()
    assert customers.split()[0] == str(CUSTOMERS)
    page.goto(f"{served.base}/ui/offers")
    offers = {row[0] for table in ("offers",) for row in table_rows(page, table)}
    assert {"gold", "silver"} <= offers
    page.goto(f"{served.base}/ui/migration")
    assert page.locator("table").count() >= 1
    page.goto(f"{served.base}/ui/predicted-vs-actual")
    assert table_rows(page, "backtests")[0][1] == "bgnbd"
    page.goto(f"{served.base}/ui/customer?customer=m001")
    assert "m001" in page.locator("main").inner_text()
    shoot(page, "customer-m001")


def test_the_at_risk_table_sorts_paginates_and_downloads(page: Page, served: Served) -> None:
    sign_in(page, served)
    page.goto(f"{served.base}/ui/at-risk")
    first = table_rows(page, "at-risk")
    assert len(first) == 25
    foot = page.locator(".nb-table-foot").first.inner_text()
    total = int(re.search(r"of (\d+)", foot)[1])  # type: ignore[index]
    assert total > 25
    at_risk = [float(r[headers_index(page, "at-risk", "at risk")].replace(",", "")) for r in first]
    assert at_risk == sorted(at_risk, reverse=True)  # by value at risk, largest first
    page.click("#table-at-risk + * a[rel=next], .nb-table-foot a[rel=next]")
    second = table_rows(page, "at-risk")
    assert second and {r[0] for r in second}.isdisjoint({r[0] for r in first})
    # sort by customer: click the header (descending first), then again (ascending)
    page.click("#table-at-risk thead a:has-text('Customer')")
    by_customer = [r[0] for r in table_rows(page, "at-risk")]
    if by_customer != sorted(by_customer):
        page.click("#table-at-risk thead a:has-text('Customer')")
        by_customer = [r[0] for r in table_rows(page, "at-risk")]
    assert by_customer == sorted(by_customer)
    assert by_customer[0] == "m000"
    with page.expect_download() as caught:
        page.click("a:has-text('Download CSV')")
    download = caught.value
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert rows[0][0] == "Customer" and rows[0][-1] == "Top offer"
    assert len(rows) - 1 == total
    assert {r[-1] for r in rows[1:]} <= {"gold", "silver", ""}
    shoot(page, "at-risk-sorted")


def headers_index(page: Page, table_id: str, needle: str) -> int:
    headers = page.eval_on_selector_all(
        f"#table-{table_id} thead th", "hs => hs.map(h => h.textContent.trim().toLowerCase())"
    )
    return next(i for i, h in enumerate(headers) if needle in h)


def test_sign_out_ends_the_session(page: Page, served: Served) -> None:
    sign_in(page, served)
    page.click("form.nb-sign-out button")
    page.wait_for_url(re.compile(r".*/ui/sign-in.*"))
    page.goto(f"{served.base}/ui/overview")
    assert "/ui/sign-in" in page.url
    assert page.locator("nav.nb-nav").count() == 0


def test_another_tenants_viewer_sees_nothing_of_ours(page: Page, served: Served) -> None:
    sign_in(page, served, tenant="globex")
    for _, href in nav_links(page):
        page.goto(f"{served.base}{href}")
        charts_drawn(page)
        # what the page shows and the data behind its charts (not Plotly's SVG paths)
        specs = page.eval_on_selector_all("script.nb-spec", "s => s.map(x => x.textContent)")
        text = page.locator("main").inner_text() + "\n".join(str(x) for x in specs)
        assert "globex" in page.locator("header").inner_text()
        assert "silver" not in text.lower() and "gold" not in text.lower(), href
        assert not re.search(r"\bm\d{3}\b", text), href
    response = page.goto(f"{served.base}/ui/customer?customer=m001")
    assert response is not None and response.status == 404
    response = page.goto(f"{served.base}/api/v1/customers/m001/profile")
    assert response is not None and response.status in (401, 403, 404)


def test_the_exported_file_draws_the_same_charts_offline(
    page: Page, browser: Browser, served: Served, tmp_path: Path
) -> None:
    from nextbest.cli import build_cli

    out = tmp_path / "report.html"
    os.environ["NEXTBEST_API_KEY_PEPPER"] = PEPPER.decode()
    try:
        result = CliRunner().invoke(
            build_cli(),
            ["report", "--tenant", "acme", "--out", str(out), "--database", served.store_url],
        )
    finally:
        os.environ.pop("NEXTBEST_API_KEY_PEPPER", None)
    assert result.exit_code == 0, result.output
    requested: list[str] = []

    def refuse(route: Any) -> None:
        requested.append(route.request.url)
        route.abort()

    page.context.route(re.compile(r"^https?://.*"), refuse)
    page.goto(out.as_uri())
    offline = charts_drawn(page)
    assert requested == []  # nothing was even asked of the network
    sections = page.eval_on_selector_all("section.nb-page", "s => s.map(x => x.id)")
    assert "page-overview" in sections and "page-at-risk" in sections
    assert all(c["svg"] >= 1 for c in offline)
    with_data = [c["title"] for c in offline if not c["empty"] and c["marks"] > 0]
    # the served overview's charts are in the file too, drawn
    online = browser.new_context()
    tab = online.new_page()
    sign_in(tab, served)
    tab.goto(f"{served.base}/ui/overview")
    served_titles = {c["title"] for c in charts_drawn(tab) if not c["empty"]}
    online.close()
    assert served_titles and served_titles <= set(with_data)
    shoot(page, "export")
