"""Which rows of a tenant's customer summary columns can be scored, why a row cannot, and the
scoring of the rows that can (one rule for the batch, the snapshots and the distribution report,
so a single-customer compute equals the batch as of the same time).

``cols`` is what ``Store.customer_summary_columns`` returns: arrays ``customer_ids``,
``first_at``, ``last_at`` (epoch seconds), ``interactions`` and ``total_value``.

A row is scored when its inputs are usable (:func:`valid_rows`) and its record's numbers are
finite (:meth:`~nextbest_clv.core.rfm.RfmBatch.finite`: a monetary total near the float64 limit,
written before the store refused values over 1e12 or by another writer, makes the predicted
revenue overflow). Every other row is a failure with its reason; it never fails the tenant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nextbest.store import TIME_MAX, TIME_MIN, epoch_problem
from nextbest_clv.core.rfm import DistributionSnapshot, RfmBatch, RfmSettings, score_batch
from nextbest_clv.service.records import iso_time

__all__ = [
    "ScoredRows",
    "failure_reason",
    "net_monetary",
    "row_problem",
    "score_rows",
    "valid_rows",
]

_LOW, _HIGH = TIME_MIN.timestamp(), TIME_MAX.timestamp()
_TOO_LARGE = "is too large to score: the predicted revenue is not a finite number"


def net_monetary(total_value: Any) -> Any:
    """The monetary value RFM scores: the summary's ``total_value`` (purchases net of refunds),
    floored at 0 (a customer refunded more than they bought has spent nothing)."""
    return np.maximum(total_value, 0.0)


def valid_rows(cols: Any, as_of: float | None) -> NDArray[np.bool_]:
    """Rows whose inputs can be scored: times in the store's window (``time_problem``) and in
    order (and not after ``as_of``), at least one interaction, a finite monetary total (net
    of refunds, so it may be below 0: :func:`net_monetary` floors it)."""
    first, last, money = cols.first_at, cols.last_at, cols.total_value
    with np.errstate(invalid="ignore"):  # NaN compares False, which is what we want
        ok = (
            (first >= _LOW)
            & (last < _HIGH)
            & (first <= last)
            & (cols.interactions >= 1)
            & np.isfinite(money)
        )
        if as_of is not None:
            ok &= last <= as_of
    return np.asarray(ok, dtype=bool)


def row_problem(
    first_at: float, last_at: float, interactions: int, total_value: float, as_of: float | None
) -> str | None:
    """Why one customer's summary cannot be scored as of ``as_of`` (None: at any time), or None
    when it can: the rule of :func:`valid_rows`, with a reason."""
    if interactions < 1:
        return "no interactions"
    for name, value in (("first interaction time", first_at), ("last interaction time", last_at)):
        problem = epoch_problem(value)
        if problem is not None:
            return f"{name} {iso_time(value)} {problem}"
    if first_at > last_at:
        return f"first interaction {iso_time(first_at)} is after the last one {iso_time(last_at)}"
    if as_of is not None and last_at > as_of:
        return f"last interaction {iso_time(last_at)} is after asOf {iso_time(as_of)}"
    if not math.isfinite(total_value):
        return f"monetary total {total_value!r} is not a finite number"
    return None


def failure_reason(cols: Any, i: int, as_of: float) -> str:
    """Why row ``i`` cannot be scored as of ``as_of`` (a row :func:`valid_rows` rejects)."""
    problem = row_problem(
        float(cols.first_at[i]),
        float(cols.last_at[i]),
        int(cols.interactions[i]),
        float(cols.total_value[i]),
        as_of,
    )
    return problem or "unusable summary values"


@dataclass(frozen=True)
class ScoredRows:
    """The scored rows of summary columns as of a time, and the rows that failed.

    ``rows``: indices (into ``cols``) of the scored customers, in ``cols`` order; ``batch`` and
    ``snapshot``: their records and distribution (None when no row could be scored);
    ``failed``: indices of the customers that could not be scored.
    """

    cols: Any
    as_of: float
    rows: NDArray[np.intp]
    batch: RfmBatch | None
    snapshot: DistributionSnapshot | None
    failed: NDArray[np.intp]
    not_finite: frozenset[int]

    @property
    def every_row(self) -> bool:
        """Whether every row was scored (then ``rows`` is all of ``cols``, in order)."""
        return len(self.failed) == 0

    def reason(self, i: int) -> str:
        """Why failed row ``i`` could not be scored."""
        if i in self.not_finite:
            return f"monetary total {float(self.cols.total_value[i])!r} {_TOO_LARGE}"
        return failure_reason(self.cols, i, self.as_of)

    def failures(self, limit: int) -> list[dict[str, str]]:
        """The first ``limit`` failed customers with the reason (``customerId``, ``reason``)."""
        ids = self.cols.customer_ids
        return [
            {"customerId": str(ids[i]), "reason": self.reason(int(i))} for i in self.failed[:limit]
        ]


def score_rows(cols: Any, as_of: float, settings: RfmSettings) -> ScoredRows:
    """Score every usable row of ``cols`` as of ``as_of``; rows with unusable inputs or a record
    that is not finite are left out of the scores and the percentiles (see the module doc)."""
    ok = valid_rows(cols, as_of)
    not_finite: set[int] = set()
    batch: RfmBatch | None = None
    snapshot: DistributionSnapshot | None = None
    while ok.any():
        rows = np.flatnonzero(ok)
        every = len(rows) == len(cols)

        def pick(values: NDArray[Any], rows: NDArray[np.intp] = rows, every: bool = every) -> Any:
            return values if every else values[rows]

        batch, snapshot = score_batch(
            pick(cols.last_at),
            pick(cols.first_at),
            pick(cols.interactions),
            net_monetary(pick(cols.total_value)),
            as_of,
            settings,
        )
        bad = ~batch.finite()
        if not bad.any():
            break
        # A record depends on the others only through ranks: score the rest again without them.
        dropped = rows[bad]
        ok[dropped] = False
        not_finite.update(int(i) for i in dropped)
        batch = snapshot = None
    return ScoredRows(
        cols=cols,
        as_of=as_of,
        rows=np.flatnonzero(ok),
        batch=batch,
        snapshot=snapshot,
        failed=np.flatnonzero(~ok),
        not_finite=frozenset(not_finite),
    )
