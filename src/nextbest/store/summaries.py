"""Folding interactions into the three summary levels (customer, customer x offer, customer x day).

The same rows feed the single-interaction and the bulk paths, so both agree by construction: a
chunk's new interactions are aggregated here in Python, then merged into the stored summaries with
one upsert per touched key (counters add; first/last times take min/max; the last outcome follows
the latest ``occurred_at``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from nextbest.store.outcomes import CONVERSION

# (customer_id, offer_id, outcome, classification, kind, value, occurred_at) of a new interaction.
Event = tuple[str, str | None, str, str, str, float, float]

COUNTERS = (
    "interactions",
    "impressions",
    "positive",
    "negative",
    "neutral",
    "conversions",
    "total_value",
)
TABLES: dict[str, tuple[str, ...]] = {
    "customer_summaries": ("tenant_id", "customer_id"),
    "customer_offer_summaries": ("tenant_id", "customer_id", "offer_id"),
    "customer_daily_summaries": ("tenant_id", "customer_id", "day"),
}

_day_cache: dict[int, str] = {}


def day_of(epoch_seconds: float) -> str:
    """The UTC calendar day (ISO ``YYYY-MM-DD``) of an epoch time."""
    day_number = int(epoch_seconds // 86400)
    text = _day_cache.get(day_number)
    if text is None:
        text = datetime.fromtimestamp(day_number * 86400, UTC).date().isoformat()
        if len(_day_cache) < 100_000:
            _day_cache[day_number] = text
    return text


def merge_clause(table: str) -> str:
    """``ON CONFLICT ... DO UPDATE`` merging an aggregated row into ``table`` (alias ``s``).

    SQLite and PostgreSQL share this syntax; CASE stands in for GREATEST/LEAST, which SQLite
    lacks. Ties on ``last_at`` go to the incoming row, i.e. the later recorded.
    """
    keys = TABLES[table]
    adds = ", ".join(f"{c} = s.{c} + excluded.{c}" for c in COUNTERS)
    later = "excluded.last_at >= s.last_at"
    return (
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {adds}, "
        "first_at = CASE WHEN excluded.first_at < s.first_at "
        "THEN excluded.first_at ELSE s.first_at END, "
        f"last_outcome = CASE WHEN {later} THEN excluded.last_outcome ELSE s.last_outcome END, "
        f"last_at = CASE WHEN {later} THEN excluded.last_at ELSE s.last_at END"
    )


def summary_columns(table: str) -> tuple[str, ...]:
    """The columns of a summary table, keys first."""
    return (*TABLES[table], *COUNTERS, "first_at", "last_at", "last_outcome")


def upsert_sql(table: str) -> str:
    """``INSERT ... ON CONFLICT DO UPDATE`` merging one aggregated row into ``table``."""
    columns = summary_columns(table)
    return (
        f"INSERT INTO {table} AS s ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)}) {merge_clause(table)}"
    )


def _fold(acc: dict[tuple[str, ...], list], key: tuple[str, ...], event: Event) -> None:
    _, _, outcome, classification, kind, value, at = event
    row = acc.get(key)
    if row is None:
        # interactions, impressions, positive, negative, neutral, conversions, value, first, last,
        # last outcome
        row = [0, 0, 0, 0, 0, 0, 0.0, at, at, outcome]
        acc[key] = row
    row[0] += 1
    if kind == "impression":
        row[1] += 1
    elif classification == "positive":
        row[2] += 1
    elif classification == "negative":
        row[3] += 1
    else:
        row[4] += 1
    if outcome == CONVERSION:
        row[5] += 1
    row[6] += value
    if at < row[7]:
        row[7] = at
    if at >= row[8]:
        row[8] = at
        row[9] = outcome


def aggregate(tenant_id: str, events: Iterable[Event]) -> dict[str, list[tuple]]:
    """Aggregate new interactions (in recording order) into upsert rows per summary table.

    Rows are sorted by key so concurrent writers lock summary rows in the same order.
    """
    customers: dict[tuple[str, ...], list] = {}
    offers: dict[tuple[str, ...], list] = {}
    days: dict[tuple[str, ...], list] = {}
    for event in events:
        customer_id, offer_id = event[0], event[1]
        _fold(customers, (customer_id,), event)
        if offer_id is not None:
            _fold(offers, (customer_id, offer_id), event)
        _fold(days, (customer_id, day_of(event[6])), event)
    return {
        table: [(tenant_id, *key, *acc[key]) for key in sorted(acc)]
        for table, acc in (
            ("customer_summaries", customers),
            ("customer_offer_summaries", offers),
            ("customer_daily_summaries", days),
        )
    }
