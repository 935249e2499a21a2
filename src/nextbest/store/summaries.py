"""Folding interactions into the three summary levels (customer, customer x offer, customer x day).

The same rows feed the single-interaction and the bulk paths, so both agree by construction: a
chunk's new interactions are aggregated here in Python, then merged into the stored summaries with
one upsert per touched key (counters add; first/last times take min/max; the last outcome follows
the latest ``occurred_at``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

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


def _codes(labels: Sequence[Any]) -> tuple[list[Any], npt.NDArray[np.int64]]:
    """Distinct labels in sorted order and each label's index in that order."""
    distinct = sorted(set(labels))
    index = {label: i for i, label in enumerate(distinct)}
    return distinct, np.fromiter(map(index.__getitem__, labels), np.int64, len(labels))


def aggregate_columns(
    tenant_id: str,
    customer_ids: Sequence[str],
    offer_ids: Sequence[str | None],
    outcomes: Sequence[str],
    classifications: Sequence[str],
    kinds: Sequence[str],
    values: Sequence[float],
    occurred_at: Sequence[float],
) -> dict[str, list[tuple]]:
    """:func:`aggregate` of events given as columns (in recording order), vectorised with
    numpy. The rows are the same, float sums included: each key's values are added one by one
    in recording order starting from 0.0, as the fold does."""
    n = len(customer_ids)
    if n == 0:
        return {table: [] for table in TABLES}
    customers, customer = _codes(customer_ids)
    at = np.fromiter(occurred_at, np.float64, n)
    value = np.fromiter(values, np.float64, n)
    kind = np.array(kinds, dtype=object)
    classification = np.array(classifications, dtype=object)
    outcome = np.array(outcomes, dtype=object)
    response = kind != "impression"
    positive = classification == "positive"
    negative = classification == "negative"
    # interactions, impressions, positive, negative, neutral, conversions: 0/1 per event
    flags = (
        np.ones(n, np.float64),
        ~response,
        response & positive,
        response & negative,
        response & ~positive & ~negative,
        outcome == CONVERSION,
    )

    def fold(
        events: npt.NDArray[np.int64], keys: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], list[list[Any]]]:
        """The distinct keys of the selected events (ascending event indices), in order, and
        per key the columns counters..., first, last, last outcome."""
        unique, group = np.unique(keys, return_inverse=True)
        g = len(unique)
        if g == 0:
            return unique, [[] for _ in range(len(flags) + 4)]
        columns: list[list[Any]] = []
        for flag in flags:
            columns.append(np.bincount(group, flag[events], g).astype(np.int64).tolist())
        columns.append(np.bincount(group, value[events], g).tolist())
        t = at[events]
        # By group, then time, then recording order: a group's first entry has the earliest
        # time and its last entry is the latest event (the later recorded on a tie).
        order = np.lexsort((np.arange(len(events)), t, group))
        ends = np.cumsum(np.bincount(group, minlength=g)) - 1
        starts = np.concatenate(([0], ends[:-1] + 1))
        columns.append(t[order[starts]].tolist())
        columns.append(t[order[ends]].tolist())
        columns.append(outcome[events[order[ends]]].tolist())
        return unique, columns

    def rows(labels: list[list[Any]], columns: list[list[Any]]) -> list[tuple]:
        return list(zip(repeat(tenant_id), *labels, *columns))

    names = np.array(customers, dtype=object)
    every = np.arange(n)
    unique, columns = fold(every, customer)
    result: dict[str, list[tuple]] = {"customer_summaries": rows([names[unique].tolist()], columns)}
    with_offer = np.fromiter((o is not None for o in offer_ids), np.bool_, n)
    selected = np.flatnonzero(with_offer)
    offers, offer = _codes([o for o in offer_ids if o is not None])
    width = max(len(offers), 1)
    unique, columns = fold(selected, customer[selected] * width + offer)
    offer_names = np.array(offers, dtype=object)
    result["customer_offer_summaries"] = rows(
        [names[unique // width].tolist(), offer_names[unique % width].tolist()], columns
    )
    day = np.floor_divide(at, 86400.0).astype(np.int64)
    first_day = int(day.min())
    span = int(day.max()) - first_day + 1
    unique, columns = fold(every, customer * span + (day - first_day))
    days, which = np.unique(unique % span, return_inverse=True)
    day_names = np.array([day_of((d + first_day) * 86400.0) for d in days.tolist()], object)
    result["customer_daily_summaries"] = rows(
        [names[unique // span].tolist(), day_names[which].tolist()], columns
    )
    return result
