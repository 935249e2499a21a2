"""The Simulations page: runs made by the real engine (one plain, one with a compared flow)
listed newest first, a chosen run's result with the hand-checked numbers, both flows side by
side and the customers whose top offer changes; running and failed runs; another tenant sees
none of it; bad and unknown run ids are 400 and 404; the export holds the page."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from uikit import CHROMIUM, NOW, PEPPER, Ui, dump_dom_offline, seed

from nextbest import Chart, DecisionService, Host, Table, Text
from nextbest.cli import build_cli
from nextbest.simulate import parse_options, submit
from nextbest.simulate.result import FlowTally, Shown
from nextbest.store import Store, open_store
from nextbest.ui.simulation_blocks import MAX_CHART_OFFERS, flow_blocks

#: Only customers with a conversion qualify: c1 of the seeded c0, c1, c2.
BUYERS = {
    "key": "buyers",
    "version": 2,
    "nodes": [
        {"type": "inventory", "id": "all", "config": {"scope": "all", "statuses": ["active"]}},
        {
            "type": "qualify",
            "id": "rules",
            "config": {
                "rules": [
                    {
                        "id": "buyers-only",
                        "ruleType": "metric_condition",
                        "scope": "global",
                        "config": {"metric": "metrics.conversions", "operator": "gte", "value": 1},
                    }
                ]
            },
        },
        {"type": "score", "id": "score", "config": {"method": "priority_weighted"}},
        {"type": "rank", "id": "top", "config": {"maxCandidates": 1}},
    ],
}


def run_simulations(store: Store) -> tuple[str, str]:
    """Priced offers and the ``buyers`` flow for acme, then two runs by the real engine: the
    published ``main`` alone, then ``main`` compared with ``buyers``. Returns their ids.

    Hand-checked: ``main`` shows gold (rank 1, propensity 0.5 x value 40) and silver (rank 2,
    0.2 x 10) to c0, c1 and c2: expected value 3 x 22 = 66, conversions 3 x 0.7 = 2.1.
    ``buyers`` shows gold to c1 only: 20 and 0.5, coverage 1/3, and c0 and c2 lose gold."""
    store.put_offer(
        "acme",
        {"id": "gold", "name": "Gold", "priority": 50, "status": "active",
         "propensity": 0.5, "businessValue": 40},
    )  # fmt: skip
    store.put_offer(
        "acme",
        {"id": "silver", "name": "Silver", "priority": 40, "status": "active",
         "propensity": 0.2, "businessValue": 10},
    )  # fmt: skip
    store.publish_flow("acme", "buyers", store.save_flow("acme", "buyers", BUYERS))
    service = DecisionService(Host(store=store), store)
    plain = submit(service, "acme", parse_options({"flow": "main"}, now=NOW), background=False)
    compared = submit(
        service,
        "acme",
        parse_options({"flow": "main", "compare": "buyers"}, now=NOW),
        background=False,
    )
    return plain.simulation_id, compared.simulation_id


def table_csv(ui: Ui, table: str, query: str = "") -> list[list[str]]:
    response = ui.client.get(f"/ui/simulations/{table}.csv{query}")
    assert response.status_code == 200, response.text[-500:]
    return list(csv.reader(io.StringIO(response.text)))


def run_ids(text: str) -> list[str]:
    """The runs table's first column (the run ids), in order."""
    table = re.search(r'<table id="table-runs">.*?</table>', text, flags=re.DOTALL)
    assert table, text[-2000:]
    return re.findall(r'<tr><th scope="row">([^<]+)</th>', table[0])


@pytest.fixture
def runs(ui: Ui) -> tuple[str, str]:
    return run_simulations(ui.store)


