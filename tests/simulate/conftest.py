"""Fixtures for the simulation tests: a migrated store (SQLite, and PostgreSQL in a throwaway
schema when NEXTBEST_TEST_POSTGRES_URL is set) with tenants acme (seeded) and globex."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from populationkit import seed_tenant

from nextbest.store import Store, open_store

PG_URL_ENV = "NEXTBEST_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url, schema = f"sqlite:///{tmp_path / 'simulate.db'}", None
    else:
        url = os.environ.get(PG_URL_ENV, "")
        if not url:
            pytest.skip(f"{PG_URL_ENV} is not set: PostgreSQL simulation tests skipped")
        schema = f"nbsim_{uuid.uuid4().hex[:12]}"
    s = open_store(url, schema=schema, pepper=b"test")
    try:
        s.upgrade()
        for tenant in ("acme", "globex"):
            s.create_tenant(tenant)
        seed_tenant(s)
        yield s
    finally:
        s.close()
        if schema is not None:
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
