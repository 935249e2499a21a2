"""The command line through click's test runner: validate, schema, decide, plugins."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from nextbest.cli import build_cli

ROOT = Path(__file__).resolve().parents[2]
FLOW = ROOT / "examples" / "flows" / "cross-sell.yaml"
OFFERS = ROOT / "examples" / "offers.yaml"
ADA = ROOT / "examples" / "customers" / "ada.json"


@pytest.fixture
def run() -> Callable[..., Result]:
    runner = CliRunner()
    cli = build_cli()

    def invoke(*args: object) -> Result:
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return invoke


def test_validate_example_flow_and_offers(run: Callable[..., Result]) -> None:
    result = run("validate", FLOW, OFFERS)
    assert result.exit_code == 0, result.output
    assert "valid flow 'cross-sell'" in result.stdout
    assert "valid offer catalog" in result.stdout


def test_validate_bad_flow_lists_paths_and_exits_1(
    run: Callable[..., Result], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "key: bad\nversion: 2\nnodes:\n"
        "  - {type: inventory, id: inv}\n"
        "  - type: qualify\n    id: q\n    config:\n      rules:\n"
        "        - {id: r1, ruleType: segment_required, config: {requiredSegments: [a]}}\n"
        "        - {id: r2, ruleType: recency_check, config: {minDays: -3}}\n"
        "  - {type: score, id: sc, config: {weights: {impact: 0.9}}}\n"
        "  - {type: rank, id: rk}\n"
    )
    result = run("validate", FLOW, bad)
    assert result.exit_code == 1
    assert "valid flow 'cross-sell'" in result.stdout  # the good file is still reported
    assert f"{bad}: 2 error(s)" in result.stderr
    assert "nodes[1].config.rules[1].config.minDays:" in result.stderr
    assert "nodes[2].config.weights:" in result.stderr


def test_validate_yaml_syntax_error_names_the_line(
    run: Callable[..., Result], tmp_path: Path
) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("key: x\nnodes: [\n")
    result = run("validate", bad)
    assert result.exit_code == 1
    assert "line" in result.stderr and "invalid YAML" in result.stderr


def test_schema_flow_is_json_with_rule_types(run: Callable[..., Result]) -> None:
    result = run("schema", "flow")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    text = json.dumps(schema)
    for rule_type in (
        "segment_required",
        "attribute_condition",
        "recency_check",
        "metric_condition",
        "expression",
    ):
        assert f'"{rule_type}"' in text
    assert "nodes" in schema["properties"]


def test_decide_prints_a_table_with_explanation(run: Callable[..., Result]) -> None:
    result = run("decide", "--flow", FLOW, "--offers", OFFERS, "--customer", ADA, "--explain")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("customer ada  flow cross-sell")
    assert lines[1].split()[:2] == ["#1", "mortgage-review"]
    assert "dropped:" in result.stdout
    assert "student-account" in result.stdout and "missing segments" in result.stdout


def test_decide_json(run: Callable[..., Result]) -> None:
    result = run("decide", "--flow", FLOW, "--offers", OFFERS, "--customer", ADA, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["customerId"] == "ada" and data["flowKey"] == "cross-sell"
    assert [d["rank"] for d in data["decisions"]] == [1, 2, 3]
    assert set(data["decisions"][0]["personalization"]) == {"discountPct", "headline"}
    assert "trace" not in data
    explained = json.loads(
        run(
            "decide", "--flow", FLOW, "--offers", OFFERS, "--customer", ADA, "--json", "--explain"
        ).stdout
    )
    assert explained["trace"]["dropped"][0]["ruleId"] == "students-only"


def test_decide_bad_request_is_a_clean_error(run: Callable[..., Result], tmp_path: Path) -> None:
    bad = tmp_path / "c.json"
    bad.write_text('{"customerId": "x", "limit": 0}')
    result = CliRunner().invoke(
        build_cli(),
        ["decide", "--flow", str(FLOW), "--offers", str(OFFERS), "--customer", str(bad)],
    )
    assert result.exit_code == 1
    assert "limit" in result.output


def test_plugins_json(run: Callable[..., Result]) -> None:
    result = run("plugins", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert [p["name"] for p in data] == ["builtin"]
    assert data[0]["version"]
    assert "register_rule_types" in data[0]["hooks"]
    table = run("plugins")
    assert table.stdout.startswith("builtin")