def test_the_newest_finished_run_shows_both_flows_side_by_side(
    ui: Ui, runs: tuple[str, str]
) -> None:
    plain, compared = runs
    assert ui.sign_in(role="viewer").status_code == 303
    page = ui.client.get("/ui/simulations")
    assert page.status_code == 200, page.text[-800:]
    assert run_ids(page.text) == sorted([plain, compared], reverse=True) == [compared, plain]
    assert f'<option value="{compared}" selected>' in page.text
    assert "Side by side: main@1 and buyers@1" in page.text
    assert 'class="nb-spec"' in page.text and '<th scope="col"' in page.text
    assert "<caption>main@1 and buyers@1 side by side</caption>" in page.text

    figures = {r[0]: (r[1], [float(v) for v in r[2:]]) for r in table_csv(ui, "side-by-side")[1:]}
    assert figures["Coverage"] == ("%", pytest.approx([100.0, 100 / 3, -200 / 3]))
    assert figures["Expected value"] == ("money", pytest.approx([66.0, 20.0, -46.0]))
    assert figures["Expected conversions"] == ("count", pytest.approx([2.1, 0.5, -1.6]))
    assert figures["Without an offer"] == ("count", [0, 2, 2])
    mix = {r[0]: r[1:] for r in table_csv(ui, "side-mix")[1:]}
    assert mix == {"gold": ["3", "3", "1", "1", "-2"], "silver": ["3", "0", "0", "0", "-3"]}
    changes = table_csv(ui, "changes")
    assert changes[1:] == [["gold", "(none)", "2", "c0, c2"]]
    blocking = table_csv(ui, "blocking-2")
    assert blocking[1:] == [["buyers-only", "2", "100.0"]]
    text = page.text
    assert "<dt>Top offer changes</dt><dd>2 <span" in text
    assert "<dt>Changed</dt><dd>66.67 <span" in text
    assert "Every customer gets an offer from main@1." in text


def test_a_chosen_run_shows_its_offer_mix_and_breakdown(ui: Ui, runs: tuple[str, str]) -> None:
    plain, _ = runs
    ui.sign_in()
    page = ui.client.get(f"/ui/simulations?run={plain}")
    assert page.status_code == 200
    assert f'<option value="{plain}" selected>' in page.text
    assert "Side by side" not in page.text and "Offer mix of main@1 by rank" in page.text
    stats = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+?)(?: <span|</dd>)", page.text))
    assert stats["Expected value"] == "66.00" and stats["Expected conversions"] == "2.10"
    assert stats["Coverage"] == "100.00" and stats["Customers"] == "3"
    query = f"?run={plain}"
    mix = table_csv(ui, "mix-1", query)
    assert mix[0] == ["Offer", "Shown (count)", "Share of customers (%)",
                      "Rank 1 (count)", "Rank 2 (count)"]  # fmt: skip
    assert mix[1:] == [["gold", "3", "100.0", "3", "0"], ["silver", "3", "100.0", "0", "3"]]
    # The breakdown the CLV plugin suggests (report_dimensions), one row per segment.
    record = ui.store.get_simulation("acme", plain)
    assert record is not None and record.result is not None
    by_value: dict[str, Any] = record.result["flows"][0]["byValue"]
    assert record.result["by"] == "customer.clv.segment" and by_value
    segments = table_csv(ui, "segments-1", query)
    assert segments[0][0] == "customer.clv.segment"
    assert {r[0]: (int(r[1]), float(r[3])) for r in segments[1:]} == {
        v: (t["customers"], t["expectedValue"]) for v, t in by_value.items()
    }
    assert sum(int(r[1]) for r in segments[1:]) == 3
    assert "Expected value by customer.clv.segment of main@1" in page.text


def test_runs_under_way_and_failed_runs_show_their_state(ui: Ui, runs: tuple[str, str]) -> None:
    service = DecisionService(ui.host, ui.store)
    failed = submit(
        service,
        "acme",
        parse_options({"flow": "main", "segment": "nobody"}, now=NOW),
        background=False,
    )
    running = ui.store.create_simulation("acme", "sim_running", {"flow": "main"})
    ui.store.update_simulation("acme", running.simulation_id, status="running", done=500,
                               total=2000)  # fmt: skip
    ui.sign_in()
    page = ui.client.get("/ui/simulations")
    assert "failed" in page.text and "running (25 %)" in page.text
    # the default stays the newest finished run
    assert f'<option value="{runs[1]}" selected>' in page.text
    shown = ui.client.get(f"/ui/simulations?run={failed.simulation_id}").text
    record = ui.store.get_simulation("acme", failed.simulation_id)
    assert record is not None and record.status == "failed" and record.error
    assert "segment" in record.error and record.error in shown.replace("&#39;", "'")
    under_way = ui.client.get("/ui/simulations?run=sim_running").text
    assert "<dt>Progress</dt><dd>25.00 <span" in under_way
    assert "<dt>Customers done</dt><dd>500 <span" in under_way
    assert "Reload the page to follow it" in under_way


