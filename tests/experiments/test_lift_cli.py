"""``nextbest lift`` and the stability of groups across a restart: another process decides and
saves, this one finds the same groups; the command's table and JSON; its bad options."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from nextbest import Host
from nextbest.cli import build_cli
from nextbest.experiments import ControlGroupSettings, assign
from nextbest.service import DecisionService
from nextbest.store import InteractionIn, open_store

SETTINGS = {"share": 0.3, "salt": "restart"}
FLOW = {
    "key": "f",
    "version": 2,
    "nodes": [
        {"type": "inventory", "id": "inv"},
        {"type": "score", "id": "sc", "config": {"method": "priority_weighted"}},
        {"type": "rank", "id": "rk", "config": {"maxCandidates": 2}},
    ],
}
CUSTOMERS = [f"c{i}" for i in range(200)]
# another process (a restart): recommends for every customer on the same database
SCRIPT = """
import sys
from nextbest import Host
from nextbest.service import DecisionService
from nextbest.store import open_store
store = open_store(sys.argv[1])
service = DecisionService(Host(store=store), store)
for i in range(200):
    service.recommend("t", {"customerId": f"c{i}", "asOf": "2026-06-01T00:00:00Z"})
store.close()
"""


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("NEXTBEST_PLUGINS", "builtin")
    url = f"sqlite:///{tmp_path / 'lift.db'}"
    with open_store(url) as store:
        store.upgrade()
        store.create_tenant("t", settings={"controlGroup": SETTINGS})
        for offer, priority in (("a", 90), ("b", 50), ("c", 10)):
            store.put_offer("t", {"id": offer, "name": offer, "priority": priority})
        store.publish_flow("t", "f", store.save_flow("t", "f", FLOW))
    return url


def test_groups_survive_a_restart_and_the_lift_command(database: str) -> None:
    subprocess.run(
        [sys.executable, "-c", SCRIPT, database],
        check=True,
        env={"PATH": "", "PYTHONHASHSEED": "99", "NEXTBEST_PLUGINS": "builtin"},
    )
    settings = ControlGroupSettings.model_validate(SETTINGS)
    with open_store(database) as store:
        service = DecisionService(Host(store=store), store)
        stored = _stored_groups(database)
        assert len(stored) == len(CUSTOMERS)
        for customer in CUSTOMERS:
            here = service.decide("t", {"customerId": customer}).decision.group
            assert stored[customer] == here == assign(settings, "t", customer).group
        for i, customer in enumerate(CUSTOMERS):
            if i % 3 == 0:
                service.record_outcome(
                    "t",
                    InteractionIn(
                        customer_id=customer,
                        outcome="conversion",
                        idempotency_key=f"k{i}",
                        offer_id="a",
                        value=20.0,
                        occurred_at=datetime(2026, 6, 1, 1, tzinfo=UTC),
                    ),
                )
        expected = service.lift_report(
            "t", "f", since=datetime(2026, 5, 1, tzinfo=UTC), until=datetime(2026, 7, 1, tzinfo=UTC)
        )
    runner = CliRunner()
    window = ["--since", "2026-05-01T00:00:00Z", "--until", "2026-07-01T00:00:00Z"]
    base = ["lift", "--tenant", "t", "--flow", "f", "--database", database, *window]
    result = runner.invoke(build_cli(), [*base, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == expected
    table = runner.invoke(build_cli(), base)
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    n_control = expected["customers"]["control"]
    assert lines[0].startswith("lift of flow 'f' from 2026-05-01T00:00:00+00:00")
    assert f"control {n_control}" in lines[1]
    assert lines[2].split()[:2] == ["scope", "metric"]
    rows = [line for line in lines[3:] if line.startswith(("(flow)", "a "))]
    assert len(rows) == 4  # success rate and value per customer, for the flow and offer a
    rate = expected["flow"]["successRate"]
    assert f"{rate['control']['rate']:.4f} ({n_control})" in rows[0]


def _stored_groups(url: str) -> dict[str, str]:
    """Each customer's group as saved with its recommendation (read from the database file)."""
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT customer_id, assigned_group FROM recommendations").fetchall()
    return dict(rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--flow", "nope"], "flow 'nope' not found"),
        (["--flow", "f", "--since", "yesterday"], "--since"),
        (
            ["--flow", "f", "--since", "2026-02-01T00:00:00Z", "--until", "2026-01-01T00:00:00Z"],
            "since must be before until",
        ),
    ],
)
def test_bad_options(database: str, args: list[str], message: str) -> None:
    result = CliRunner().invoke(
        build_cli(), ["lift", "--tenant", "t", "--database", database, *args]
    )
    assert result.exit_code != 0
    assert message in result.output


def test_unknown_tenant(database: str) -> None:
    result = CliRunner().invoke(
        build_cli(), ["lift", "--tenant", "nobody", "--flow", "f", "--database", database]
    )
    assert result.exit_code != 0 and "tenant 'nobody' does not exist" in result.output
