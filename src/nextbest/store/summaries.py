"""Folding interactions into the three summary levels (customer, customer x offer, customer x day).

The same rows feed the single-interaction and the bulk paths, so both agree by construction: a
chunk's new interactions are aggregated here in Python, then merged into the stored summaries with
one upsert per touched key (counters add; first/last times take min/max; the last outcome follows
the latest ``occurred_at``).

Removing interactions (a deletion, a correction, a bulk row replacing another, see
``interactions_sql``) goes the other way through the same fold: the keys the removed interactions
counted in are folded again from their customers' remaining interactions in recording order
(:func:`rebuild`) and written over the stored rows, or deleted when nothing remains. A fold in
recording order is what recording those interactions one by one produces, float sums included,
so a corrected summary is bit for bit the summary of the data as corrected. (Subtracting the
removed values instead would leave rounding residues: 0.1 + 0.2 - 0.2 is not 0.1.)

No summary total is ever stored non-finite: folds check their sums, and the merge refuses to add
two totals that could overflow (see :func:`merge_clause`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from nextbest.store.errors import InvalidInputError
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


#: Two totals each within this magnitude (half the largest float) add to a finite number.
HALF_FLOAT_MAX = sys.float_info.max / 2

#: Why a write was refused by the finite-total guard (the merge's or a fold's).
NON_FINITE_TOTAL = (
    "the write would make a summary's total_value non-finite (beyond the float range); "
    "values are limited to the business range, so a stored total this large predates the "
    "limit: correct or delete the interactions that hold such values"
)


def _guarded_sum(column: str) -> str:
    """``s.column + excluded.column``, or NULL (which the NOT NULL column refuses, failing the
    statement) when either operand lies beyond :data:`HALF_FLOAT_MAX` or is not finite. SQLite
    would store an infinity and PostgreSQL raise an overflow error; this fails the same way on
    both, and a NaN fails the comparison too."""
    bound = repr(HALF_FLOAT_MAX)
    return (
        f"CASE WHEN abs(s.{column}) <= {bound} AND abs(excluded.{column}) <= {bound} "
        f"THEN s.{column} + excluded.{column} END"
    )


def merge_clause(table: str) -> str:
    """``ON CONFLICT ... DO UPDATE`` merging an aggregated row into ``table`` (alias ``s``).

    SQLite and PostgreSQL share this syntax; CASE stands in for GREATEST/LEAST, which SQLite
    lacks. Ties on ``last_at`` go to the incoming row, i.e. the later recorded. ``total_value``
    is added under the finite guard of :func:`_guarded_sum`: a merge that could leave it
    non-finite fails with a NOT NULL violation on ``total_value`` instead.
    """
    keys = TABLES[table]
    adds = ", ".join(
        f"{c} = {_guarded_sum(c)}" if c == "total_value" else f"{c} = s.{c} + excluded.{c}"
        for c in COUNTERS
    )
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


def replace_sql(table: str) -> str:
    """``INSERT ... ON CONFLICT DO UPDATE`` writing one recomputed row over the stored one."""
    columns = summary_columns(table)
    keys = TABLES[table]
    sets = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
    )


def delete_sql(table: str) -> str:
    """``DELETE`` of one key's row of ``table`` (parameters: the key, tenant first)."""
    return f"DELETE FROM {table} WHERE " + " AND ".join(f"{k} = ?" for k in TABLES[table])


def _non_finite(customer_id: str) -> InvalidInputError:
    return InvalidInputError(f"{NON_FINITE_TOTAL} (customer {customer_id!r})", field="value")


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
    for acc in (customers, offers, days):
        for key, row in acc.items():
            if not math.isfinite(row[6]):
                raise _non_finite(key[0])
    return {
        table: [(tenant_id, *key, *acc[key]) for key in sorted(acc)]
        for table, acc in (
            ("customer_summaries", customers),
            ("customer_offer_summaries", offers),
            ("customer_daily_summaries", days),
        )
    }


def keys_of(events: Iterable[Event]) -> dict[str, set[tuple[str, ...]]]:
    """The summary keys (without the tenant) the events count in, per table."""
    keys: dict[str, set[tuple[str, ...]]] = {table: set() for table in TABLES}
    for event in events:
        customer_id, offer_id = event[0], event[1]
        keys["customer_summaries"].add((customer_id,))
        if offer_id is not None:
            keys["customer_offer_summaries"].add((customer_id, offer_id))
        keys["customer_daily_summaries"].add((customer_id, day_of(event[6])))
    return keys


def rebuild(
    tenant_id: str, keys: dict[str, set[tuple[str, ...]]], events: Iterable[Event]
) -> tuple[dict[str, list[tuple]], dict[str, list[tuple]]]:
    """The rows of ``keys`` folded again from ``events``: every remaining interaction of the
    keys' customers, in recording order (see the module doc).

    Returns, per table and sorted by key, the rows to write over the stored ones
    (:func:`replace_sql`) and the keys, tenant first, to delete because no interaction is
    left for them (:func:`delete_sql`).
    """
    writes: dict[str, list[tuple]] = {}
    deletes: dict[str, list[tuple]] = {}
    for table, rows in aggregate(tenant_id, events).items():
        width = len(TABLES[table])
        folded = {row[1:width]: row for row in rows}
        wanted = sorted(keys.get(table, ()))
        writes[table] = [folded[key] for key in wanted if key in folded]
        deletes[table] = [(tenant_id, *key) for key in wanted if key not in folded]
    return writes, deletes


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
        totals = np.asarray(columns[len(flags)], dtype=np.float64)
        if not np.isfinite(totals).all():
            raise _non_finite(labels[0][int(np.flatnonzero(~np.isfinite(totals))[0])])
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
