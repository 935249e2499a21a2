"""The service's CLI commands that mirror management endpoints (SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from nextbest.commands.server import register_server_commands
from nextbest.store import open_store


def test_offers_delete(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with open_store(url, pepper=b"p") as store:
        store.upgrade()
        store.create_tenant("acme")
        store.put_offer("acme", {"id": "o1", "name": "One"})
        store.put_offer("acme", {"id": "o2", "name": "Two"})
    cli = click.Group("nextbest")
    register_server_commands(cli)
    runner = CliRunner()
    args = ["offers", "delete", "o1", "--tenant", "acme", "--database", url]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "offer 'o1' deleted for acme" in result.output
    again = runner.invoke(cli, args)
    assert again.exit_code == 1 and "has no offer 'o1'" in again.output
    nobody = runner.invoke(cli, ["offers", "delete", "o2", "--tenant", "nobody", "--database", url])
    assert nobody.exit_code == 1 and "does not exist" in nobody.output
    with open_store(url, pepper=b"p") as store:
        assert [o["id"] for o in store.list_offers("acme").items] == ["o2"]


def test_serve_passes_the_body_limit_to_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    url = f"sqlite:///{tmp_path / 'serve.db'}"
    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(app))
    monkeypatch.setenv("NEXTBEST_PLUGINS", "builtin")
    monkeypatch.delenv("NEXTBEST_MAX_BODY_BYTES", raising=False)
    cli = click.Group("nextbest")
    register_server_commands(cli)
    runner = CliRunner()
    base = ["serve", "--database", url, "--upgrade"]
    assert runner.invoke(cli, base).exit_code == 0
    assert runner.invoke(cli, [*base, "--max-body-bytes", "4096"]).exit_code == 0
    monkeypatch.setenv("NEXTBEST_MAX_BODY_BYTES", "8192")
    assert runner.invoke(cli, base).exit_code == 0
    assert [app.state.max_body_bytes for app in served] == [1024 * 1024, 4096, 8192]
    bad = runner.invoke(cli, [*base, "--max-body-bytes", "0"])
    assert bad.exit_code == 2 and "--max-body-bytes" in bad.output
