"""Offer constraints of the SQL store: what positive outcomes consumed of an offer's budget
(outcome value, per UTC day and over its life) and stock (units).

:meth:`ConstraintsSql._consume` runs inside the transaction that records the outcome, so a
retried outcome (its idempotency key already used) consumes nothing, and each increment is one
``UPDATE`` of a locked row capped at the limit: concurrent responders never push a total past
its budget or stock (PostgreSQL serialises the updates of one row; SQLite has one writer).
"""

from __future__ import annotations

import json
import math
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
    "WHERE tenant_id = ? AND offer_id = ? AND period = ?"
)
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
        self, cur: Cursor, tenant_id: str, offer_id: str, value: float | None, now: float
    ) -> None:
        """Count one positive outcome of ``value`` against the offer's constraints, in the
        caller's transaction (nothing when the offer has none)."""
        row = cur.execute(
            "SELECT document FROM offers WHERE tenant_id = ? AND offer_id = ?",
            (tenant_id, offer_id),
        ).fetchone()
        if row is None:
            return
        document = json.loads(row[0]) if isinstance(row[0], str) else row[0]
        daily, lifetime, stock = offer_limits(document)
        if daily is None and lifetime is None and stock is None:
            return
        amount = max(0.0, float(value)) if value is not None else 0.0
        day = datetime.fromtimestamp(now, UTC).date().isoformat()
        for period, budget, units_cap in ((TOTAL_PERIOD, lifetime, stock), (day, daily, None)):
            if period != TOTAL_PERIOD and budget is None:
                continue
            cap = _NO_VALUE_CAP if budget is None else budget
            units = _NO_UNITS_CAP if units_cap is None else int(units_cap)
            cur.execute(_ENSURE, (tenant_id, offer_id, period))
            cur.execute(
                _CONSUME, (amount, cap, amount, cap, cap, units, tenant_id, offer_id, period)
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