def test_another_tenant_sees_none_of_the_runs(ui: Ui, runs: tuple[str, str]) -> None:
    ui.sign_in("globex")
    page = ui.client.get("/ui/simulations")
    assert page.status_code == 200
    assert "no simulation runs yet" in page.text
    assert all(run not in page.text for run in runs)
    for run in runs:
        other = ui.client.get(f"/ui/simulations?run={run}")
        assert other.status_code == 404 and run in other.text  # the id asked, nothing else
        assert "main@1" not in other.text
        assert ui.client.get(f"/ui/simulations/changes.csv?run={run}").status_code == 404


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("run=sim_00000000000000000000000000", 404, None),
        ("run=nope", 404, None),
        ("run=" + "x" * 300, 400, "query.run"),
        ("run=%00", 400, "query.run"),
        ("runs.sort=status", 400, "query.runs.sort"),
        ("runs.page=0", 400, "query.runs.page"),
    ],
)
def test_bad_and_unknown_run_ids(
    ui: Ui, runs: tuple[str, str], query: str, status: int, field: str | None
) -> None:
    ui.sign_in()
    response = ui.client.get(f"/ui/simulations?{query}")
    assert response.status_code == status, response.text[-500:]
    if field is not None:
        assert f"<code>{field}</code>" in response.text


def test_a_tenant_without_runs(ui: Ui) -> None:
    ui.sign_in("empty")
    page = ui.client.get("/ui/simulations")
    assert page.status_code == 200 and "no simulation runs yet" in page.text
    assert ui.client.get("/ui/simulations?run=sim_x").status_code == 404


@pytest.fixture
def exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """The acme report with the two runs, exported by ``nextbest report``; the compared run."""
    monkeypatch.setenv("NEXTBEST_PLUGINS", "builtin,report,clv")
    url = f"sqlite:///{tmp_path / 'report.db'}"
    with open_store(url, pepper=PEPPER) as store:
        store.upgrade()
        seed(store)
        _, compared = run_simulations(store)
    monkeypatch.setenv("NEXTBEST_API_KEY_PEPPER", PEPPER.decode())
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        build_cli(), ["report", "--tenant", "acme", "--out", str(out), "--database", url]
    )
    assert result.exit_code == 0, result.output
    return out, compared


def _simulations_section(html: str) -> str:
    section = re.search(
        r'<section class="nb-page" id="page-simulations">.*?(?=<section class="nb-page"|\Z)',
        html,
        flags=re.DOTALL,
    )
    assert section, "the export has no Simulations page"
    return section[0]


def test_the_export_holds_the_newest_finished_run(exported: tuple[Path, str]) -> None:
    out, compared = exported
    text = _simulations_section(out.read_text(encoding="utf-8"))
    assert f"Run {compared}: main@1 and buyers@1" in text
    assert "<caption>main@1 and buyers@1 side by side</caption>" in text
    assert '<th scope="row">Expected value</th><td>money</td>' in text
    assert text.count('class="nb-spec"') >= 4  # side by side, two offer mixes, breakdowns
    assert "<form" not in text and "Download CSV" not in text


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (CI installs Debian's chromium through .ci/run)",
)
def test_the_exported_page_draws_its_charts_offline(exported: tuple[Path, str]) -> None:
    dom = _simulations_section(dump_dom_offline(exported[0]))
    figures = re.findall(r'<figure class="nb-chart"[^>]*>', dom)
    assert len(figures) == 6  # side by side: offers, segments; per flow: mix, segments
    assert all('data-rendered="true"' in f for f in figures)
    assert dom.count('class="main-svg"') >= len(figures)  # Plotly's SVG per chart


