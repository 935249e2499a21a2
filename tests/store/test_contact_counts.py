"""Contacts per (customer, UTC day, offer, channel): kept with every write path, given back on
removal, dropped on forget, and backfilled by migrations 0010 and 0012 from stored
interactions; with them the offer outcomes (latest time and count per offer and outcome type)."""

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


# -- classified responses and offer outcomes (migration 0012) -----------------------------------
def _classified(store: Store, customer: str = "c1") -> set[tuple]:
    return {
        (c.day.isoformat(), c.offer_id, c.channel, c.positives, c.negatives)
        for c in store.get_contact_counts("acme", customer)
    }


def _outcomes(store: Store, customer: str = "c1") -> set[tuple]:
    return {
        (o.offer_id, o.outcome, o.kind, o.classification, o.last_at, o.n)
        for o in store.get_offer_outcomes("acme", customer)
    }


CLASSIFIED = {
    ("2026-03-09", "x", "web", 1, 0),
    ("2026-03-09", "y", "email", 0, 0),
    ("2026-03-10", "x", "web", 0, 0),
    ("2026-03-10", None, None, 0, 1),
}
OUTCOMES = {  # the dismissal names no offer: no per-offer outcome
    ("x", "impression", "impression", "neutral", DAY2, 3),
    ("x", "conversion", "response", "positive", DAY1, 1),
    ("y", "impression", "impression", "neutral", DAY1, 1),
}


def test_classified_responses_and_offer_outcomes_on_every_write_path(store: Store) -> None:
    _offers(store)
    for row in ROWS:
        store.record_interaction("acme", row)
    store.record_interaction("acme", ROWS[0])  # a retry counts once
    assert _classified(store) == CLASSIFIED and _outcomes(store) == OUTCOMES
    store.create_tenant("bulk")
    for tenant in ("bulk",):
        for offer in ("x", "y"):
            store.put_offer(tenant, {"id": offer})
        store.record_interactions_bulk(tenant, ROWS[:2])  # all new: the fast path
        store.record_interactions_bulk(tenant, ROWS)  # some duplicates: the SQL fold
    assert store.get_offer_outcomes("bulk", "c1") == store.get_offer_outcomes("acme", "c1")
    assert store.get_contact_counts("bulk", "c1") == store.get_contact_counts("acme", "c1")
    assert store.tenant_offer_outcomes("acme") == {"c1": store.get_offer_outcomes("acme", "c1")}


def test_removals_recompute_the_offer_outcomes(store: Store) -> None:
    _offers(store)
    for row in [*ROWS, _row("g", "dismiss", "x", "web", DAY2)]:
        store.record_interaction("acme", row)
    # the latest impression of x goes: its last time falls back to the earlier ones
    store.delete_interaction("acme", "e")
    assert ("x", "impression", "impression", "neutral", DAY1, 2) in _outcomes(store)
    # a correction moves the conversion to a dismissal (its row goes, the count adds up)
    store.correct_interaction("acme", "c", _row("c", "dismiss", "x", "web", DAY1))
    assert _outcomes(store) == {
        ("x", "impression", "impression", "neutral", DAY1, 2),
        ("x", "dismiss", "response", "negative", DAY2, 2),
        ("y", "impression", "impression", "neutral", DAY1, 1),
    }
    assert ("2026-03-09", "x", "web", 0, 1) in _classified(store)
    assert ("2026-03-10", "x", "web", 0, 1) in _classified(store)
    # a bulk replacement moves the impression of y to x
    store.record_interactions_bulk(
        "acme", [_row("d", "impression", "x", "web", DAY2)], replace=True
    )
    assert ("x", "impression", "impression", "neutral", DAY2, 3) in _outcomes(store)
    assert not any(o[0] == "y" for o in _outcomes(store))
    store.forget_customer("acme", "c1")
    assert _outcomes(store) == set() and store.get_offer_outcomes("acme", "c1") == []


def test_migration_0012_backfills_from_stored_interactions(store: Store) -> None:
    _offers(store)
    store.record_interactions_bulk("acme", ROWS)
    dialect = store.dialect  # type: ignore[attr-defined]
    script = next(m.sql for m in load_migrations(dialect) if m.version == 12)
    start = script.index("UPDATE customer_contact_counts")
    update = script[start : script.index(";", start)]
    start = script.index("INSERT INTO customer_offer_outcomes")
    insert = script[start : script.index(";", start)]
    with store._transaction() as cur:  # type: ignore[attr-defined]
        # as a database of version 11 has them: no classified counts, no offer outcomes
        cur.execute("UPDATE customer_contact_counts SET positives = 0, negatives = 0")
        cur.execute("DELETE FROM customer_offer_outcomes")
        cur.execute(update)
        cur.execute(insert)
    assert _classified(store) == CLASSIFIED
    assert _outcomes(store) == OUTCOMES


def test_upgrading_a_version_11_database_backfills_version_12(store: Store) -> None:
    _offers(store)
    store.record_interactions_bulk("acme", ROWS)
    with store._transaction() as cur:  # type: ignore[attr-defined]
        # take the database back to what version 11 had
        cur.execute("DROP TABLE customer_offer_outcomes")
        cur.execute("ALTER TABLE customer_contact_counts DROP COLUMN positives")
        cur.execute("ALTER TABLE customer_contact_counts DROP COLUMN negatives")
        cur.execute("DELETE FROM schema_migrations WHERE version = 12")
    assert store.upgrade() == [12]
    assert _classified(store) == CLASSIFIED
    assert _outcomes(store) == OUTCOMES
    assert _counts(store) == EXPECTED
