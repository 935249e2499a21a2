"""Contact counts of the SQL store: a customer's interactions per (UTC day, offer, channel).

Contact policies scoped to an offer, a category or a channel count only the contacts in their
scope; the daily summaries are per customer only, so this table keeps the finer counts. It is
maintained in the transaction that records or removes the interactions it counts (the same
places as the summaries): :meth:`ContactsSql._count_contacts` adds new interactions and, with
``sign=-1``, takes removed ones away (integer counters: the difference is exact) and deletes
the rows nothing is left in. A decision reads one customer's rows once
(:meth:`ContactsSql.get_contact_counts`). Migration 0010 backfilled it from the interactions,
0012 its positive / negative counts.

The offer outcomes (``customer_offer_outcomes``: the latest time and count per customer, offer
and outcome type) are kept in the same places: new interactions are merged (count added, the
later time kept); removed ones make their keys be read again from the remaining interactions
(a latest time cannot be subtracted). ``cooldown`` reads the latest impression, ``outcome_based``
the latest outcome of its type.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from nextbest.store.base import ContactCount, OfferOutcome, from_epoch
from nextbest.store.constraints_sql import ConstraintsSql
from nextbest.store.core_sql import Cursor, check_id, valid_tenant_id
from nextbest.store.outcomes import CONVERSION
from nextbest.store.summaries import day_of

#: (customer id, offer id, channel, kind, outcome, occurred at, classification): what a contact
#: count needs of an interaction.
Contact = tuple[str, str | None, str | None, str, str, float, str]

_KEYS = ("tenant_id", "customer_id", "day", "offer_id", "channel")
_COUNTERS = ("interactions", "impressions", "responses", "conversions", "positives", "negatives")
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
_OUTCOME_COLUMNS = ("offer_id", "outcome", "kind", "classification", "last_at", "n")
# n adds up; last_at keeps the later time (CASE: SQLite's max(a, b) is no PostgreSQL function)
_ADD_OUTCOMES = (
    "INSERT INTO customer_offer_outcomes AS s (tenant_id, customer_id, offer_id, outcome, kind, "
    "classification, last_at, n) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (tenant_id, customer_id, offer_id, outcome) DO UPDATE SET "
    "last_at = CASE WHEN excluded.last_at > s.last_at THEN excluded.last_at ELSE s.last_at END, "
    "n = s.n + excluded.n, kind = excluded.kind, classification = excluded.classification"
)
#: The same merge of the interactions recorded above an id (SQLite's bulk path: its only writer
#: folds the new rows in C instead of binding a row per key).
ADD_OUTCOMES_SINCE = (
    "INSERT INTO customer_offer_outcomes AS s (tenant_id, customer_id, offer_id, outcome, kind, "
    "classification, last_at, n) SELECT tenant_id, customer_id, offer_id, outcome, max(kind), "
    "max(classification), max(occurred_at), count(*) FROM interactions "
    "WHERE interaction_id > ? AND offer_id IS NOT NULL "
    "GROUP BY tenant_id, customer_id, offer_id, outcome "
    + _ADD_OUTCOMES[_ADD_OUTCOMES.index("ON CONFLICT") :]
)
_OUTCOME_KEY = "tenant_id = ? AND customer_id = ? AND offer_id = ? AND outcome = ?"
_REMAINING_OUTCOMES = f"SELECT max(occurred_at), count(*) FROM interactions WHERE {_OUTCOME_KEY}"
_SET_OUTCOMES = f"UPDATE customer_offer_outcomes SET last_at = ?, n = ? WHERE {_OUTCOME_KEY}"
_DELETE_OUTCOMES = f"DELETE FROM customer_offer_outcomes WHERE {_OUTCOME_KEY}"


def contact_of(row: Sequence[Any]) -> Contact:
    """The contact of an interaction row in ``INTERACTION_COLUMNS`` order (tenant first)."""
    return (row[1], row[2], row[3], row[6], row[4], row[8], row[5])


def fold_contacts(tenant_id: str, contacts: Iterable[Contact]) -> list[tuple[Any, ...]]:
    """Rows (keys then counters) of the contacts aggregated per key, sorted by key so
    concurrent writers touch rows in the same order."""
    acc: dict[tuple[str, str, str, str], list[int]] = {}
    for customer_id, offer_id, channel, kind, outcome, at, classification in contacts:
        key = (customer_id, day_of(at), offer_id or "", channel or "")
        counts = acc.get(key)
        if counts is None:
            counts = acc[key] = [0, 0, 0, 0, 0, 0]
        counts[0] += 1
        if kind == "impression":
            counts[1] += 1
        else:
            counts[2] += 1
        if outcome == CONVERSION:
            counts[3] += 1
        if classification == "positive":
            counts[4] += 1
        elif classification == "negative":
            counts[5] += 1
    return [(tenant_id, *key, *acc[key]) for key in sorted(acc)]


def fold_outcomes(tenant_id: str, contacts: Iterable[Contact]) -> list[tuple[Any, ...]]:
    """Rows of ``customer_offer_outcomes`` (tenant, customer, offer, outcome, kind,
    classification, last time, count) of the contacts naming an offer, sorted by key."""
    acc: dict[tuple[str, str, str], list[Any]] = {}
    for customer_id, offer_id, _channel, kind, outcome, at, classification in contacts:
        if offer_id is None:
            continue  # no offer: nothing a per-offer policy reads
        key = (customer_id, offer_id, outcome)
        found = acc.get(key)
        if found is None:
            acc[key] = [kind, classification, float(at), 1]
        else:
            found[2] = max(found[2], float(at))
            found[3] += 1
    return [(tenant_id, *key, *acc[key]) for key in sorted(acc)]


class ContactsSql(ConstraintsSql):
    """Contacts per customer, UTC day, offer and channel."""

    def _count_contacts(
        self,
        cur: Cursor,
        tenant_id: str,
        contacts: Iterable[Contact],
        sign: int = 1,
        *,
        outcomes: bool = True,
    ) -> None:
        """Add (``sign=1``) or take away (``sign=-1``) interactions' contacts and offer outcomes
        (``outcomes=False``: the caller merges the added offer outcomes itself), in the caller's
        transaction."""
        contacts = list(contacts)
        rows = fold_contacts(tenant_id, contacts)
        if not rows:
            return
        folded = fold_outcomes(tenant_id, contacts) if outcomes or sign < 0 else []
        if sign > 0:
            cur.executemany(_ADD, rows)
            if folded:
                cur.executemany(_ADD_OUTCOMES, folded)
            return
        width = len(_KEYS)
        cur.executemany(_SUBTRACT, [(*row[width:], *row[:width]) for row in rows])
        cur.executemany(_DELETE_EMPTY, [row[:width] for row in rows])
        # the interactions are gone already: each key's last time is read again from the rest
        for row in folded:
            key = row[:4]
            last_at, n = cur.execute(_REMAINING_OUTCOMES, key).fetchone()
            if int(n) == 0:
                cur.execute(_DELETE_OUTCOMES, key)
            else:
                cur.execute(_SET_OUTCOMES, (float(last_at), int(n), *key))

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
        return [_contact_count(row) for row in rows]

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
        for cid, *counted in rows:
            out.setdefault(cid, []).append(_contact_count(counted))
        return out

    def get_offer_outcomes(self, tenant_id: str, customer_id: str) -> list[OfferOutcome]:
        check_id("customer id", customer_id)
        if not valid_tenant_id(tenant_id):
            return []
        with self._read() as cur:
            rows = cur.execute(
                f"SELECT {', '.join(_OUTCOME_COLUMNS)} FROM customer_offer_outcomes "
                "WHERE tenant_id = ? AND customer_id = ? ORDER BY offer_id, outcome",
                (tenant_id, customer_id),
            ).fetchall()
        return [_offer_outcome(row) for row in rows]

    def tenant_offer_outcomes(self, tenant_id: str) -> dict[str, list[OfferOutcome]]:
        if not valid_tenant_id(tenant_id):
            return {}
        with self._read() as cur:
            rows = cur.execute(
                f"SELECT customer_id, {', '.join(_OUTCOME_COLUMNS)} FROM customer_offer_outcomes "
                "WHERE tenant_id = ? ORDER BY customer_id, offer_id, outcome",
                (tenant_id,),
            ).fetchall()
        out: dict[str, list[OfferOutcome]] = {}
        for cid, *row in rows:
            out.setdefault(cid, []).append(_offer_outcome(row))
        return out


def _contact_count(row: Sequence[Any]) -> ContactCount:
    """A ContactCount from (day, offer, channel, *counters) as stored."""
    day, offer_id, channel, *counters = row
    return ContactCount(
        date.fromisoformat(day), offer_id or None, channel or None, *(int(c) for c in counters)
    )


def _offer_outcome(row: Sequence[Any]) -> OfferOutcome:
    offer_id, outcome, kind, classification, last_at, n = row
    return OfferOutcome(offer_id, outcome, kind, classification, from_epoch(last_at), int(n))
