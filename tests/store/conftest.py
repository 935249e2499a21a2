"""Store fixtures: every test using ``store`` runs on SQLite and on PostgreSQL.

PostgreSQL tests need NEXTBEST_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test);
they run in a throwaway schema created for the session and dropped at its end, emptied before
each test.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from store_testing import PEPPER, TABLES, drop_schema, postgres_url

from nextbest.store import Store, open_store
from nextbest.store.postgres import PostgresStore

StoreFactory = Callable[[], Store]


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[tuple[str, str]]:
    """(url, schema) of a migrated throwaway schema for the whole session."""
    url = postgres_url()
    schema = f"nbtest_{uuid.uuid4().hex[:12]}"
    store = PostgresStore(url, schema=schema, pepper=PEPPER)
    try:
        store.upgrade()
        yield url, schema
    finally:
        store.close()
        drop_schema(url, schema)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens further handles on one migrated, empty database (as separate processes would)."""
    opened: list[Store] = []
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"

        def factory() -> Store:
            store = open_store(url, pepper=PEPPER)
            opened.append(store)
            return store

        factory().upgrade()
    else:
        pg_url, schema = request.getfixturevalue("pg_schema")

        def factory() -> Store:
            store = open_store(pg_url, schema=schema, pepper=PEPPER)
            opened.append(store)
            return store

        first = factory()
        with first._transaction() as cur:  # type: ignore[attr-defined]
            cur.execute(f"TRUNCATE {TABLES} RESTART IDENTITY")
    try:
        yield factory
    finally:
        for store in opened:
            store.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    """A migrated, empty store with tenants ``acme`` and ``globex``."""
    store = store_factory()
    store.create_tenant("acme", "Acme Corp")
    store.create_tenant("globex")
    return store
