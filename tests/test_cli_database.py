"""The database of a command: a first run with one's own data (``ingest --create-tenant``), the
database every command names on stderr, and what a command says when the database is not
there or not at this version's schema."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from click.testing import CliRunner, Result

from nextbest.cli import build_cli
from nextbest.store import open_store

ORDERS = """order_id,customer_id,timestamp,value
A1,ann,2024-01-05T10:00:00Z,49.90
A2,bob,2024-01-06T09:00:00Z,15.00
R1,ann,2024-01-20T12:00:00Z,-19.99
"""

Run = Callable[..., Result]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Run:
    """Runs ``nextbest ...`` (plugins included) in an empty working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEXTBEST_DATABASE_URL", raising=False)
    monkeypatch.setenv("NEXTBEST_API_KEY_PEPPER", "pepper")
    (tmp_path / "my.csv").write_text(ORDERS)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(build_cli(), list(args))

    return invoke


def test_a_first_run_with_ones_own_data(run: Run, tmp_path: Path) -> None:
    database = tmp_path / "nextbest.db"
    shown = f"database: sqlite:///nextbest.db ({database})"

    result = run("ingest", "my.csv", "--tenant", "shop")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[0] == shown
    assert f"no database file at {database}" in result.output
    assert "`nextbest ingest my.csv --tenant shop --create-tenant`" in result.output
    assert "Traceback" not in result.output and "Usage:" not in result.output
    assert not database.exists()

    result = run("ingest", "my.csv", "--tenant", "shop", "--create-tenant", "--id-col", "order_id")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("database: ") == 1 and shown in result.stderr
    assert "created database sqlite:///nextbest.db" in result.stderr
    assert "created tenant shop" in result.stderr
    assert "rows read: 3, stored: 3," in result.stdout
    with open_store(f"sqlite:///{database}") as store:
        assert store.schema_version() == store.latest_schema_version()
        summary = store.get_customer_summary("shop", "ann")
        assert summary is not None and summary.total_value == pytest.approx(29.91)

    result = run("ingest", "my.csv", "--tenant", "shop", "--id-col", "order_id")
    assert result.exit_code == 0 and "already stored: 3" in result.stdout
    result = run("ingest", "my.csv", "--tenant", "other")
    assert result.exit_code == 1
    assert "tenant 'other' does not exist" in result.output
    assert "`nextbest ingest my.csv --tenant other --create-tenant`" in result.output
    assert "`nextbest tenants create other`" in result.output
    result = run("ingest", "my.csv", "--tenant", "other", "--create-tenant")
    assert result.exit_code == 0 and "created tenant other" in result.stderr
    assert "created database" not in result.stderr
    assert run("tenants", "list").stdout.splitlines()[0].startswith("other\t")


def test_a_failed_first_run_leaves_no_tenant(run: Run, tmp_path: Path) -> None:
    (tmp_path / "headless.csv").write_text("ann,2024-01-05,1\n")
    result = run("ingest", "headless.csv", "--tenant", "shop", "--create-tenant")
    assert result.exit_code == 1 and "--no-header" in result.output
    assert run("tenants", "list").stdout == ""


def _set_schema_version(path: Path, version: int) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM schema_migrations")
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'x', 0)",
            (version,),
        )


def test_an_existing_database_is_migrated_only_on_purpose(run: Run, tmp_path: Path) -> None:
    assert run("db", "upgrade").exit_code == 0
    _set_schema_version(tmp_path / "nextbest.db", 1)
    result = run("ingest", "my.csv", "--tenant", "shop", "--create-tenant")
    assert result.exit_code == 1 and "back it up and run `nextbest db upgrade`" in result.output
    _set_schema_version(tmp_path / "nextbest.db", 999)
    result = run("tenants", "list")
    assert result.exit_code == 1 and "newer than this nextbest knows" in result.output


