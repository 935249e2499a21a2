"""The store's CLI commands through click's CliRunner (SQLite)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from store_testing import PEPPER

from nextbest.commands.store import register_store_commands
from nextbest.store import InteractionIn, open_store


@pytest.fixture
def cli() -> click.Group:
    group = click.Group("nextbest")
    register_store_commands(group)
    return group


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("NEXTBEST_API_KEY_PEPPER", PEPPER.decode())
    return CliRunner()


def test_commands_are_registered(cli: click.Group) -> None:
    assert set(cli.commands) == {"db", "tenants", "keys", "ingest", "interactions", "customers"}


def test_upgrade_tenants_and_keys(cli: click.Group, runner: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = runner.invoke(cli, ["tenants", "list", "--database", url])
    assert result.exit_code == 2 and "nextbest db upgrade" in result.output
    assert not (tmp_path / "cli.db").exists()  # a read never creates the file

    result = runner.invoke(cli, ["db", "upgrade", "--database", url])
    assert result.exit_code == 0, result.output
    assert "applied migrations 1" in result.output
    result = runner.invoke(cli, ["db", "upgrade"], env={"NEXTBEST_DATABASE_URL": url})
    assert result.exit_code == 0 and "up to date" in result.output

    result = runner.invoke(cli, ["tenants", "create", "acme", "--name", "Acme", "--database", url])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["tenants", "create", "acme", "--database", url])
    assert result.exit_code == 1 and "already exists" in result.output
    result = runner.invoke(cli, ["tenants", "list", "--database", url])
    assert result.stdout.startswith("acme\tAcme\t")

    result = runner.invoke(
        cli,
        ["keys", "create", "--tenant", "acme", "--role", "editor"],
        env={"NEXTBEST_DATABASE_URL": url},
    )
    assert result.exit_code == 0, result.output
    plaintext = result.stdout.strip().splitlines()[-1]
    with open_store(url, pepper=PEPPER) as store:
        key = store.authenticate_api_key(plaintext)
        assert key is not None and (key.tenant_id, key.role) == ("acme", "editor")

    result = runner.invoke(cli, ["keys", "create", "--tenant", "acme", "--role", "root"])
    assert result.exit_code == 2 and "root" in result.output
    result = runner.invoke(
        cli, ["keys", "create", "--tenant", "nobody", "--role", "viewer", "--database", url]
    )
    assert result.exit_code == 1 and "does not exist" in result.output

    result = runner.invoke(
        cli, ["keys", "revoke", key.key_id, "--tenant", "acme", "--database", url]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        cli, ["keys", "revoke", key.key_id, "--tenant", "acme", "--database", url]
    )
    assert result.exit_code == 1
    with open_store(url, pepper=PEPPER) as store:
        assert store.authenticate_api_key(plaintext) is None


def test_bad_database_url_is_a_clear_error(cli: click.Group, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["db", "upgrade", "--database", "oracle://x"])
    assert result.exit_code == 2 and "unsupported database URL scheme 'oracle'" in result.output


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A database with tenants acme and globex, two customers' outcomes and a document."""
    monkeypatch.setenv("NEXTBEST_PLUGINS", "builtin")  # only the host's own plugin
    url = f"sqlite:///{tmp_path / 'data.db'}"
    when = datetime(2024, 3, 1, tzinfo=UTC)
    with open_store(url, pepper=PEPPER) as store:
        store.upgrade()
        for tenant in ("acme", "globex"):
            store.create_tenant(tenant)
            for key, customer, value in (
                ("o-1", "ada", 10.0),
                ("o-2", "ada", 5.0),
                ("o-3", "bob", 1.0),
            ):
                store.record_interaction(
                    tenant,
                    InteractionIn(
                        customer, "conversion", key, offer_id="p", value=value, occurred_at=when
                    ),
                )
        store.save_recommendation("acme", "r-1", "ada", [(1, "p", 0.5)])
    return url


