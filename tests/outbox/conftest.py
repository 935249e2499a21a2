"""Registers the outbox fixtures, which live in outboxkit.py so test files can import its
helpers unambiguously (several test folders have a conftest)."""

from outboxkit import database, store  # noqa: F401
