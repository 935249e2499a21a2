"""``nextbest clv ...`` through the host's CLI (the plugin adds the group via its hook)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from clvkit import worked_tenant

from nextbest.cli import build_cli
from nextbest.store import Store


@pytest.fixture
def db(store: Store, tmp_path: Path) -> str:
    worked_tenant(store)
    return f"sqlite:///{tmp_path / 'clv.db'}"


def run(*args: str) -> tuple[int, str]:
    """Exit code and stdout (on success; the database line is on stderr) or all output."""
    result = CliRunner().invoke(build_cli(), list(args))
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


def test_compute_show_settings_schedule(db: str) -> None:
    code, out = run("clv", "compute", "--tenant", "acme", "--as-of", "2024-07-01", "--database", db)
    assert code == 0, out
    assert "6 record(s) as of 2024-07-01T00:00:00Z" in out
    assert "at_risk          2" in out and "high             2" in out
    code, out = run(
        "clv",
        "show",
        "ada",
        "--tenant",
        "acme",
        "--as-of",
        "2024-07-01",
        "--json",
        "--database",
        db,
    )
    assert code == 0, out
    record = json.loads(out)
    assert (record["clvScore"], record["segment"], record["source"]) == (80, "high", "cached")
    code, out = run("clv", "show", "nobody", "--tenant", "acme", "--database", db)
    assert code == 1 and "no recorded interactions" in out
    code, out = run(
        "clv", "settings", "--tenant", "acme", "--set", "atRiskDays=45", "--database", db
    )
    assert code == 0 and json.loads(out)["atRiskDays"] == 45
    code, out = run(
        "clv", "settings", "--tenant", "acme", "--set", "churnSlope=-1", "--database", db
    )
    assert code == 1 and "churnSlope" in out
    code, out = run("clv", "schedule", "--tenant", "acme", "--cron", "15 3 * * *", "--database", db)
    assert code == 0 and "'15 3 * * *'" in out
    code, out = run("clv", "settings", "--tenant", "acme", "--database", db)
    assert json.loads(out)["schedule"] == "15 3 * * *"
    code, out = run("clv", "schedule", "--tenant", "acme", "--cron", "daily", "--database", db)
    assert code == 1 and "five-field cron" in out
    code, out = run("clv", "compute", "--tenant", "nope", "--database", db)
    assert code == 1 and "does not exist" in out
    code, out = run("clv", "compute", "--tenant", "acme", "--as-of", "soon", "--database", db)
    assert code == 2 and "not an ISO-8601 time" in out


def test_show_recomputes_for_another_as_of_and_for_now(db: str) -> None:
    code, out = run("clv", "compute", "--tenant", "acme", "--as-of", "2024-07-01", "--database", db)
    assert code == 0, out
    code, out = run(
        "clv",
        "show",
        "ada",
        "--tenant",
        "acme",
        "--as-of",
        "2024-08-15",
        "--json",
        "--database",
        db,
    )
    assert code == 0, out
    later = json.loads(out)
    # ada's last interaction was 2024-06-26: 50 days before 2024-08-15.
    assert (later["rfmRecency"], later["computedAt"], later["source"]) == (
        50,
        "2024-08-15T00:00:00Z",
        "computed",
    )
    assert later["segment"] == "at_risk"
    # The historic read did not replace the stored record: the batch's asOf is still served.
    code, out = run(
        "clv",
        "show",
        "ada",
        "--tenant",
        "acme",
        "--as-of",
        "2024-07-01",
        "--json",
        "--database",
        db,
    )
    assert json.loads(out)["source"] == "cached"
    # "Now" (years after the batch) is not the batch's stored record either: it is computed
    # (and stored, as the customer's current record).
    code, out = run("clv", "show", "ada", "--tenant", "acme", "--json", "--database", db)
    now = json.loads(out)
    assert now["source"] == "computed" and now["rfmRecency"] > 365


def test_show_errors_name_the_problem(db: str) -> None:
    code, out = run("clv", "show", "ada", "--tenant", "nope", "--database", db)
    assert code == 1 and "tenant 'nope' does not exist" in out
    code, out = run(
        "clv", "show", "ada", "--tenant", "acme", "--as-of", "2024-06-01", "--database", db
    )
    assert code == 2 and "--as-of" in out and "before customer 'ada'" in out


def test_compute_json_is_valid_json_with_the_progress_bar_on_stderr(db: str) -> None:
    result = CliRunner().invoke(
        build_cli(),
        ["clv", "compute", "--tenant", "acme", "--as-of", "2024-07-01", "--json", "--database", db],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["computed"] == 6
    assert "Storing CLV records" in result.stderr


def test_clv_commands_work_without_matplotlib(db: str, tmp_path: Path) -> None:
    script = f"""
import sys
sys.modules["matplotlib"] = None  # import matplotlib now raises ImportError
from click.testing import CliRunner
from nextbest.cli import build_cli
cli = build_cli()
result = CliRunner().invoke(cli, ["clv", "show", "ada", "--tenant", "acme",
    "--as-of", "2024-07-01", "--json", "--database", {db!r}])
print("show", result.exit_code)
result = CliRunner().invoke(cli, ["clv", "backtest", "--tenant", "acme",
    "--calibration-end", "2024-04-01", "--plot", {str(tmp_path / "p.png")!r},
    "--database", {db!r}])
print("backtest", result.exit_code, result.output.replace(chr(10), " "))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "show 0", done.stdout + done.stderr
    assert lines[1].startswith("backtest 2 ")
    assert "pip install 'nextbest[plot]'" in lines[1]
    assert not (tmp_path / "p.png").exists()
