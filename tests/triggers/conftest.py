"""Fixtures for the trigger tests: a migrated SQLite store and the API on a real host."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from triggerkit import Api

from nextbest.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'triggers.db'}", pepper=b"test")
    s.upgrade()
    for tenant in ("acme", "globex"):
        s.create_tenant(tenant)
    yield s
    s.close()


@pytest.fixture
def api(store: Store) -> Api:
    return Api(store)
