"""``nextbest clv ...`` through the host's CLI (the plugin adds the group via its hook)."""

from __future__ import annotations

import json
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
    result = CliRunner().invoke(build_cli(), list(args))
    return result.exit_code, result.output


def test_compute_show_settings_schedule(db: str) -> None:
    code, out = run("clv", "compute", "--tenant", "acme", "--as-of", "2024-07-01", "--database", db)
    assert code == 0, out
    assert "6 record(s) as of 2024-07-01T00:00:00Z" in out
    assert "at_risk          2" in out and "high             2" in out
    code, out = run("clv", "show", "ada", "--tenant", "acme", "--json", "--database", db)
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
    assert code == 2 and "not an ISO date" in out
