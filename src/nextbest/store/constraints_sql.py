"""Offer constraints of the SQL store: what positive outcomes consumed of an offer's budget
(outcome value, per UTC day and over its life) and stock (units).

:meth:`ConstraintsSql._consume` runs inside the transaction that records the outcome, so a
retried outcome (its idempotency key already used) consumes nothing, and each increment is one
``UPDATE`` of a locked row capped at the limit: concurrent responders never push a total past
its budget or stock (PostgreSQL serialises the updates of one row; SQLite has one writer).
What each outcome actually consumed (its capped share) is kept in ``outcome_consumption`` by
interaction, so :meth:`ConstraintsSql._give_back` returns exactly that when the outcome is
corrected or deleted, in that transaction, never taking a total below zero. Bulk imports
consume nothing (historical rows; the budget limits live responses).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from nextbest.store.base import OfferConsumption
from nextbest.store.core_sql import Cursor, SqlCore, check_tenant_id

#: The period of an offer's lifetime consumption (other periods are UTC days, ISO format).
TOTAL_PERIOD = "total"

_ENSURE = (
    "INSERT INTO offer_consumption (tenant_id, offer_id, period, value, units) "
    "VALUES (?, ?, ?, 0, 0) ON CONFLICT (tenant_id, offer_id, period) DO NOTHING"
)
# value and units grow up to their caps, never past them (no cap: an unreachable one; no
# NULL parameters, whose type PostgreSQL could not infer)
_CONSUME = (
    "UPDATE offer_consumption SET "
    "value = CASE WHEN value + ? <= ? THEN value + ? WHEN value < ? THEN ? ELSE value END, "
    "units = CASE WHEN units < ? THEN units + 1 ELSE units END "
    "WHERE tenant_id = ? AND offer_id = ? AND period = ? RETURNING value, units"
)
_READ = (
    "SELECT value, units FROM offer_consumption WHERE tenant_id = ? AND offer_id = ? AND period = ?"
)
# never below zero (a float residue of the differences aside, the amounts are what was added)
_GIVE_BACK = (
    "UPDATE offer_consumption SET "
    "value = CASE WHEN value - ? > 0 THEN value - ? ELSE 0 END, "
    "units = CASE WHEN units - ? > 0 THEN units - ? ELSE 0 END "
    "WHERE tenant_id = ? AND offer_id = ? AND period = ?"
)
_LEDGER_COLUMNS = "interaction_id, offer_id, day, total_value, day_value, units"
_NO_VALUE_CAP = float("inf")
_NO_UNITS_CAP = 2**62


def _limit(value: Any) -> float | None:
    """A positive finite number from an offer document, else None (no limit)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def offer_limits(document: Any) -> tuple[float | None, float | None, float | None]:
    """(daily budget, lifetime budget, stock) of a stored offer document (None: unlimited)."""
    if not isinstance(document, dict):
        return None, None, None
    budget = document.get("budget")
    budget = budget if isinstance(budget, dict) else {}
    return (
        _limit(budget.get("daily")),
        _limit(budget.get("lifetime")),
        _limit(document.get("stock")),
    )


