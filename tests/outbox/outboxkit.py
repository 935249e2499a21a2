"""Outbox fixtures: a migrated store with tenants ``acme`` and ``globex`` on SQLite and, with
NEXTBEST_TEST_POSTGRES_URL set, on PostgreSQL (a throwaway schema dropped afterwards)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nextbest.store import Store, open_store

PEPPER = b"outbox-test-pepper"
PG_URL_ENV = "NEXTBEST_TEST_POSTGRES_URL"


def drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def postgres_url() -> str:
    url = os.environ.get(PG_URL_ENV)
    if not url:
        pytest.skip(f"{PG_URL_ENV} is not set: PostgreSQL outbox tests skipped")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """(url, schema) of a migrated database with tenants acme and globex."""
    if request.param == "sqlite":
        url, schema = f"sqlite:///{tmp_path / 'outbox.db'}", None
    else:
        url, schema = postgres_url(), f"nbout_{uuid.uuid4().hex[:12]}"
    try:
        with open_store(url, schema=schema, pepper=PEPPER) as store:
            store.upgrade()
            store.create_tenant("acme")
            store.create_tenant("globex")
        yield url, schema
    finally:
        if schema is not None:
            drop_schema(url, schema)


@pytest.fixture
def store(database: tuple[str, str | None]) -> Iterator[Store]:
    url, schema = database
    with open_store(url, schema=schema, pepper=PEPPER) as store:
        yield store
