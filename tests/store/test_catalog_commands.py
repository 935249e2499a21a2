"""The catalog's CLI commands (`offers`, `flows`) against the store's rules (SQLite): `offers
create` only creates, like POST /api/v1/offers; out-of-range versions are clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from store_testing import PEPPER

from nextbest.commands.server import register_server_commands
from nextbest.store import open_store


@pytest.fixture
def cli() -> click.Group:
    group = click.Group("nextbest")
    register_server_commands(group)
    return group


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with open_store(url, pepper=PEPPER) as store:
        store.upgrade()
        store.create_tenant("acme")
        store.put_offer("acme", {"id": "old", "name": "Old"})
        store.save_flow("acme", "f", {"key": "f"})
    return url


def test_offers_create_creates_new_offers_and_reports_existing_ones(
    cli: click.Group, url: str, tmp_path: Path
) -> None:
    offers = tmp_path / "offers.json"
    offers.write_text(json.dumps([{"id": "new", "name": "New"}, {"id": "old", "name": "Other"}]))
    result = CliRunner().invoke(
        cli, ["offers", "create", str(offers), "--tenant", "acme", "--database", url]
    )
    assert result.exit_code == 1, result.output
    assert "1 offer(s) created for acme" in result.output
    assert "1 offer(s) already exist and were left unchanged: 'old'" in result.output
    assert "nextbest offers put" in result.output
    with open_store(url, pepper=PEPPER) as store:
        assert store.get_offer("acme", "new") == {"id": "new", "name": "New"}
        assert store.get_offer("acme", "old") == {"id": "old", "name": "Old"}

    offers.write_text(json.dumps({"id": "third", "name": "Third"}))
    result = CliRunner().invoke(
        cli, ["offers", "create", str(offers), "--tenant", "acme", "--database", url]
    )
    assert result.exit_code == 0 and "1 offer(s) created for acme" in result.output


@pytest.mark.parametrize("version", ["10000000000000000000", "2147483648"])
def test_flow_versions_out_of_range_are_clear_errors(
    cli: click.Group, url: str, version: str
) -> None:
    for args in (
        ["flows", "get", "f", "--version", version],
        ["flows", "publish", "f", version],
    ):
        result = CliRunner().invoke(cli, [*args, "--tenant", "acme", "--database", url])
        assert result.exit_code == 1, result.output
        assert "version must be an integer from 1 to 2147483647" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