class ConstraintsSql(SqlCore):
    """Consumption of offers' budgets and stock."""

    def _consume(
        self,
        cur: Cursor,
        tenant_id: str,
        row: tuple[Any, ...] | list[Any],
        interaction_id: int,
        now: float,
    ) -> None:
        """Count one positive outcome (``row`` in ``INTERACTION_COLUMNS`` order, stored as
        ``interaction_id``) against its offer's constraints in the caller's transaction, and
        keep what it consumed (nothing when the offer has none)."""
        customer_id, offer_id, value = row[1], row[2], row[7]
        found = cur.execute(
            "SELECT document FROM offers WHERE tenant_id = ? AND offer_id = ?",
            (tenant_id, offer_id),
        ).fetchone()
        if found is None:
            return
        document = json.loads(found[0]) if isinstance(found[0], str) else found[0]
        daily, lifetime, stock = offer_limits(document)
        if daily is None and lifetime is None and stock is None:
            return
        amount = max(0.0, float(value)) if value is not None else 0.0
        day = datetime.fromtimestamp(now, UTC).date().isoformat()
        # the row locked before it is read (PostgreSQL), so the difference is this outcome's
        lock = " FOR UPDATE" if self.dialect == "postgres" else ""
        taken = {TOTAL_PERIOD: (0.0, 0), day: (0.0, 0)}
        for period, budget, units_cap in ((TOTAL_PERIOD, lifetime, stock), (day, daily, None)):
            if period != TOTAL_PERIOD and budget is None:
                continue
            cap = _NO_VALUE_CAP if budget is None else budget
            units = _NO_UNITS_CAP if units_cap is None else int(units_cap)
            cur.execute(_ENSURE, (tenant_id, offer_id, period))
            before = cur.execute(_READ + lock, (tenant_id, offer_id, period)).fetchone()
            after = cur.execute(
                _CONSUME, (amount, cap, amount, cap, cap, units, tenant_id, offer_id, period)
            ).fetchone()
            taken[period] = (float(after[0]) - float(before[0]), int(after[1]) - int(before[1]))
        total_value, units_taken = taken[TOTAL_PERIOD]
        day_value = taken[day][0]
        if total_value > 0 or units_taken > 0 or day_value > 0:
            cur.execute(
                "INSERT INTO outcome_consumption (tenant_id, customer_id, "
                f"{_LEDGER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (tenant_id, customer_id, interaction_id, offer_id, day, total_value, day_value,
                 units_taken),
            )  # fmt: skip

    def _give_back(self, cur: Cursor, tenant_id: str, interaction_ids: Iterable[int]) -> None:
        """Return what the outcomes stored as ``interaction_ids`` consumed (removed by a
        correction or deletion), in the caller's transaction; outcomes that consumed nothing,
        or were recorded before consumption was kept per outcome, have nothing to return."""
        ids = sorted(set(interaction_ids))
        if not ids:
            return
        ledger = []
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            marks = ", ".join("?" for _ in batch)
            ledger += cur.execute(
                f"SELECT {_LEDGER_COLUMNS} FROM outcome_consumption "
                f"WHERE tenant_id = ? AND interaction_id IN ({marks})",
                (tenant_id, *batch),
            ).fetchall()
        # by offer then period: concurrent writers lock consumption rows in one order
        for interaction_id, offer_id, day, total_value, day_value, units in sorted(
            ledger, key=lambda r: (r[1], r[0])
        ):
            for period, value, count in ((TOTAL_PERIOD, total_value, units), (day, day_value, 0)):
                if value > 0 or count > 0:
                    cur.execute(
                        _GIVE_BACK,
                        (value, value, count, count, tenant_id, offer_id, period),
                    )
            cur.execute(
                "DELETE FROM outcome_consumption WHERE tenant_id = ? AND interaction_id = ?",
                (tenant_id, interaction_id),
            )

    def offer_consumption(self, tenant_id: str, day: date) -> dict[str, OfferConsumption]:
        check_tenant_id(tenant_id)
        if not isinstance(day, date):
            raise TypeError("day must be a date")
        periods = (TOTAL_PERIOD, day.isoformat())
        out: dict[str, OfferConsumption] = {}
        with self._read() as cur:
            rows = cur.execute(
                "SELECT offer_id, period, value, units FROM offer_consumption "
                "WHERE tenant_id = ? AND period IN (?, ?)",
                (tenant_id, *periods),
            ).fetchall()
        for offer_id, period, value, units in rows:
            seen = out.get(offer_id) or OfferConsumption(offer_id)
            if period == TOTAL_PERIOD:
                seen = OfferConsumption(offer_id, seen.day_value, float(value), int(units))
            else:
                seen = OfferConsumption(offer_id, float(value), seen.total_value, seen.units)
            out[offer_id] = seen
        return out
