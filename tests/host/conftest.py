"""Shared fixtures and small builders for the host tests.

Hosts are built with only the built-in plugin loaded from entry points (``NEXTBEST_PLUGINS=
builtin``), so first-party plugins installed in the same environment cannot change the results;
test plugins are passed explicitly with ``Host(plugins=[...])``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from nextbest import Host


@pytest.fixture(autouse=True)
def _builtin_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTBEST_PLUGINS", "builtin")
    monkeypatch.delenv("NEXTBEST_DISABLE_PLUGINS", raising=False)


@pytest.fixture(scope="session")
def host() -> Iterator[Host]:
    """A Host with only the built-in plugin (shared: hosts are immutable once built)."""
    # the environment is restored before yielding: a session fixture must not leak it into
    # other test folders (the CLV tests need every installed plugin)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEXTBEST_PLUGINS", "builtin")
        mp.delenv("NEXTBEST_DISABLE_PLUGINS", raising=False)
        built = Host()
    yield built


@pytest.fixture
def make_host() -> Callable[..., Host]:
    """Build a Host with the built-in plugin plus the given test plugins."""

    def make(*plugins: object) -> Host:
        return Host(plugins=plugins)

    return make