def test_interactions_show_correct_and_delete(
    cli: click.Group, runner: CliRunner, recorded: str
) -> None:
    db = ["--database", recorded]
    shown = runner.invoke(cli, ["interactions", "show", "o-1", "--tenant", "acme", *db])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["value"] == 10.0

    corrected = runner.invoke(
        cli, ["interactions", "correct", "o-1", "--tenant", "acme", "--value", "12.5", *db]
    )
    assert corrected.exit_code == 0, corrected.output
    after = json.loads(corrected.stdout)
    assert (after["value"], after["customerId"], after["occurredAt"]) == (
        12.5,
        "ada",
        "2024-03-01T00:00:00+00:00",
    )
    moved = runner.invoke(
        cli,
        ["interactions", "correct", "o-2", "--tenant", "acme", "--customer-id", "bob", *db],
    )
    assert moved.exit_code == 0, moved.output
    refund = runner.invoke(
        cli,
        ["interactions", "correct", "o-3", "--tenant", "acme", "--outcome", "refund", *db],
    )
    assert refund.exit_code == 1 and "<= 0 for a refund" in refund.output
    future = runner.invoke(
        cli,
        ["interactions", "correct", "o-3", "--tenant", "acme", "--timestamp", "2150-01-01", *db],
    )
    assert future.exit_code == 1 and "in the future" in future.output
    beyond = runner.invoke(
        cli,
        ["interactions", "correct", "o-3", "--tenant", "acme", "--timestamp", "2999-01-01", *db],
    )
    assert beyond.exit_code == 2 and "between" in beyond.output
    bad_time = runner.invoke(
        cli, ["interactions", "correct", "o-3", "--tenant", "acme", "--timestamp", "soon", *db]
    )
    assert bad_time.exit_code == 2 and "ISO-8601" in bad_time.output

    refused = runner.invoke(
        cli, ["interactions", "delete", "o-3", "--tenant", "acme", *db], input="n\n"
    )
    assert refused.exit_code == 1  # aborted at the prompt
    deleted = runner.invoke(
        cli, ["interactions", "delete", "o-3", "--tenant", "acme", "--yes", *db]
    )
    assert deleted.exit_code == 0 and "deleted conversion of customer bob" in deleted.output
    missing = runner.invoke(cli, ["interactions", "show", "o-3", "--tenant", "acme", *db])
    assert missing.exit_code == 1 and "no interaction" in missing.output
    again = runner.invoke(cli, ["interactions", "delete", "o-3", "--tenant", "acme", "--yes", *db])
    assert again.exit_code == 1 and "no interaction" in again.output

    with open_store(recorded, pepper=PEPPER) as store:
        ada = store.get_customer_summary("acme", "ada")
        bob = store.get_customer_summary("acme", "bob")
        assert ada is not None and (ada.interactions, ada.total_value) == (1, 12.5)
        assert bob is not None and (bob.interactions, bob.total_value) == (1, 5.0)
        untouched = store.get_customer_summary("globex", "ada")
        assert untouched is not None and untouched.total_value == 15.0


def test_customers_forget(cli: click.Group, runner: CliRunner, recorded: str) -> None:
    db = ["--database", recorded]
    args = ["customers", "forget", "--tenant", "acme", "--customer-id", "ada", *db]
    assert runner.invoke(cli, args, input="n\n").exit_code == 1
    with open_store(recorded, pepper=PEPPER) as store:
        assert store.get_customer_summary("acme", "ada") is not None
    result = runner.invoke(cli, [*args, "--yes"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("forgot customer ada: 2 interactions, 1 customer summaries")
    assert "1 recommendations" in result.output
    with open_store(recorded, pepper=PEPPER) as store:
        assert store.get_customer_summary("acme", "ada") is None
        assert store.get_recommendation("acme", "r-1") is None
        assert store.get_customer_summary("acme", "bob") is not None
        assert store.get_customer_summary("globex", "ada") is not None
    unknown = runner.invoke(
        cli, ["customers", "forget", "--tenant", "nobody", "--customer-id", "ada", "--yes", *db]
    )
    assert unknown.exit_code == 1 and "does not exist" in unknown.output


def test_tenant_settings(cli: click.Group, runner: CliRunner, recorded: str) -> None:
    db = ["--database", recorded]
    shown = runner.invoke(cli, ["tenants", "settings", "acme", *db])
    assert shown.exit_code == 0 and json.loads(shown.stdout) == {}
    changed = runner.invoke(
        cli,
        [
            "tenants",
            "settings",
            "acme",
            "--set",
            "acceptUnknownOffers=true",
            "--set",
            "default_flow_key=retention",
            *db,
        ],
    )
    expected = {"acceptUnknownOffers": True, "default_flow_key": "retention"}
    assert json.loads(changed.stdout) == expected
    removed = runner.invoke(
        cli, ["tenants", "settings", "acme", "--unset", "default_flow_key", *db]
    )
    assert json.loads(removed.stdout) == {"acceptUnknownOffers": True}
    bad = runner.invoke(cli, ["tenants", "settings", "acme", "--set", "novalue", *db])
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.output
    unknown = runner.invoke(cli, ["tenants", "settings", "nobody", *db])
    assert unknown.exit_code == 1 and "does not exist" in unknown.output
