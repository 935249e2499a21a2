"""Fixtures for the CLV plugin tests: a migrated SQLite store and a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from clvkit import T0, FakeClock

from nextbest.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A migrated SQLite store with tenants ``acme`` and ``globex``."""
    s = open_store(f"sqlite:///{tmp_path / 'clv.db'}", pepper=b"test")
    s.upgrade()
    s.create_tenant("acme")
    s.create_tenant("globex")
    yield s
    s.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)
