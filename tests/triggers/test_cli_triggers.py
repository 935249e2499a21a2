"""``nextbest triggers`` and ``nextbest schema trigger`` against a real database file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from triggerkit import DAY, NOW, Api, history

from nextbest.cli import build_cli
from nextbest.store import Store
from nextbest.triggers import engine_for


def run(*args: str) -> str:
    result = CliRunner().invoke(build_cli(), list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_schema_trigger() -> None:
    schema = json.loads(run("schema", "trigger"))
    assert {"key", "when", "rearm", "cooldownDays", "flow", "actions"} <= set(schema["properties"])


def test_put_list_events_preview(api: Api, store: Store, tmp_path: Path) -> None:
    if store.dialect != "sqlite":
        pytest.skip("the CLI opens a database by URL; the PostgreSQL tests use a schema")
    database = store.url
    history(api, "ada", [40])
    good = tmp_path / "silent.yaml"
    good.write_text("key: silent\nname: Silent\nwhen: customer.clv.recency_days >= 30\n")
    put = run("triggers", "put", str(good), "--tenant", "acme", "--database", database)
    assert "created" in put
    assert "silent\tactive" in run("triggers", "list", "--tenant", "acme", "--database", database)
    out = run("triggers", "preview", "silent", "ada", "--tenant", "acme", "--database", database)
    assert "ada\tFIRE" in out
    everyone = CliRunner().invoke(
        build_cli(), ["triggers", "preview", "silent", "--tenant", "acme", "--database", database]
    )
    assert everyone.exit_code == 0, everyone.output
    assert everyone.stdout.startswith("ada\tFIRE")
    assert "1 of 1 customers would fire now" in everyone.stderr
    ran = CliRunner().invoke(
        build_cli(), ["triggers", "run", "--tenant", "acme", "--database", database]
    )
    assert ran.exit_code == 0, ran.output
    assert ran.stdout.startswith("silent\t1 fired") and "over 1 customers" in ran.stderr
    engine = engine_for(api.host)
    assert engine is not None
    engine.forget_tenant("acme")  # another process's write is seen after ACTIVE_TTL_SECONDS
    api.compute(NOW + 1 * DAY)
    events = run("triggers", "events", "silent", "--tenant", "acme", "--database", database)
    lines = [line for line in events.splitlines() if line.startswith("{")]
    assert [json.loads(line)["customerId"] for line in lines] == ["ada"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("key: bad\nname: Bad\nwhen: customer.unknown > 1\n")
    result = CliRunner().invoke(
        build_cli(), ["triggers", "put", str(bad), "--tenant", "acme", "--database", database]
    )
    assert result.exit_code != 0 and "when:" in result.output


def test_nextbest_ingest_evaluates_the_triggers_of_the_imported_customers(
    api: Api, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if store.dialect != "sqlite":
        pytest.skip("the CLI opens a database by URL; the PostgreSQL tests use a schema")
    monkeypatch.setenv("NEXTBEST_API_KEY_PEPPER", "test")
    assert api.put({"key": "loyal", "name": "Third", "when": "customer.clv.frequency >= 3"})
    stamps = [NOW - (d + 1) * DAY for d in range(3)]
    rows = "".join(f"cy,{datetime.fromtimestamp(t, UTC).isoformat()},10\n" for t in stamps)
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,timestamp,value\n" + rows)
    out = run("ingest", str(path), "--tenant", "acme", "--database", store.url)
    assert "stored: 3" in out
    assert [e["customerId"] for e in api.events("loyal")["items"]] == ["cy"]