def test_a_file_that_is_not_a_database(run: Run, tmp_path: Path) -> None:
    result = run("tenants", "list", "--database", "sqlite:///my.csv")
    assert result.exit_code == 1, result.output
    assert "cannot use the database sqlite:///my.csv" in result.output
    assert "Traceback" not in result.output
    result = run("tenants", "list", "--database", "sqlite:///missing/dir.db")
    assert result.exit_code == 2 and "does not exist" in result.output


@pytest.fixture
def populated(run: Run, tmp_path: Path) -> str:
    """A migrated database file with tenant shop and its orders; its URL."""
    url = f"sqlite:///{tmp_path / 'data.db'}"
    result = run("ingest", "my.csv", "--tenant", "shop", "--create-tenant", "--database", url)
    assert result.exit_code == 0, result.output
    return url


@pytest.mark.parametrize(
    "args",
    [
        ["db", "upgrade"],
        ["tenants", "list"],
        ["tenants", "create", "acme"],
        ["tenants", "settings", "shop"],
        ["keys", "create", "--tenant", "shop", "--role", "viewer"],
        ["keys", "revoke", "nokey", "--tenant", "shop"],
        ["ingest", "my.csv", "--tenant", "shop"],
        ["interactions", "show", "nokey", "--tenant", "shop"],
        ["customers", "forget", "--tenant", "shop", "--customer-id", "ann", "--yes"],
        ["offers", "list", "--tenant", "shop"],
        ["flows", "list", "--tenant", "shop"],
        ["decide", "--tenant", "shop", "--customer-id", "ann"],
        ["clv", "show", "ann", "--tenant", "shop"],
        ["clv", "settings", "--tenant", "shop"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_every_command_names_its_database_once(
    run: Run, populated: str, tmp_path: Path, args: list[str]
) -> None:
    result = run(*args, "--database", populated)
    assert "Traceback" not in result.output
    assert result.stderr.count("database: ") == 1, result.output
    assert f"database: {populated} ({tmp_path / 'data.db'})" in result.stderr
    assert "database:" not in result.stdout


def test_serve_names_its_database(
    run: Run, populated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[object] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **options: started.append(app))
    result = run("serve", "--database", populated)
    assert result.exit_code == 0, result.output
    assert result.stderr.count(f"database: {populated} ({tmp_path / 'data.db'})") == 1
    assert len(started) == 1


def test_the_default_database_is_named_with_its_path(run: Run, tmp_path: Path) -> None:
    assert run("db", "upgrade").exit_code == 0
    result = run("tenants", "list")
    assert result.stderr == f"database: sqlite:///nextbest.db ({tmp_path / 'nextbest.db'})\n"
    help_text = " ".join(run("ingest", "--help").output.split())
    assert "default sqlite:///nextbest.db, i.e. ./nextbest.db" in help_text


def _with_passwords(url: str) -> str:
    parts = urlsplit(url)
    user = parts.username or "postgres"
    host = parts.hostname or "127.0.0.1"
    netloc = f"{user}:hunter2@{host}" + (f":{parts.port}" if parts.port else "")
    query = f"{parts.query}&password=hunter3" if parts.query else "password=hunter3"
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@pytest.mark.postgres
def test_a_first_run_on_postgresql_with_passwords_hidden(run: Run, empty_postgres_url: str) -> None:
    """The local server trusts its clients, so the passwords in the URL are not checked."""
    url = _with_passwords(empty_postgres_url)
    result = run("ingest", "my.csv", "--tenant", "shop", "--database", url)
    assert result.exit_code == 1 and "has no nextbest schema yet" in result.output
    assert "--create-tenant" in result.output
    result = run("ingest", "my.csv", "--tenant", "shop", "--create-tenant", "--database", url)
    assert result.exit_code == 0, result.output
    assert "created database postgresql://" in result.stderr
    line = result.stderr.splitlines()[0]
    assert line.startswith("database: postgresql://") and ":***@" in line
    assert "password=***" in line
    assert "hunter" not in result.output
    result = run("ingest", "my.csv", "--tenant", "shop", "--database", url)
    assert result.exit_code == 0 and "already stored: 3" in result.stdout
