"""The report page contract: blocks check their shape, PageRequest reads and checks query
parameters, and register_report_pages refuses bad or duplicate pages naming the plugin."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nextbest import (
    Axis,
    Chart,
    Column,
    FormField,
    Host,
    PageInputError,
    PageRequest,
    PluginError,
    ReportPage,
    Series,
    Stat,
    Table,
    TableQuery,
    Text,
    hookimpl,
)
from nextbest.plugin_api import CSV_MAX_ROWS

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def request(params: dict[str, str], **kw: object) -> PageRequest:
    return PageRequest(Host(plugins=[]), "t1", params, NOW, **kw)  # type: ignore[arg-type]


def test_charts_check_their_series() -> None:
    Chart("line", "T", Axis("Day"), Axis("Value", "EUR"), [Series("a", [1, 2], [3.0, None])])
    with pytest.raises(ValueError, match="same length"):
        Chart("line", "T", Axis("Day"), Axis("V"), [Series("a", [1, 2], [3.0])])
    with pytest.raises(ValueError, match="bin edges"):
        Chart("histogram", "T", Axis("V"), Axis("N"), [Series("a", [0, 1], [3, 4])])
    Chart("histogram", "T", Axis("V"), Axis("N"), [Series("a", [0, 1, 2], [3, 4])])
    with pytest.raises(ValueError, match="lower and upper"):
        Chart("band", "T", Axis("D"), Axis("V"), [Series("a", [1], [2])])
    with pytest.raises(ValueError, match="z needs"):
        Chart("heatmap", "T", Axis("to"), Axis("from"), [Series("m", ["a", "b"], ["a"], z=[[1]])])
    with pytest.raises(ValueError, match="finite"):
        Chart("bar", "T", Axis("D"), Axis("V"), [Series("a", [1], [float("nan")])])
    with pytest.raises(ValueError, match="kind"):
        Chart("pie", "T", Axis("D"), Axis("V"), [])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="axes need a label"):
        Chart("bar", "T", Axis(""), Axis("V"), [])
    with pytest.raises(ValueError, match="finite"):
        Stat("x", float("inf"))
    assert Axis("Value", "EUR").text == "Value (EUR)"


def test_tables_check_rows_ids_and_captions() -> None:
    cols = [Column("a", "A"), Column("b", "B")]
    with pytest.raises(ValueError, match="row 0 has 1 values"):
        Table("t", "Caption", cols, [[1]])
    with pytest.raises(ValueError, match="table id"):
        Table("Bad Id", "Caption", cols, [])
    with pytest.raises(ValueError, match="caption"):
        Table("t", " ", cols, [])
    with pytest.raises(ValueError, match="query is for table"):
        Table("t", "C", cols, [], TableQuery("u", "a", True, 1, 10))
    with pytest.raises(ValueError, match="needs options"):
        FormField("x", "X", "select")


def test_table_query_reads_and_checks_parameters() -> None:
    q = request({"risk.sort": "value", "risk.desc": "0", "risk.page": "3"}).table(
        "risk", sortable=["risk", "value"], default_sort="risk", page_size=10
    )
    assert (q.sort, q.descending, q.page, q.offset, q.csv) == ("value", False, 3, 20, False)
    default = request({}).table("risk", sortable=["risk"], default_sort="risk")
    assert (default.sort, default.descending, default.page) == ("risk", True, 1)
    for params, field in [
        ({"risk.sort": "secret"}, "query.risk.sort"),
        ({"risk.desc": "yes"}, "query.risk.desc"),
        ({"risk.page": "0"}, "query.risk.page"),
        ({"risk.page": "x"}, "query.risk.page"),
    ]:
        with pytest.raises(PageInputError) as info:
            request(params).table("risk", sortable=["risk"], default_sort="risk")
        assert info.value.field == field
    csv = request({"risk.page": "4"}, csv_table="risk").table(
        "risk", sortable=["risk"], default_sort="risk"
    )
    assert (csv.page, csv.page_size, csv.csv) == (1, CSV_MAX_ROWS, True)
    offline = request({"risk.page": "4"}, offline=True).table(
        "risk", sortable=["risk"], default_sort="risk"
    )
    assert offline.page == 1


def _pages(*pages: ReportPage) -> object:
    class Plugin:
        @hookimpl
        def register_report_pages(self, register):  # type: ignore[no-untyped-def]
            for page in pages:
                register(page)

    return Plugin()


def test_pages_are_registered_and_checked() -> None:
    page = ReportPage("mine", "Mine", 10, lambda r: [])
    host = Host(plugins=[_pages(page)])
    assert host.registry.report_pages["mine"] is page
    with pytest.raises(PluginError, match="must be 1-40 characters"):
        Host(plugins=[_pages(ReportPage("Bad Name", "X", 1, lambda r: []))])
    with pytest.raises(PluginError, match="already registered"):
        Host(plugins=[_pages(page), _pages(ReportPage("mine", "Other", 2, lambda r: []))])
    with pytest.raises(PluginError, match="needs a title"):
        Host(plugins=[_pages(ReportPage("x", " ", 1, lambda r: []))])


def test_profile_sections_attribute_failures_to_their_plugin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nextbest.profiles import plugin_sections

    monkeypatch.setenv("NEXTBEST_PLUGINS", "builtin")

    class Good:
        @hookimpl
        def customer_profile_sections(self, host, tenant_id, customer_id, as_of):  # type: ignore[no-untyped-def]
            return {"loyalty": {"points": 3, "customer": customer_id}}

    class Twice:
        @hookimpl
        def customer_profile_sections(self, customer_id):  # type: ignore[no-untyped-def]
            return {"loyalty": {"points": 999}, "bad": {"x": float("nan")}}

    class Broken:
        @hookimpl
        def customer_profile_sections(self):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    host = Host(plugins=[Good(), Twice(), Broken()])
    sections, failed = plugin_sections(host, "t1", "c1", NOW)
    assert sections == {"loyalty": {"points": 3, "customer": "c1"}}
    assert [(f["plugin"], f["reason"]) for f in failed] == [
        ("Twice", "section 'loyalty' answered twice"),
        ("Twice", "section 'bad' is not JSON"),
        ("Broken", "RuntimeError"),
    ]


def test_profile_blocks_follow_the_sections_and_failures_are_noted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nextbest.ui.customer_page import plugin_blocks

    monkeypatch.setenv("NEXTBEST_PLUGINS", "builtin")

    class Drawn:
        @hookimpl
        def customer_profile_blocks(self, customer_id, sections):  # type: ignore[no-untyped-def]
            points = sections["loyalty"]["points"]
            return [Text(f"{customer_id} has {points} points")]

    class Quiet:
        @hookimpl
        def customer_profile_blocks(self):  # type: ignore[no-untyped-def]
            return None

    class Broken:
        @hookimpl
        def customer_profile_blocks(self):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    host = Host(plugins=[Drawn(), Quiet(), Broken()])
    request = PageRequest(host, "t1", {}, NOW)
    blocks = plugin_blocks(request, "c1", {"loyalty": {"points": 3}})
    texts = sorted(b.body for b in blocks if isinstance(b, Text))
    assert texts == ["Plugin Broken: no blocks (RuntimeError).", "c1 has 3 points"]
