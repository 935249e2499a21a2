"""Contacts per (customer, UTC day, offer, channel): kept with every write path, given back on
removal, dropped on forget, and backfilled by migration 0010 from stored interactions."""

from __future__ import annotations

from datetime import UTC, date, datetime

from nextbest.store import ContactCount, InteractionIn, Store
from nextbest.store.core_sql import load_migrations

DAY1 = datetime(2026, 3, 9, 10, tzinfo=UTC)
DAY2 = datetime(2026, 3, 10, 23, 59, tzinfo=UTC)


def _row(
    key: str, outcome: str, offer: str | None, channel: str | None, at: datetime, cust: str = "c1"
) -> InteractionIn:
    return InteractionIn(
        customer_id=cust, outcome=outcome, idempotency_key=key, offer_id=offer, channel=channel,
        occurred_at=at,
    )  # fmt: skip


def _counts(store: Store, customer: str = "c1") -> set[tuple]:
    return {
        (c.day.isoformat(), c.offer_id, c.channel, c.interactions, c.impressions, c.responses,
         c.conversions)
        for c in store.get_contact_counts("acme", customer)
    }  # fmt: skip


ROWS = [
    _row("a", "impression", "x", "web", DAY1),
    _row("b", "impression", "x", "web", DAY1),
    _row("c", "conversion", "x", "web", DAY1),
    _row("d", "impression", "y", "email", DAY1),
    _row("e", "impression", "x", "web", DAY2),
    _row("f", "dismiss", None, None, DAY2),
]
EXPECTED = {
    ("2026-03-09", "x", "web", 3, 2, 1, 1),
    ("2026-03-09", "y", "email", 1, 1, 0, 0),
    ("2026-03-10", "x", "web", 1, 1, 0, 0),
    ("2026-03-10", None, None, 1, 0, 1, 0),
}


def _offers(store: Store) -> None:
    for offer in ("x", "y"):
        store.put_offer("acme", {"id": offer})


def test_single_records_are_counted_per_day_offer_and_channel(store: Store) -> None:
    _offers(store)
    for row in ROWS:
        store.record_interaction("acme", row)
    store.record_interaction("acme", ROWS[0])  # a retry counts once
    assert _counts(store) == EXPECTED
    assert _counts(store, "other") == set()
    later = store.get_contact_counts("acme", "c1", date(2026, 3, 10))
    assert {c.day for c in later} == {date(2026, 3, 10)}
    assert ContactCount(date(2026, 3, 10), "x", "web", 1, 1, 0, 0) in later


def test_bulk_paths_agree_with_single_records(store: Store) -> None:
    _offers(store)
    store.record_interactions_bulk("acme", ROWS[:2])  # all new
    store.record_interactions_bulk("acme", ROWS)  # some duplicates
    assert _counts(store) == EXPECTED
    many = [_row(f"m{i}", "impression", "y", "sms", DAY1, cust=f"m{i % 7}") for i in range(200)]
    store.record_interactions_bulk("acme", many)
    assert (
        sum(c.impressions for i in range(7) for c in store.get_contact_counts("acme", f"m{i}"))
        == 200
    )


def test_removals_take_contacts_away(store: Store) -> None:
    _offers(store)
    for row in ROWS:
        store.record_interaction("acme", row)
    store.delete_interaction("acme", "d")
    store.correct_interaction("acme", "c", _row("c", "impression", "x", "sms", DAY2))
    assert _counts(store) == {
        ("2026-03-09", "x", "web", 2, 2, 0, 0),
        ("2026-03-10", "x", "web", 1, 1, 0, 0),
        ("2026-03-10", "x", "sms", 1, 1, 0, 0),
        ("2026-03-10", None, None, 1, 0, 1, 0),
    }
    # a bulk row replacing a stored one moves its contact too
    store.record_interactions_bulk(
        "acme", [_row("e", "impression", "y", "email", DAY2)], replace=True
    )
    assert ("2026-03-10", "y", "email", 1, 1, 0, 0) in _counts(store)
    assert ("2026-03-10", "x", "web", 1, 1, 0, 0) not in _counts(store)
    store.forget_customer("acme", "c1")
    assert _counts(store) == set()


def test_migration_backfills_from_stored_interactions(store: Store) -> None:
    _offers(store)
    store.record_interactions_bulk("acme", ROWS)
    dialect = store.dialect  # type: ignore[attr-defined]
    script = next(m.sql for m in load_migrations(dialect) if m.version == 10)
    start = script.index("INSERT INTO customer_contact_counts")
    backfill = script[start : script.index(";", start)]
    with store._transaction() as cur:  # type: ignore[attr-defined]
        cur.execute("DELETE FROM customer_contact_counts")
        cur.execute(backfill)
    assert _counts(store) == EXPECTED
