"""Helpers shared by the store tests (imported by conftest.py and test modules)."""

from __future__ import annotations

import os

import pytest

PEPPER = b"test-pepper"
PG_URL_ENV = "NEXTBEST_TEST_POSTGRES_URL"
TABLES = (
    "recommendation_items, recommendations, api_keys, offers, flows, outcome_types, "
    "interactions, customer_summaries, customer_offer_summaries, customer_daily_summaries, "
    "webhook_deliveries, outbox_events, webhook_endpoints, "
    "trigger_events, trigger_states, triggers, "
    "offer_consumption, outcome_consumption, customer_contact_counts, customer_offer_outcomes, "
    "simulations, customer_attributes, documents, locks, tenants"
)


def postgres_url() -> str:
    """The test server URL, or skip the test with the reason."""
    url = os.environ.get(PG_URL_ENV)
    if not url:
        pytest.skip(
            f"{PG_URL_ENV} is not set: PostgreSQL store tests skipped "
            "(set it to e.g. postgresql://postgres@127.0.0.1:5432/test)"
        )
    return url


def drop_schema(url: str, schema: str) -> None:
    """Drop a test schema and everything in it."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
