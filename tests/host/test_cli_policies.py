"""``nextbest policies put / list / remove`` and ``nextbest schema contact-policy``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from nextbest.cli import build_cli
from nextbest.store import open_store


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'nb.db'}"
    store = open_store(url)
    try:
        store.upgrade()
        store.create_tenant("acme")
        store.create_tenant("other")
    finally:
        store.close()
    return url


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.delenv("NEXTBEST_DATABASE_URL", raising=False)
    runner = CliRunner()

    def invoke(*args: object) -> Result:
        return runner.invoke(build_cli(), [str(a) for a in args])

    return invoke


def test_put_list_remove(run: Callable[..., Result], db: str, tmp_path: Path) -> None:
    cap = tmp_path / "cap.yaml"
    cap.write_text(
        "name: daily\nruleType: frequency_cap\nconfig: {max: 3, period: day}\npriority: 5\n"
    )
    window = tmp_path / "window.json"
    window.write_text(
        json.dumps(
            {
                "name": "office",
                "ruleType": "time_window",
                "config": {"fromHour": 9, "toHour": 17},
                "scope": "channel",
                "scopeId": "email",
                "priority": 9,
            }
        )
    )
    result = run("policies", "put", cap, "--tenant", "acme", "--database", db)
    assert result.exit_code == 0, result.output
    assert "contact policy 'daily' created" in result.output
    result = run("policies", "put", cap, "--tenant", "acme", "--database", db)
    assert "contact policy 'daily' replaced" in result.output
    assert run("policies", "put", window, "--tenant", "acme", "--database", db).exit_code == 0
    listed = run("policies", "list", "--tenant", "acme", "--database", db)
    lines = [line for line in listed.output.splitlines() if "\t" in line]
    assert lines == [
        "office\ttime_window\tchannel:email\t9\tactive",
        "daily\tfrequency_cap\tglobal\t5\tactive",
    ]
    as_json = run("policies", "list", "--tenant", "acme", "--json", "--database", db)
    docs = [json.loads(line) for line in as_json.output.splitlines() if line.startswith("{")]
    assert docs[1]["config"] == {"max": 3, "period": "day", "counts": "impressions"}
    other = run("policies", "list", "--tenant", "other", "--database", db)
    assert not [line for line in other.output.splitlines() if "\t" in line]
    removed = run("policies", "remove", "daily", "--tenant", "acme", "--database", db)
    assert removed.exit_code == 0 and "removed" in removed.output
    again = run("policies", "remove", "daily", "--tenant", "acme", "--database", db)
    assert again.exit_code != 0 and "no contact policy 'daily'" in again.output


def test_put_refuses_a_bad_policy_naming_the_field(
    run: Callable[..., Result], db: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nruleType: cooldown\nconfig: {hours: -1}\n")
    result = run("policies", "put", bad, "--tenant", "acme", "--database", db)
    assert result.exit_code != 0
    assert "config.hours" in result.output and "greater than 0" in result.output


def test_schema_contact_policy(run: Callable[..., Result]) -> None:
    result = run("schema", "contact-policy")
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    tags = set(schema["discriminator"]["mapping"])
    assert tags == {
        "frequency_cap",
        "customer_total_cap",
        "cross_channel_cap",
        "cooldown",
        "outcome_based",
        "segment_exclusion",
        "time_window",
        "mutual_exclusion",
        "allow_override",
    }


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "contact-policies"


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_example_policies_are_valid(run: Callable[..., Result], db: str, name: str) -> None:
    result = run("policies", "put", EXAMPLES / name, "--tenant", "acme", "--database", db)
    assert result.exit_code == 0, result.output
