"""The third-party example plugin in examples/plugins: registered directly and discovered through
its entry point (a ``*.dist-info/entry_points.txt`` on sys.path, as pip would install it)."""

from __future__ import annotations

import importlib
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest
from hostkit import compute, decide, drops, flow, ids, inventory, qualify, rank, rule, score

from nextbest import FlowValidationError, Host, PluginError
from nextbest.plugins import list_plugins

PLUGIN_DIR = (
    Path(__file__).resolve().parents[2] / "examples" / "plugins" / "nextbest-example-plugin"
)
OFFERS = [
    {"id": "a", "priority": 80, "businessValue": 200},
    {"id": "b", "priority": 50, "businessValue": 50},
]
DOC = flow(
    inventory(),
    qualify(rule("working-age", "attribute_between", {"attribute": "age", "min": 18, "max": 67})),
    compute(("share", "percent_of(businessValue, 400)", "number")),
    score(),
    rank(),
)


@pytest.fixture
def plugin_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    for name in [m for m in sys.modules if m.startswith("nextbest_example_plugin")]:
        monkeypatch.delitem(sys.modules, name)
    return importlib.import_module("nextbest_example_plugin.plugin")


def check_flow_runs(h: Host) -> None:
    decision = decide(h, DOC, OFFERS, attributes={"age": 30})
    assert ids(decision) == ["a", "b"]
    assert [i.personalization["share"] for i in decision.items] == [50.0, 12.5]
    too_old = decide(h, DOC, OFFERS, attributes={"age": 70})
    assert ids(too_old) == []
    drop = drops(too_old)["a"]
    assert (drop.rule_id, drop.plugin) == (
        "working-age",
        h.registry.owner("rule_type", "attribute_between"),
    )
    assert drop.reason == "age = 70 is outside [18.0, 67.0]"
    assert drop.inputs == {"attribute": "age", "actual": 70, "min": 18.0, "max": 67.0}


def test_registered_directly(plugin_module: ModuleType) -> None:
    h = Host(plugins=[plugin_module])
    check_flow_runs(h)
    with pytest.raises(FlowValidationError) as info:
        h.load_flow(
            flow(
                inventory(),
                qualify(rule("r", "attribute_between", {"attribute": "age", "min": "x"})),
                score(),
                rank(),
            )
        )
    assert [i.path for i in info.value.issues] == ["nodes[1].config.rules[0].config.min"]


def test_percent_of_zero_is_null_with_trace(plugin_module: ModuleType) -> None:
    h = Host(plugins=[plugin_module])
    doc = flow(
        inventory(), compute(("share", "percent_of(businessValue, metrics.total)")), score(), rank()
    )
    decision = decide(h, doc, OFFERS, metrics={"total": 0})
    assert [i.personalization["share"] for i in decision.items] == [None, None]
    assert decision.trace is not None
    assert "zero whole" in decision.trace.failures[0].error


def write_dist_info(site: Path, name: str, version: str, entry_points: str) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(entry_points)


def isolate_entry_points(monkeypatch: pytest.MonkeyPatch, keep: set[str]) -> None:
    """NEXTBEST_PLUGINS unset, other installed plugins blocked, so only ours and builtin load."""
    monkeypatch.delenv("NEXTBEST_PLUGINS")
    others = {ep.name for ep in metadata.entry_points(group="nextbest")} - keep
    monkeypatch.setenv("NEXTBEST_DISABLE_PLUGINS", ",".join(sorted(others)))


def test_discovered_through_its_entry_point(
    plugin_module: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry_points = (PLUGIN_DIR / "pyproject.toml").read_text()
    assert 'example = "nextbest_example_plugin.plugin"' in entry_points
    write_dist_info(
        tmp_path,
        "nextbest_example_plugin",
        "0.1.0",
        "[nextbest]\nexample = nextbest_example_plugin.plugin\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    isolate_entry_points(monkeypatch, {"builtin", "example"})
    h = Host()
    infos = {p.name: p for p in list_plugins(h.pm)}
    assert set(infos) == {"builtin", "example"}
    assert infos["example"].version == "0.1.0"
    assert infos["example"].hooks == ("register_functions", "register_rule_types")
    check_flow_runs(h)
    monkeypatch.setenv("NEXTBEST_DISABLE_PLUGINS", "example")
    assert "attribute_between" not in Host().registry.rule_types


def test_broken_entry_point_names_the_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dist_info(
        tmp_path, "nextbest_broken", "1.0", "[nextbest]\nbroken = nextbest_no_such_module\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    isolate_entry_points(monkeypatch, {"builtin", "broken"})
    with pytest.raises(PluginError) as info:
        Host()
    assert "plugin 'broken' (nextbest_no_such_module) failed to load" in str(info.value)


def test_cli_lists_entry_point_plugin(
    plugin_module: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from nextbest.cli import build_cli

    write_dist_info(
        tmp_path,
        "nextbest_example_plugin",
        "0.1.0",
        "[nextbest]\nexample = nextbest_example_plugin.plugin\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    isolate_entry_points(monkeypatch, {"builtin", "example"})
    result = CliRunner().invoke(build_cli(), ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    assert "example" in [p["name"] for p in __import__("json").loads(result.stdout)]
