"""``nextbest report``: one self-contained HTML file with every page, no network reference,
Plotly inlined once; and, where Debian's Chromium is installed (``.ci/run`` installs it in
CI), the file opens from disk with the network blocked and draws its charts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from uikit import CHROMIUM, PEPPER, dump_dom_offline, seed

from nextbest.cli import build_cli
from nextbest.store import open_store

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


@pytest.fixture
def exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NEXTBEST_PLUGINS", "builtin,report,clv")
    url = f"sqlite:///{tmp_path / 'report.db'}"
    with open_store(url, pepper=PEPPER) as store:
        store.upgrade()
        seed(store)
    monkeypatch.setenv("NEXTBEST_API_KEY_PEPPER", PEPPER.decode())
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        build_cli(), ["report", "--tenant", "acme", "--out", str(out), "--database", url]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(str(out))
    return out


def test_the_file_holds_every_page_and_no_network_reference(exported: Path) -> None:
    html = exported.read_text(encoding="utf-8")
    assert re.findall(r'<section class="nb-page" id="page-([a-z-]+)"', html) == PAGES
    assert re.findall(r'<li><a href="#page-([a-z-]+)"', html) == PAGES
    # Everything inline: no element loads anything, from the network or elsewhere.
    assert re.findall(r"<(?:script|link|img|iframe|object|embed)\b[^>]*\b(?:src|href)=", html) == []
    markup = re.sub(r"<script>.*?</script>", "", html, flags=re.DOTALL)  # the page, not the JS
    assert not re.search(r'<a\s[^>]*href="(?:https?:)?//', markup)
    assert html.count("<script>") == 2  # Plotly's bundled JS once, then the chart script
    assert html.count('class="nb-spec"') >= 8
    assert "<form" not in html  # no server answers forms offline
    assert "Download CSV" not in html and "gold" in html


def test_the_command_checks_its_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTBEST_PLUGINS", "builtin,report")
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_store(url, pepper=PEPPER) as store:
        store.upgrade()
    runner = CliRunner()
    missing = runner.invoke(
        build_cli(),
        ["report", "--tenant", "ghost", "--out", str(tmp_path / "r.html"), "--database", url],
    )
    assert missing.exit_code != 0 and "tenant 'ghost' does not exist" in missing.output
    bad_time = runner.invoke(
        build_cli(),
        ["report", "--tenant", "x", "--out", "r.html", "--as-of", "soon", "--database", url],
    )
    assert bad_time.exit_code == 2 and "--as-of" in bad_time.output


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (CI installs Debian's chromium through .ci/run)",
)
def test_the_file_draws_its_charts_in_chromium_without_network(exported: Path) -> None:
    dom = dump_dom_offline(exported)
    figures = re.findall(r'<figure class="nb-chart"[^>]*>', dom)
    assert figures and all('data-rendered="true"' in f for f in figures)
    assert dom.count('class="main-svg"') >= len(figures)  # Plotly's SVG per chart
    assert "Customers per segment" in dom
