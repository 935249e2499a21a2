"""Comparing stored CLV snapshots: segment migration, and predictions scored against actuals.

Migration: the customers of two snapshots of one tenant, matched by id, counted from segment
to segment (:func:`~nextbest_clv.core.history.migration_matrix`), plus those only in the
earlier one (``left``) or only in the later one (``joined``).

Drift (predicted vs actual): once a snapshot's horizon has passed (``prediction.horizonEnd``),
each of its customers with a prediction is matched with what they actually spent in the
horizon: the values of the tenant's ``transactionOutcomes`` with ``asOf < occurredAt <=
horizonEnd``, refunds netted (a customer who bought nothing spent 0). The errors
(:func:`~nextbest_clv.core.history.prediction_error`) are stored in the snapshot's summary
(``drift``) when a later snapshot's batch finds the horizon passed (:func:`score_due`), or
computed on request for one snapshot (:func:`score_snapshot`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nextbest.store import REFUND, TIME_MAX, Store, from_epoch, to_epoch
from nextbest_clv.core.history import migration_matrix, prediction_error
from nextbest_clv.errors import ClvInputError, HorizonNotPassedError
from nextbest_clv.service.history import (
    HISTORY_NAMESPACE,
    get_snapshot,
    latest_snapshots,
    list_all_snapshots,
    load_customers,
)
from nextbest_clv.service.records import SEGMENTS, computed_as_of, iso_time
from nextbest_clv.service.settings import ClvSettings

__all__ = ["drift_report", "migration", "score_due", "score_snapshot"]


def migration(
    store: Store, tenant_id: str, from_id: str | None = None, to_id: str | None = None
) -> dict[str, Any]:
    """The segment migration between two snapshots of the tenant (default: the two newest;
    with only ``to_id`` or ``from_id`` given, the other is still required).

    Raises:
        SnapshotNotFoundError: an id is not one of the tenant's snapshots (field ``from``/``to``).
        ClvInputError: ``from`` equals ``to``, only one is given, or the tenant has fewer
            than two snapshots.
    """
    if (from_id is None) != (to_id is None):
        missing = "from" if from_id is None else "to"
        raise ClvInputError(
            f"give both from and to snapshot ids, or neither (the two newest): {missing} is "
            "missing",
            field=missing,
        )
    if from_id is not None and from_id == to_id:
        raise ClvInputError(
            f"from and to are the same snapshot {from_id!r}: choose two different snapshots",
            field="to",
        )
    if from_id is None or to_id is None:
        newest = latest_snapshots(store, tenant_id, 2)
        if len(newest) < 2:
            raise ClvInputError(
                f"tenant {tenant_id!r} has {len(newest)} CLV snapshot(s); a migration needs two "
                "(each full batch compute stores one)",
                field="from",
            )
        before, after = newest[1], newest[0]
    else:
        before = get_snapshot(store, tenant_id, from_id, field="from")
        after = get_snapshot(store, tenant_id, to_id, field="to")
    a = load_customers(store, tenant_id, before)
    b = load_customers(store, tenant_id, after)
    matrix, left, joined = migration_matrix(a.ids, a.segments, b.ids, b.segments, len(SEGMENTS))
    return {
        "from": {"id": before["id"], "asOf": before["asOf"]},
        "to": {"id": after["id"], "asOf": after["asOf"]},
        "segments": list(SEGMENTS),
        "matrix": {
            s: {t: int(matrix[i, j]) for j, t in enumerate(SEGMENTS)}
            for i, s in enumerate(SEGMENTS)
        },
        "stayed": int(np.trace(matrix)),
        "moved": int(matrix.sum() - np.trace(matrix)),
        "left": {s: int(left[i]) for i, s in enumerate(SEGMENTS)},
        "joined": {s: int(joined[j]) for j, s in enumerate(SEGMENTS)},
    }


def _epoch(text: str) -> float:
    value = computed_as_of({"computedAt": text})
    if value is None:
        raise ClvInputError(f"a stored snapshot has an unreadable time {text!r}", field="id")
    return value


def _actuals(
    store: Store,
    tenant_id: str,
    settings: ClvSettings,
    ids: np.ndarray[Any, Any],
    start: float,
    end: float,
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """What each customer of ``ids`` spent in ``(start, end]`` (module doc)."""
    lo = from_epoch(start + 1e-6)
    hi = None if end + 1e-6 >= to_epoch(TIME_MAX) else from_epoch(end + 1e-6)
    purchases = [o for o in settings.transaction_outcomes if o != REFUND]
    position = {c: i for i, c in enumerate(ids.tolist())}
    spent = np.zeros(len(position), dtype=np.float64)
    for outcomes in (purchases, [REFUND]):
        if not outcomes:
            continue
        cols = store.interaction_columns(tenant_id, outcomes=outcomes, start=lo, end=hi)
        at = np.fromiter(
            (position.get(c, -1) for c in cols.customer_ids.tolist()),
            dtype=np.int64,
            count=len(cols),
        )
        values = np.asarray(cols.values, dtype=np.float64)
        keep = (at >= 0) & np.isfinite(values)
        np.add.at(spent, at[keep], values[keep])
    return spent


def score_snapshot(
    store: Store,
    tenant_id: str,
    settings: ClvSettings,
    summary: Mapping[str, Any],
    now: float,
    field: str = "snapshot",
) -> dict[str, Any]:
    """The snapshot's predictions scored against what happened in their horizon (module doc).

    Raises:
        HorizonNotPassedError: the horizon ends after ``now`` (naming ``field``).
    """
    prediction = summary["prediction"]
    as_of = _epoch(summary["asOf"])
    horizon_end = _epoch(prediction["horizonEnd"])
    if horizon_end > now:
        raise HorizonNotPassedError(summary["id"], prediction["horizonEnd"], field=field)
    customers = load_customers(store, tenant_id, summary)
    has = np.isfinite(customers.predicted)
    ids = customers.ids[has]
    actual = _actuals(store, tenant_id, settings, ids, as_of, horizon_end)
    errors = prediction_error(customers.predicted[has], actual, customers.segments[has], SEGMENTS)
    return {
        "snapshot": summary["id"],
        "asOf": summary["asOf"],
        "horizonEnd": prediction["horizonEnd"],
        "field": prediction["field"],
        "model": summary.get("model"),
        "scoredAt": iso_time(now),
        "outcomes": list(settings.transaction_outcomes),
        **errors,
    }


def score_due(store: Store, tenant_id: str, settings: ClvSettings, as_of: float) -> list[str]:
    """Score every stored snapshot of the tenant whose horizon has passed by ``as_of`` and that
    has no score yet, storing the score in its summary (``drift``); returns their ids."""
    scored: dict[str, Any] = {}
    for summary in list_all_snapshots(store, tenant_id):
        if summary.get("drift") is not None:
            continue
        if _epoch(summary["prediction"]["horizonEnd"]) > as_of:
            continue
        scored[summary["id"]] = {
            **summary,
            "drift": score_snapshot(store, tenant_id, settings, summary, as_of),
        }
    if scored:
        store.put_documents(HISTORY_NAMESPACE, tenant_id, scored)
    return sorted(scored)


def drift_report(store: Store, tenant_id: str) -> dict[str, Any]:
    """The stored scores of the tenant's snapshots, newest first, and the snapshots still
    waiting for their horizon to pass."""
    runs, pending = [], []
    for summary in list_all_snapshots(store, tenant_id):
        drift = summary.get("drift")
        if drift is None:
            pending.append(
                {
                    "snapshot": summary["id"],
                    "asOf": summary["asOf"],
                    "horizonEnd": summary["prediction"]["horizonEnd"],
                }
            )
        else:
            runs.append(drift)
    return {"scored": runs, "pending": pending}
