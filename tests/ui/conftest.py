"""Registers the report fixtures, which live in uikit.py and browserkit.py so test files can
import their helpers unambiguously (several test folders have a conftest)."""

from typing import Any

from browserkit import TAKEN, browser, context, served  # noqa: F401
from uikit import store, ui  # noqa: F401


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """List the browser tests' screenshots (build/screenshots/, not committed)."""
    if TAKEN:
        terminalreporter.section("report screenshots")
        for path in TAKEN:
            terminalreporter.write_line(str(path))
