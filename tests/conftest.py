"""Fixtures shared by the top-level tests (bulk import, the commands' database handling)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from nextbest.store import Store, open_store


def _postgres_url() -> str:
    url = os.environ.get("NEXTBEST_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("NEXTBEST_TEST_POSTGRES_URL is not set: PostgreSQL test skipped")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store with tenant ``acme`` on SQLite and on PostgreSQL (throwaway schema)."""
    if request.param == "sqlite":
        with open_store(f"sqlite:///{tmp_path / 'ingest.db'}", pepper=b"p") as store:
            store.upgrade()
            store.create_tenant("acme")
            yield store
        return
    url = _postgres_url()
    import psycopg

    schema = f"nbingest_{uuid.uuid4().hex[:12]}"
    try:
        with open_store(url, schema=schema, pepper=b"p") as store:
            store.upgrade()
            store.create_tenant("acme")
            yield store
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """The URL of an empty, throwaway PostgreSQL schema (the search path set in the URL, as a
    command line user could), dropped afterwards."""
    url = _postgres_url()
    import psycopg

    schema = f"nbcli_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
