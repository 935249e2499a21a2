"""Registers the API fixtures, which live in apikit.py so test files can import its helpers
unambiguously (several test folders have a conftest)."""

from apikit import api, only_builtin_plugins, store, store_url  # noqa: F401
