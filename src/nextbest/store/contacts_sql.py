"""Contact counts of the SQL store: a customer's interactions per (UTC day, offer, channel).

Contact policies scoped to an offer, a category or a channel count only the contacts in their
scope; the daily summaries are per customer only, so this table keeps the finer counts. It is
maintained in the transaction that records or removes the interactions it counts (the same
places as the summaries): :meth:`ContactsSql._count_contacts` adds new interactions and, with
``sign=-1``, takes removed ones away (integer counters: the difference is exact) and deletes
the rows nothing is left in. A decision reads one customer's rows once
(:meth:`ContactsSql.get_contact_counts`). Migration 0010 backfilled it from the interactions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from nextbest.store.base import ContactCount
from nextbest.store.constraints_sql import ConstraintsSql
from nextbest.store.core_sql import Cursor, check_id, valid_tenant_id
from nextbest.store.outcomes import CONVERSION
from nextbest.store.summaries import day_of

#: (customer id, offer id, channel, kind, outcome, occurred at): what a contact count needs of
#: an interaction.
Contact = tuple[str, str | None, str | None, str, str, float]

_KEYS = ("tenant_id", "customer_id", "day", "offer_id", "channel")
_COUNTERS = ("interactions", "impressions", "responses", "conversions")
_ADD = (
    f"INSERT INTO customer_contact_counts AS s ({', '.join(_KEYS + _COUNTERS)}) "
    f"VALUES ({', '.join('?' for _ in _KEYS + _COUNTERS)}) "
    f"ON CONFLICT ({', '.join(_KEYS)}) DO UPDATE SET "
    + ", ".join(f"{c} = s.{c} + excluded.{c}" for c in _COUNTERS)
)
_WHERE_KEY = " AND ".join(f"{k} = ?" for k in _KEYS)
_SUBTRACT = (
    "UPDATE customer_contact_counts SET "
    + ", ".join(f"{c} = {c} - ?" for c in _COUNTERS)
    + f" WHERE {_WHERE_KEY}"
)
_DELETE_EMPTY = f"DELETE FROM customer_contact_counts WHERE {_WHERE_KEY} AND interactions <= 0"


def contact_of(row: Sequence[Any]) -> Contact:
    """The contact of an interaction row in ``INTERACTION_COLUMNS`` order (tenant first)."""
    return (row[1], row[2], row[3], row[6], row[4], row[8])


def fold_contacts(tenant_id: str, contacts: Iterable[Contact]) -> list[tuple[Any, ...]]:
    """Rows (keys then counters) of the contacts aggregated per key, sorted by key so
    concurrent writers touch rows in the same order."""
    acc: dict[tuple[str, str, str, str], list[int]] = {}
    for customer_id, offer_id, channel, kind, outcome, at in contacts:
        key = (customer_id, day_of(at), offer_id or "", channel or "")
        counts = acc.get(key)
        if counts is None:
            counts = acc[key] = [0, 0, 0, 0]
        counts[0] += 1
        if kind == "impression":
            counts[1] += 1
        else:
            counts[2] += 1
        if outcome == CONVERSION:
            counts[3] += 1
    return [(tenant_id, *key, *acc[key]) for key in sorted(acc)]


class ContactsSql(ConstraintsSql):
    """Contacts per customer, UTC day, offer and channel."""

    def _count_contacts(
        self, cur: Cursor, tenant_id: str, contacts: Iterable[Contact], sign: int = 1
    ) -> None:
        """Add (``sign=1``) or take away (``sign=-1``) interactions' contacts, in the caller's
        transaction."""
        rows = fold_contacts(tenant_id, contacts)
        if not rows:
            return
        if sign > 0:
            cur.executemany(_ADD, rows)
            return
        width = len(_KEYS)
        cur.executemany(_SUBTRACT, [(*row[width:], *row[:width]) for row in rows])
        cur.executemany(_DELETE_EMPTY, [row[:width] for row in rows])

    def get_contact_counts(
        self, tenant_id: str, customer_id: str, start: date | None = None
    ) -> list[ContactCount]:
        check_id("customer id", customer_id)
        if start is not None and not isinstance(start, date):
            raise TypeError("start must be a date")
        if not valid_tenant_id(tenant_id):
            return []
        sql = (
            f"SELECT day, offer_id, channel, {', '.join(_COUNTERS)} FROM customer_contact_counts "
            "WHERE tenant_id = ? AND customer_id = ?"
        )
        params: list[Any] = [tenant_id, customer_id]
        if start is not None:
            sql += " AND day >= ?"
            params.append(start.isoformat())
        with self._read() as cur:
            rows = cur.execute(sql + " ORDER BY day, offer_id, channel", params).fetchall()
        return [
            ContactCount(
                date.fromisoformat(day),
                offer_id or None,
                channel or None,
                int(n),
                int(impressions),
                int(responses),
                int(conversions),
            )
            for day, offer_id, channel, n, impressions, responses, conversions in rows
        ]

    def tenant_contact_counts(
        self, tenant_id: str, start: date | None = None
    ) -> dict[str, list[ContactCount]]:
        if start is not None and not isinstance(start, date):
            raise TypeError("start must be a date")
        if not valid_tenant_id(tenant_id):
            return {}
        sql = (
            f"SELECT customer_id, day, offer_id, channel, {', '.join(_COUNTERS)} "
            "FROM customer_contact_counts WHERE tenant_id = ?"
        )
        params: list[Any] = [tenant_id]
        if start is not None:
            sql += " AND day >= ?"
            params.append(start.isoformat())
        with self._read() as cur:
            rows = cur.execute(sql + " ORDER BY customer_id, day, offer_id, channel", params)
            rows = rows.fetchall()
        out: dict[str, list[ContactCount]] = {}
        for cid, day, offer_id, channel, n, impressions, responses, conversions in rows:
            out.setdefault(cid, []).append(
                ContactCount(
                    date.fromisoformat(day),
                    offer_id or None,
                    channel or None,
                    int(n),
                    int(impressions),
                    int(responses),
                    int(conversions),
                )
            )
        return out
