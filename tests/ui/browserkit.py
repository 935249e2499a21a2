"""Browser-test fixtures: the report served by a real HTTP server (uvicorn in a thread on a free
port) over a seeded SQLite store, and one headless Chromium (Debian's, through Playwright) for
the session.

The store holds ``acme`` (the report fixtures of uikit.py plus generated buyers, two CLV
snapshots from the plugin's batch compute and a stored back-test) and ``globex``. Without
Chromium or Playwright the tests skip, except under ``CI=true``, where they fail.
Screenshots go to ``build/screenshots/`` (git-ignored) and are listed at the end of the run.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn
from nextbest_clv.backtest.runs import run_backtest
from nextbest_clv.service import service_for
from nextbest_clv.service.batch_compute import compute_records
from uikit import NOW, PEPPER, seed

from nextbest import Host
from nextbest.api import create_app
from nextbest.store import InteractionIn, Store, open_store, to_epoch

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
#: Paths of the screenshots taken in this run (printed in the terminal summary).
TAKEN: list[Path] = []
BUYERS = 60
BUYER_PREFIX = "acme-buyer-"
CHROMIUM = os.environ.get("NEXTBEST_CHROMIUM") or shutil.which("chromium")


def _unavailable(reason: str) -> None:
    """Skip with ``reason``; under CI the browser tests must run, so fail instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run under CI: {reason}")
    pytest.skip(reason)


def add_buyers(store: Store, tenant: str, n: int = BUYERS, seed_: int = 11) -> list[str]:
    """``n`` customers with 1-8 conversions of offer ``gold`` over the last 300 days (values
    5-80, drawn from a seeded generator); returns their ids."""
    rng = np.random.default_rng(seed_)
    rows = []
    ids = [f"{BUYER_PREFIX}{i:03d}" for i in range(n)]
    for i, customer in enumerate(ids):
        first = float(rng.uniform(60, 300))
        count = int(rng.integers(1, 9))
        days = np.sort(rng.uniform(0, first, count))[::-1]
        for k, day in enumerate(days):
            rows.append(
                InteractionIn(
                    customer_id=customer,
                    outcome="conversion",
                    idempotency_key=f"b-{i}-{k}",
                    offer_id="gold",
                    channel="web",
                    value=round(float(rng.uniform(5, 80)), 2),
                    occurred_at=NOW - timedelta(days=float(day), hours=2),
                )
            )
    store.record_interactions_bulk(tenant, rows)
    return ids


@dataclass
class Served:
    """The report at ``base`` (``http://127.0.0.1:<port>``) with keys by (tenant, role)."""

    base: str
    host: Host
    store: Store
    keys: dict[tuple[str, str], str]
    buyers: list[str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    saved = {k: os.environ.get(k) for k in ("NEXTBEST_PLUGINS", "NEXTBEST_UI_SECRET")}
    os.environ["NEXTBEST_PLUGINS"] = "builtin,report,clv"
    os.environ.pop("NEXTBEST_UI_SECRET", None)
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'report.db'}"
    try:
        with open_store(url, pepper=PEPPER) as store:
            store.upgrade()
            keys = seed(store)
            buyers = add_buyers(store, "acme")
            host = Host(store=store)
            service = service_for(host)
            # Two snapshots a month apart (migration, history), then a back-test.
            compute_records(service, "acme", as_of=to_epoch(NOW - timedelta(days=30)))
            compute_records(service, "acme", as_of=to_epoch(NOW))
            run_backtest(store, "acme", "bgnbd", service.get_settings("acme"))
            port = _free_port()
            server = uvicorn.Server(
                uvicorn.Config(
                    create_app(host, store), host="127.0.0.1", port=port, log_level="warning"
                )
            )
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            deadline = time.monotonic() + 20
            while not server.started:
                assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
                time.sleep(0.02)
            try:
                yield Served(f"http://127.0.0.1:{port}", host, store, keys, buyers)
            finally:
                server.should_exit = True
                thread.join(timeout=10)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (make install adds it with the dev extras)")
    if CHROMIUM is None:
        _unavailable("Chromium is not installed (apt-get install chromium; .ci/run does in CI)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser context (own cookies) at a laptop width."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    ctx.set_default_timeout(15_000)
    try:
        yield ctx
    finally:
        ctx.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as ``build/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    TAKEN.append(path)
    return path
