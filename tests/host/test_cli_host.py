"""The command line through click's test runner: validate, schema, decide (file mode), plugins.
Deciding from the store is tested in test_cli_decide_store.py."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
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


def _strict(text: str) -> Any:
    """Parse JSON refusing NaN, Infinity and -Infinity (Python's json accepts them)."""

    def refuse(token: str) -> Any:
        raise AssertionError(f"invalid JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_decide_json(run: Callable[..., Result]) -> None:
    result = run("decide", "--flow", FLOW, "--offers", OFFERS, "--customer", ADA, "--json")
    assert result.exit_code == 0, result.output
    data = _strict(result.stdout)
    assert data["customerId"] == "ada" and data["flowKey"] == "cross-sell"
    assert [d["rank"] for d in data["decisions"]] == [1, 2, 3]
    assert set(data["decisions"][0]["personalization"]) == {"discountPct", "headline"}
    assert "trace" not in data
    explained = _strict(
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


@pytest.mark.parametrize(
    ("request_text", "mentions"),
    [
        ('{"customerId": "x", "attributes": {"age": NaN}}', "not finite at attributes.age"),
        ('{"customerId": "x", "metrics": {"orders": Infinity}}', "not finite at metrics.orders"),
        ('{"customerId": "x", "asOf": "0001-01-01T00:00:00+05:00"}', "asOf must be between"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_decide_refuses_a_request_file_it_cannot_use(
    run: Callable[..., Result], tmp_path: Path, request_text: str, mentions: str
) -> None:
    bad = tmp_path / "c.json"
    bad.write_text(request_text)
    result = run("decide", "--flow", FLOW, "--offers", OFFERS, "--customer", bad, "--json")
    assert result.exit_code == 1, result.output
    assert f"{bad}:" in result.output and mentions in result.output
    assert "NaN" not in result.stdout and "Traceback" not in result.output


def test_decide_json_with_non_finite_request_values_in_yaml_stays_strict(
    run: Callable[..., Result], tmp_path: Path
) -> None:
    """YAML's .nan reaches no decision: the request file is refused, never printed as NaN."""
    bad = tmp_path / "c.yaml"
    bad.write_text("customerId: x\nattributes: {income: .nan}\n")
    result = run("decide", "--flow", FLOW, "--offers", OFFERS, "--customer", bad, "--json")
    assert result.exit_code == 1 and "not finite" in result.output


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["--customer", ADA, "--offers", OFFERS], "needs --flow FILE and --offers FILE"),
        (["--customer", ADA, "--flow", FLOW], "needs --flow FILE and --offers FILE"),
        (["--customer", ADA, "--flow", "nope.yaml", "--offers", OFFERS], "does not exist"),
        (["--customer", ADA, "--flow", FLOW, "--offers", OFFERS, "--save"], "--save: only in"),
        (
            [
                "--customer",
                ADA,
                "--flow",
                FLOW,
                "--offers",
                OFFERS,
                "--attribute",
                "a=1",
                "--channel",
                "web",
            ],
            "--channel, --attribute: only in store mode",
        ),
        (["--customer", ADA, "--customer-id", "ada"], "not both"),
    ],
)
def test_decide_file_mode_usage_errors_exit_2(
    run: Callable[..., Result], args: list[object], mentions: str
) -> None:
    result = run("decide", *args)
    assert result.exit_code == 2, result.output
    assert mentions in result.output


def test_strict_json_never_prints_nan() -> None:
    from nextbest.commands.decide import strict_json

    assert json.loads(strict_json({"a": [1.5, None]})) == {"a": [1.5, None]}
    with pytest.raises(click.ClickException, match="cannot be printed as JSON"):
        strict_json({"score": math.nan})


def test_plugins_json(run: Callable[..., Result]) -> None:
    result = run("plugins", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert [p["name"] for p in data] == ["builtin", "report", "triggers"]
    assert data[0]["version"]
    assert "register_rule_types" in data[0]["hooks"]
    table = run("plugins")
    assert table.stdout.startswith("builtin")
