"""Which rows of a tenant's customer summary columns can be scored, and why a row cannot.

``cols`` is what ``Store.customer_summary_columns`` returns: arrays ``customer_ids``,
``first_at``, ``last_at`` (epoch seconds), ``interactions`` and ``total_value``. Snapshots, the
batch and the distribution report score the same rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nextbest_clv.service.records import iso_time

__all__ = ["failure_reason", "valid_rows"]


def valid_rows(cols: Any, as_of: float | None) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Rows that can be scored: finite times in order (and not after ``as_of``), at least one
    interaction, a finite non-negative monetary total."""
    first, last, money = cols.first_at, cols.last_at, cols.total_value
    ok = (
        np.isfinite(first)
        & np.isfinite(last)
        & (np.abs(last) <= 9e9)
        & (first <= last)
        & (cols.interactions >= 1)
        & np.isfinite(money)
        & (money >= 0)
    )
    if as_of is not None:
        ok &= last <= as_of
    return np.asarray(ok, dtype=bool)


def failure_reason(cols: Any, i: int, as_of: float) -> str:
    """Why row ``i`` cannot be scored as of ``as_of`` (a row :func:`valid_rows` rejects)."""
    if cols.last_at[i] > as_of:
        return (
            f"last interaction {iso_time(float(cols.last_at[i]))} is after asOf {iso_time(as_of)}"
        )
    if cols.interactions[i] < 1:
        return "no interactions"
    return "unusable summary values (times out of order or monetary not a finite number >= 0)"
