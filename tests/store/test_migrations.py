"""Opening stores and applying migrations."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
from store_testing import PEPPER, drop_schema, postgres_url

from nextbest.store import (
    SchemaNotReadyError,
    Store,
    StoreConfigurationError,
    open_store,
)
from nextbest.store.core_sql import load_migrations
from nextbest.store.postgres import PostgresStore
from nextbest.store.sqlite import SqliteStore


def test_open_store_picks_the_implementation_from_the_url(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'a.db'}", pepper=PEPPER) as store:
        assert isinstance(store, SqliteStore)
        assert isinstance(store, Store)
        assert store.path == tmp_path / "a.db"


def test_open_store_reads_the_environment_and_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEXTBEST_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    with open_store(pepper=PEPPER) as store:
        assert store.path == tmp_path / "env.db"  # type: ignore[attr-defined]
    monkeypatch.delenv("NEXTBEST_DATABASE_URL")
    monkeypatch.chdir(tmp_path)
    with open_store(pepper=PEPPER) as store:
        assert store.url == "sqlite:///nextbest.db"
        store.upgrade()
    assert (tmp_path / "nextbest.db").is_file()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://localhost/db", "unsupported database URL scheme 'mysql'"),
        ("nextbest.db", "unsupported database URL scheme"),
        ("sqlite:///:memory:", "not supported"),
        ("sqlite:///", "no file path"),
        ("sqlite:////no/such/dir/x.db", "does not exist"),
    ],
)
def test_open_store_rejects_unusable_urls(url: str, message: str) -> None:
    with pytest.raises(StoreConfigurationError, match=message):
        open_store(url, pepper=PEPPER)


def test_using_an_unmigrated_database_says_to_upgrade(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'new.db'}", pepper=PEPPER) as store:
        assert store.schema_version() == 0
        with pytest.raises(SchemaNotReadyError, match="nextbest db upgrade"):
            store.create_tenant("acme")


def test_upgrade_is_idempotent(store_factory) -> None:
    store = store_factory()  # the factory already upgraded once
    assert store.upgrade() == []
    assert store.schema_version() == store.latest_schema_version() >= 1


def _race_upgrades(make_store) -> list[int]:
    stores = [make_store() for _ in range(4)]
    applied: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def run(store: Store) -> None:
        barrier.wait()
        try:
            applied.extend(store.upgrade())
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert errors == []
    return applied


def test_racing_upgrades_apply_each_migration_once_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    applied = _race_upgrades(lambda: open_store(url, pepper=PEPPER))
    assert sorted(applied) == [m.version for m in load_migrations("sqlite")]


@pytest.mark.postgres
def test_racing_upgrades_apply_each_migration_once_postgres() -> None:
    url = postgres_url()
    schema = f"nbtest_race_{uuid.uuid4().hex[:8]}"
    try:
        applied = _race_upgrades(lambda: PostgresStore(url, schema=schema, pepper=PEPPER))
        with PostgresStore(url, schema=schema, pepper=PEPPER) as store:
            assert sorted(applied) == [m.version for m in load_migrations("postgres")]
            assert store.schema_version() == store.latest_schema_version()
    finally:
        drop_schema(url, schema)


@pytest.mark.postgres
def test_postgres_schema_from_url_options() -> None:
    url = postgres_url()
    schema = f"nbtest_opt_{uuid.uuid4().hex[:8]}"
    drop_schema(url, schema)
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in url else "?"
    try:
        with open_store(f"{url}{separator}options=-csearch_path%3D{schema}", pepper=PEPPER) as s:
            s.upgrade()
            s.create_tenant("acme")
        with psycopg.connect(url) as conn:
            row = conn.execute(f'SELECT tenant_id FROM "{schema}".tenants').fetchone()
        assert row == ("acme",)
    finally:
        drop_schema(url, schema)


def test_postgres_url_password_is_redacted() -> None:
    store = PostgresStore.__new__(PostgresStore)
    from nextbest.store.postgres import _redact

    store.url = _redact("postgresql://u:secret@host/db")
    assert "secret" not in repr(store)


def test_an_unreachable_postgresql_server_is_unavailable_not_busy() -> None:
    # Needs no server: port 1 on loopback refuses every connection.
    from nextbest.store import StoreUnavailableError
    from nextbest.store.postgres import PostgresStore

    store = PostgresStore("postgresql://nobody:secret@127.0.0.1:1/shop", timeout=0.5)
    try:
        with pytest.raises(StoreUnavailableError, match="cannot connect") as caught:
            store.get_tenant("acme")
        assert "127.0.0.1:1" in str(caught.value) and "secret" not in str(caught.value)
    finally:
        store.close()


def test_a_connection_the_server_closed_is_replaced(pg_schema: tuple[str, str]) -> None:
    # A PostgreSQL restart (or an operator) ends the pool's connections: the next call works.
    import psycopg

    from nextbest.store.postgres import PostgresStore

    url, schema = pg_schema
    store = PostgresStore(url, schema=schema, pepper=PEPPER, min_size=1, max_size=1)
    try:
        store.list_tenants()
        with store._pool.connection() as conn:  # the one pooled connection
            pid = conn.info.backend_pid
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert store.list_tenants() is not None  # no AdminShutdown, no 500
    finally:
        store.close()
