"""The store's CLI commands through click's CliRunner (SQLite)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from store_testing import PEPPER

from nextbest.commands.store import register_store_commands
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


def test_commands_are_registered(cli: click.Group) -> None:
    assert set(cli.commands) == {"db", "tenants", "keys", "ingest"}


def test_upgrade_tenants_and_keys(cli: click.Group, runner: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = runner.invoke(cli, ["tenants", "list", "--database", url])
    assert result.exit_code == 1 and "nextbest db upgrade" in result.output

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
    assert result.output.startswith("acme\tAcme\t")

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
    assert result.exit_code == 1 and "unsupported database URL scheme 'oracle'" in result.output
