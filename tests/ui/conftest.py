"""Registers the report fixtures, which live in uikit.py so test files can import its helpers
unambiguously (several test folders have a conftest)."""

from uikit import store, ui  # noqa: F401