def test_a_flow_compared_with_itself(ui: Ui) -> None:
    run_simulations(ui.store)
    service = DecisionService(ui.host, ui.store)
    same = submit(
        service, "acme", parse_options({"flow": "main", "compare": "main@1"}, now=NOW),
        background=False,
    )  # fmt: skip
    ui.sign_in()
    text = ui.client.get(f"/ui/simulations?run={same.simulation_id}").text
    assert "Side by side: main@1 (first) and main@1 (second)" in text
    assert "No customer&#39;s top offer changes." in text
    figures = {r[0]: r[1:] for r in table_csv(ui, "side-by-side", f"?run={same.simulation_id}")}
    assert figures["Figure"][1:] == ["main@1 (first)", "main@1 (second)",
                                     "Change (main@1 (second) minus main@1 (first))"]  # fmt: skip
    assert figures["Expected value"] == ["money", "66.0", "66.0", "0.0"]


def test_failed_decisions_and_many_offers_are_said() -> None:
    tally = FlowTally("wide", 3)
    offers = [f"offer-{i:02d}" for i in range(MAX_CHART_OFFERS + 5)]
    tally.add("high", [Shown(o, 1, 0.1, 10.0) for o in offers])
    tally.add(None, [], ["cap"])
    tally.failed("c9", RuntimeError("plugin down"))
    section = flow_blocks(tally.to_dict(), "segment", 1)
    charts = [b for b in section.blocks if isinstance(b, Chart)]
    tables = {b.id: b for b in section.blocks if isinstance(b, Table)}
    notes = [b for b in section.blocks if isinstance(b, Text) and b.kind == "note"]
    assert (
        len(charts[0].series[0].x) == MAX_CHART_OFFERS and "the table lists all" in charts[0].note
    )
    assert len(tables["mix-1"].rows) == MAX_CHART_OFFERS + 5
    assert tables["blocking-1"].rows == [["cap", 1, 100.0]]
    assert (
        "failed (not counted above): 1." in notes[0].body
        and "c9: RuntimeError: plugin down" in notes[0].body
    )
    assert [r[0] for r in tables["segments-1"].rows] == ["high"]


def _simulation_count(store: Store, tenant: str = "acme") -> int:
    return len(store.list_simulations(tenant, limit=1000).items)


def test_an_admin_starts_a_simulation_from_the_page(ui: Ui, runs: tuple[str, str]) -> None:
    ui.sign_in(role="admin")
    page = ui.client.get("/ui/simulations").text
    assert '<form class="nb-form nb-start" method="post" action="/ui/simulations">' in page
    start = page[page.index("nb-start") : page.index("</form>", page.index("nb-start"))]
    assert re.findall(
        r'name="flow"><option value="(\w+)"[^>]*>\w+</option><option value="(\w+)"', start
    ) == [("buyers", "main")]  # the published flows
    before = _simulation_count(ui.store)
    started = ui.client.post(
        "/ui/simulations",
        data={"csrf": ui.csrf("/ui/simulations"), "flow": "main", "compare": "buyers",
              "sample": "", "seed": "", "asOf": NOW.isoformat()},
        follow_redirects=False,
    )  # fmt: skip
    assert started.status_code == 303, started.text[-500:]
    run = started.headers["location"].removeprefix("/ui/simulations?run=")
    assert _simulation_count(ui.store) == before + 1
    deadline = time.monotonic() + 60
    while (record := ui.store.get_simulation("acme", run)) is not None and record.status not in (
        "done",
        "failed",
    ):
        assert time.monotonic() < deadline, "the run did not finish"
        time.sleep(0.05)
    assert record is not None and record.status == "done", record
    assert record.inputs["compare"] == "buyers"
    figures = {r[0]: r[1:] for r in table_csv(ui, "side-by-side", f"?run={run}")}
    assert figures["Expected value"] == ["money", "66.0", "20.0", "-46.0"]


