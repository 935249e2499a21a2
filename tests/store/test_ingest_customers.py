"""``nextbest ingest --customers``: CSV and JSON lines of customer attributes, bad rows
rejected with line and reason, the good rows stored (SQLite, through click's CliRunner)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from store_testing import PEPPER

from nextbest.commands.store import register_store_commands
from nextbest.ingest.customers import cell_value
from nextbest.store import open_store


@pytest.fixture
def cli() -> click.Group:
    group = click.Group("nextbest")
    register_store_commands(group)
    return group


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("NEXTBEST_API_KEY_PEPPER", PEPPER.decode())
    return CliRunner()


def _stored(url: str, tenant: str = "shop") -> dict[str, dict]:
    with open_store(url, pepper=PEPPER) as store:
        return store.get_customer_attributes(tenant)


def test_cell_values() -> None:
    assert cell_value("12") == 12 and isinstance(cell_value("12"), int)
    assert cell_value("-0.5") == -0.5
    assert cell_value("1e3") == 1000.0
    assert cell_value("0123") == "0123"  # a code, not a number
    assert cell_value("true") is True and cell_value("false") is False
    assert cell_value("  ") is None
    assert cell_value("web") == "web"


def test_csv_import_keeps_good_rows_and_reports_bad_ones(
    cli: click.Group, runner: CliRunner, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'nb.db'}"
    file = tmp_path / "customers.csv"
    file.write_text(
        "customerId,channel,firstOrderValue,zip\n"
        "ada,web,12.5,0123\n"
        "bob,shop,30,\n"
        ",web,1,1\n"  # no id
        "cy,web\n"  # a field short
        "ada,shop,1,1\n"  # twice
    )
    result = runner.invoke(
        cli,
        [
            "ingest",
            "--customers",
            str(file),
            "--tenant",
            "shop",
            "--create-tenant",
            "--database",
            url,
        ],
    )
    assert result.exit_code == 1, result.output
    assert "rows read: 5, customers stored: 2, rejected: 3" in result.stdout
    assert "line 4: customer id must not be empty" in result.stderr
    assert "line 5: the row has 2 fields, the header 4" in result.stderr
    assert "line 6: customer 'ada' is already on line 2" in result.stderr
    assert _stored(url) == {
        "ada": {"channel": "web", "firstOrderValue": 12.5, "zip": "0123"},
        "bob": {"channel": "shop", "firstOrderValue": 30},
    }
    # a re-import replaces; --merge updates only the named attributes
    file.write_text("id;channel\nada;shop\n")
    args = [
        "ingest",
        "--customers",
        str(file),
        "--tenant",
        "shop",
        "--database",
        url,
        "--customer-col",
        "id",
        "--delimiter",
        ";",
    ]
    assert runner.invoke(cli, [*args, "--merge"]).exit_code == 0
    assert _stored(url)["ada"] == {"channel": "shop", "firstOrderValue": 12.5, "zip": "0123"}
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert _stored(url)["ada"] == {"channel": "shop"}


def test_jsonl_import(cli: click.Group, runner: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nb.db'}"
    file = tmp_path / "customers.jsonl.gz"
    lines = [
        json.dumps({"customerId": "ada", "channel": "web", "vip": True, "orders": None}),
        "",
        "{not json",
        json.dumps(["ada"]),
        json.dumps({"channel": "web"}),
        json.dumps({"customerId": "bob", "tags": ["a", "b"]}),
        json.dumps({"customerId": "cy", "value": 3}),
    ]
    file.write_bytes(gzip.compress("\n".join(lines).encode()))
    result = runner.invoke(
        cli,
        [
            "ingest",
            "--customers",
            str(file),
            "--tenant",
            "shop",
            "--create-tenant",
            "--database",
            url,
        ],
    )
    assert result.exit_code == 1, result.output
    assert "rows read: 6, customers stored: 2, rejected: 4" in result.stdout
    assert "line 3: the line is not JSON" in result.stderr
    assert "line 4: the line must be a JSON object" in result.stderr
    assert "line 5: the object needs a string 'customerId'" in result.stderr
    assert "line 6: attributes attribute 'tags' must be a string, number" in result.stderr
    assert _stored(url) == {"ada": {"channel": "web", "vip": True}, "cy": {"value": 3}}


def test_whole_file_problems_and_option_misuse(
    cli: click.Group, runner: CliRunner, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'nb.db'}"
    file = tmp_path / "customers.csv"
    file.write_text("email,channel\na@x,web\n")
    base = ["ingest", "--customers", str(file), "--tenant", "shop", "--database", url]
    result = runner.invoke(cli, [*base, "--create-tenant"])
    assert result.exit_code == 1
    assert "no customer id column 'customerId'" in result.output
    assert "--customer-col" in result.output
    assert _stored(url) == {}
    result = runner.invoke(cli, [*base, "--value-col", "x"])
    assert result.exit_code == 2
    assert "--value-col cannot be used with --customers" in result.output
    result = runner.invoke(
        cli, ["ingest", str(file), "--tenant", "shop", "--merge", "--database", url]
    )
    assert result.exit_code == 2
    assert "add --customers" in result.output
    result = runner.invoke(
        cli,
        [
            "ingest",
            "--customers",
            str(file),
            "--tenant",
            "nobody",
            "--customer-col",
            "email",
            "--database",
            url,
        ],
    )
    assert result.exit_code == 1
    assert "tenant 'nobody' does not exist" in result.output