def test_only_an_admin_with_the_token_starts_one(ui: Ui, runs: tuple[str, str]) -> None:
    before = _simulation_count(ui.store)
    ui.sign_in(role="viewer")
    assert "nb-start" not in ui.client.get("/ui/simulations").text
    token = ui.csrf("/ui/simulations")
    refused = ui.client.post("/ui/simulations", data={"csrf": token, "flow": "main"})
    assert refused.status_code == 403 and "admin role" in refused.text
    ui.sign_in(role="admin")
    no_token = ui.client.post("/ui/simulations", data={"flow": "main"})
    assert no_token.status_code == 403 and "CSRF" in no_token.text
    ui.client.cookies.clear()
    signed_out = ui.client.post("/ui/simulations", data={"flow": "main"}, follow_redirects=False)
    assert signed_out.status_code == 303 and "/ui/sign-in" in signed_out.headers["location"]
    assert _simulation_count(ui.store) == before


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"flow": ""}, "form.flow"),
        ({"flow": "ghost"}, "form.flow"),
        ({"flow": "main", "compare": "ghost"}, "form.compare"),
        ({"flow": "main", "compare": "main@99"}, "form.compare"),
        ({"flow": "main", "sample": "5"}, "form.sample"),
        ({"flow": "main", "sample": "0", "seed": "1"}, "form.sample"),
        ({"flow": "main", "asOf": "soon"}, "form.asOf"),
    ],
)
def test_bad_start_forms_are_400_naming_the_field(
    ui: Ui, runs: tuple[str, str], form: dict[str, str], field: str
) -> None:
    before = _simulation_count(ui.store)
    ui.sign_in(role="admin")
    response = ui.client.post("/ui/simulations", data={"csrf": ui.csrf(), **form})
    assert response.status_code == 400, response.text[-500:]
    assert f"<code>{field}</code>" in response.text
    assert _simulation_count(ui.store) == before


def test_another_tenants_admin_cannot_run_our_flows(ui: Ui, runs: tuple[str, str]) -> None:
    ui.sign_in("globex", "admin")
    response = ui.client.post("/ui/simulations", data={"csrf": ui.csrf(), "flow": "buyers"})
    assert response.status_code == 400 and "<code>form.flow</code>" in response.text
    assert _simulation_count(ui.store, "globex") == 0


def test_a_start_while_the_tenants_run_is_under_way_is_409(ui: Ui, runs: tuple[str, str]) -> None:
    running = ui.store.create_simulation("acme", "sim_zz_running", {"flow": "main"})
    ui.store.update_simulation("acme", running.simulation_id, status="running")
    before = _simulation_count(ui.store)
    ui.sign_in(role="admin")
    response = ui.client.post("/ui/simulations", data={"csrf": ui.csrf(), "flow": "main"})
    assert response.status_code == 409, response.text[-500:]
    text = response.text.replace("&#39;", "'")
    assert "simulation 'sim_zz_running' of the tenant is running" in text
    assert _simulation_count(ui.store) == before


def test_a_run_of_the_cli_shows_on_the_page(
    ui: Ui, runs: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = ui.store.url  # type: ignore[attr-defined]
    if not url.startswith("sqlite"):
        pytest.skip("the command opens the database by URL: the throwaway schema is not in it")
    monkeypatch.setenv("NEXTBEST_API_KEY_PEPPER", PEPPER.decode())
    result = CliRunner().invoke(
        build_cli(),
        ["simulate", "--tenant", "acme", "--flow", "main", "--compare", "buyers",
         "--as-of", NOW.isoformat(), "--json", "--database", url],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)["simulationId"]
    listed = ui.store.list_simulations("acme").items
    assert listed[0].simulation_id == run and listed[0].status == "done"
    ui.sign_in()
    page = ui.client.get("/ui/simulations").text
    assert run_ids(page)[0] == run
    assert f'<option value="{run}" selected>' in page  # the newest finished run is shown
    figures = {r[0]: r[1:] for r in table_csv(ui, "side-by-side", f"?run={run}")}
    assert figures["Expected value"] == ["money", "66.0", "20.0", "-46.0"]
