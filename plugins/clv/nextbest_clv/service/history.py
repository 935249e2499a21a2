"""CLV history: a compact snapshot of the tenant's distribution per full batch compute.

Every full batch (``batch_compute.compute_records`` without a segment: the CLI, the API and
the scheduler) stores one snapshot as plugin documents (so no table of its own):

- the *summary*, namespace :data:`HISTORY_NAMESPACE`, key the snapshot id
  (``<asOf, compact ISO>-<8 hex>``, so keys sort by asOf): when (``asOf``, ``takenAt``), the
  settings (``settings``: the tenant's CLV settings as JSON, and their fingerprint), the
  model and fit, the customers counted (and failed), per segment the customers and value,
  the score and value histograms and quantiles (:mod:`nextbest_clv.core.history`), and what
  it predicts for its horizon (``prediction``: the field, the horizon, the total, per decile
  and per segment). Bounded: a few kB whatever the tenant's size.
- the *customers*, namespace :data:`CUSTOMERS_NAMESPACE`, keys ``<id>/<part>``: each customer's
  segment and prediction in parts of :data:`CHUNK` customers, each column zlib-compressed
  (ids as JSON, segment codes as bytes, predictions as float64), so any two snapshots can be
  compared (segment migration), a snapshot's predictions scored against what happened, and
  one customer's history read (:func:`customer_history`, the customer profile's).

The value of a customer (segment values, the value histogram and quantiles) is the record's
``predictedRevenue`` for the ``rfm`` model and the model's discounted ``clv`` for a
probabilistic one, as the report shows it. The prediction (scored against what happened) is
``predictedRevenue`` for ``rfm`` (over ``lifespanMonths`` months of 30.4375 days) and
``expectedRevenue12m`` for a probabilistic model (365.25 days); customers without model fields
(no transactions) are counted but carry no value or prediction.

Retention: the tenant's ``historyRetention`` setting (default 100) keeps that many snapshots;
older ones (summary and customers) are deleted when a new one is stored.
"""

from __future__ import annotations

import base64
import json
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nextbest.store import Store
from nextbest_clv.core.history import decile_groups, quantiles, score_histogram, value_histogram
from nextbest_clv.errors import ClvInputError, SnapshotNotFoundError
from nextbest_clv.service.records import SEGMENTS, iso_time
from nextbest_clv.service.settings import ClvSettings, settings_fingerprint

__all__ = [
    "CHUNK",
    "CUSTOMERS_NAMESPACE",
    "HISTORY_NAMESPACE",
    "SnapshotCustomers",
    "customer_history",
    "forget_customer",
    "get_snapshot",
    "latest_snapshots",
    "list_all_snapshots",
    "list_snapshots",
    "load_customers",
    "prediction_basis",
    "record_snapshot",
]

HISTORY_NAMESPACE = "clv.history"
CUSTOMERS_NAMESPACE = "clv.history.customers"
#: Customers per stored part of a snapshot's customers.
CHUNK = 20_000
_DAYS_PER_MONTH = 30.4375
_MODEL_HORIZON_DAYS = 365.25
_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class SnapshotCustomers:
    """A snapshot's customers as columns: ids, segment codes (index of :data:`SEGMENTS`) and
    predictions (NaN: none)."""

    ids: NDArray[np.str_]
    segments: NDArray[np.int64]
    predicted: NDArray[np.float64]


def prediction_basis(settings: ClvSettings) -> tuple[str, float]:
    """The record field a snapshot predicts with and its horizon in days (module doc)."""
    if settings.model == "rfm":
        return "predictedRevenue", settings.lifespan_months * _DAYS_PER_MONTH
    return "expectedRevenue12m", _MODEL_HORIZON_DAYS


def _pack(data: bytes) -> str:
    # Level 1: most of the size gain at a fraction of the time of the default level.
    return base64.b64encode(zlib.compress(data, 1)).decode("ascii")


def _unpack(text: str) -> bytes:
    return zlib.decompress(base64.b64decode(text))


def _snapshot_id(as_of: float) -> str:
    stamp = datetime.fromtimestamp(as_of, UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


def _segment_codes(names: Any) -> NDArray[np.int64]:
    """Segment names -> their index in :data:`SEGMENTS` (vectorised)."""
    by_name = np.argsort(np.asarray(SEGMENTS))
    ordered = np.asarray(SEGMENTS)[by_name]
    values = np.asarray(names).astype(str)
    at = np.searchsorted(ordered, values).clip(0, len(SEGMENTS) - 1)
    if not np.all(ordered[at] == values):
        raise ValueError(f"unknown segment among {sorted(set(values.tolist()))}")
    return by_name[at].astype(np.int64)


def _numbers(raw: Any, n: int) -> NDArray[np.float64]:
    """A record column as float64, NaN where missing (a model without data: null)."""
    if raw is None:
        return np.full(n, np.nan)
    array = np.asarray(raw)
    if array.dtype == object:  # nulls among the numbers
        array = np.asarray([np.nan if v is None else v for v in array], dtype=object)
    return np.asarray(array, dtype=np.float64)


def _summary(
    snapshot_id: str,
    tenant_id: str,
    as_of: float,
    taken_at: float,
    settings: ClvSettings,
    fit: str | None,
    failed: int,
    scores: NDArray[np.int64],
    codes: NDArray[np.int64],
    value_field: str,
    values: NDArray[np.float64],
    field: str,
    predictions: NDArray[np.float64],
    horizon_days: float,
    chunks: int,
) -> dict[str, Any]:
    known = np.isfinite(values)
    segments = {
        name: {
            "customers": int((codes == c).sum()),
            "value": float(values[(codes == c) & known].sum()),
        }
        for c, name in enumerate(SEGMENTS)
    }
    worth = values[known]
    value_total = float(worth.sum())
    has = np.isfinite(predictions)
    predicted = predictions[has]
    total = float(predicted.sum())
    deciles = [
        {"decile": i, "customers": int(idx.size), "predicted": float(predicted[idx].sum())}
        for i, idx in enumerate(decile_groups(predicted), 1)
    ]
    return {
        "id": snapshot_id,
        "tenantId": tenant_id,
        "asOf": iso_time(as_of),
        "takenAt": iso_time(taken_at),
        "settingsFingerprint": settings_fingerprint(settings),
        "settings": settings.to_json(),
        "model": settings.model,
        "fit": fit,
        "customers": int(codes.size),
        "failed": int(failed),
        "segments": segments,
        "totalValue": value_total,
        "averageValue": value_total / int(known.sum()) if known.any() else None,
        "score": {"histogram": score_histogram(scores), "quantiles": quantiles(scores)},
        "value": {
            "field": value_field,
            "histogram": value_histogram(worth),
            "quantiles": quantiles(worth),
        },
        "prediction": {
            "field": field,
            "horizonDays": horizon_days,
            "horizonEnd": iso_time(as_of + horizon_days * _DAY),
            "customers": int(has.sum()),
            "total": total,
            "deciles": deciles,
            "segments": {
                name: float(predictions[(codes == c) & has].sum())
                for c, name in enumerate(SEGMENTS)
            },
        },
        "parts": chunks,
        "drift": None,
    }


def record_snapshot(
    store: Store,
    tenant_id: str,
    settings: ClvSettings,
    *,
    as_of: float,
    taken_at: float,
    customer_ids: list[str],
    columns: Mapping[str, Any],
    failed: int,
    fit: str | None,
) -> dict[str, Any]:
    """Store the snapshot of a full batch (its records as ``columns`` aligned with
    ``customer_ids``, as ``BatchResult`` holds them) in one transaction per namespace, apply
    the retention, and return the summary."""
    field, horizon_days = prediction_basis(settings)
    codes = _segment_codes(columns["segment"])
    scores = np.asarray(columns["clvScore"], dtype=np.int64)
    value_field = "predictedRevenue" if settings.model == "rfm" else "clv"
    values = _numbers(columns.get(value_field), len(customer_ids))
    predictions = _numbers(columns.get(field), len(customer_ids))
    snapshot_id = _snapshot_id(as_of)
    parts: dict[str, Any] = {}
    for n, start in enumerate(range(0, len(customer_ids), CHUNK)):
        end = start + CHUNK
        parts[f"{snapshot_id}/{n:05d}"] = {
            "ids": _pack(json.dumps(customer_ids[start:end], ensure_ascii=False).encode()),
            "segments": _pack(codes[start:end].astype(np.uint8).tobytes()),
            "predicted": _pack(predictions[start:end].astype("<f8").tobytes()),
        }
    summary = _summary(
        snapshot_id,
        tenant_id,
        as_of,
        taken_at,
        settings,
        fit,
        failed,
        scores,
        codes,
        value_field,
        values,
        field,
        predictions,
        horizon_days,
        len(parts),
    )
    # The customers first: a summary is only ever listed once its parts are stored.
    if parts:
        store.put_documents(CUSTOMERS_NAMESPACE, tenant_id, parts)
    store.put_documents(HISTORY_NAMESPACE, tenant_id, {snapshot_id: summary})
    _apply_retention(store, tenant_id, settings.history_retention)
    return summary


def list_all_snapshots(store: Store, tenant_id: str) -> list[dict[str, Any]]:
    """Every stored summary of the tenant, newest first (asOf, then takenAt, then id)."""
    docs = [d for d in store.get_documents(HISTORY_NAMESPACE, tenant_id).values()]
    docs = [d for d in docs if isinstance(d, dict) and isinstance(d.get("id"), str)]
    docs.sort(key=lambda d: (d.get("asOf", ""), d.get("takenAt", ""), d["id"]), reverse=True)
    return docs


def _apply_retention(store: Store, tenant_id: str, keep: int) -> None:
    old = list_all_snapshots(store, tenant_id)[keep:]
    if not old:
        return
    for doc in old:
        keys = [f"{doc['id']}/{n:05d}" for n in range(int(doc.get("parts", 0)))]
        store.delete_documents(CUSTOMERS_NAMESPACE, tenant_id, keys)
    store.delete_documents(HISTORY_NAMESPACE, tenant_id, [d["id"] for d in old])


def list_snapshots(
    store: Store, tenant_id: str, *, limit: int = 50, after: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """The tenant's snapshot summaries, newest first: at most ``limit`` of them following the
    snapshot ``after`` (a cursor: the last id of the previous page). Returns the page and the
    next cursor (None on the last page).

    Raises:
        SnapshotNotFoundError: ``after`` is not one of the tenant's snapshots (field
            ``cursor``).
    """
    docs = list_all_snapshots(store, tenant_id)
    start = 0
    if after is not None:
        ids = [d["id"] for d in docs]
        if after not in ids:
            raise SnapshotNotFoundError(tenant_id, after, field="cursor")
        start = ids.index(after) + 1
    page = docs[start : start + limit]
    more = start + limit < len(docs)
    return page, (page[-1]["id"] if more and page else None)


def get_snapshot(
    store: Store, tenant_id: str, snapshot_id: str, field: str = "id"
) -> dict[str, Any]:
    """One snapshot summary of the tenant.

    Raises:
        SnapshotNotFoundError: no such snapshot of this tenant (naming ``field``).
    """
    doc = store.get_document(HISTORY_NAMESPACE, tenant_id, snapshot_id)
    if not isinstance(doc, dict):
        raise SnapshotNotFoundError(tenant_id, snapshot_id, field=field)
    return doc


def latest_snapshots(store: Store, tenant_id: str, n: int) -> list[dict[str, Any]]:
    """The ``n`` newest snapshot summaries (fewer when there are fewer), newest first."""
    return list_all_snapshots(store, tenant_id)[:n]


def load_customers(store: Store, tenant_id: str, summary: Mapping[str, Any]) -> SnapshotCustomers:
    """The customers of a snapshot (its stored parts, decoded)."""
    keys = [f"{summary['id']}/{n:05d}" for n in range(int(summary.get("parts", 0)))]
    docs = store.get_documents(CUSTOMERS_NAMESPACE, tenant_id, keys)
    ids: list[str] = []
    codes: list[NDArray[np.int64]] = []
    values: list[NDArray[np.float64]] = []
    for key in keys:
        doc = docs.get(key)
        if not isinstance(doc, dict):
            raise ClvInputError(
                f"snapshot {summary['id']!r} misses its stored part {key!r}: it was deleted "
                "while being read; use another snapshot",
                field="id",
            )
        ids.extend(json.loads(_unpack(doc["ids"])))
        codes.append(np.frombuffer(_unpack(doc["segments"]), dtype=np.uint8).astype(np.int64))
        values.append(np.frombuffer(_unpack(doc["predicted"]), dtype="<f8").astype(np.float64))
    return SnapshotCustomers(
        ids=np.asarray(ids, dtype=str),
        segments=np.concatenate(codes) if codes else np.zeros(0, dtype=np.int64),
        predicted=np.concatenate(values) if values else np.zeros(0, dtype=np.float64),
    )


def customer_history(
    store: Store, tenant_id: str, customer_id: str, as_of: float | None = None
) -> list[dict[str, Any]]:
    """One customer's row in every stored snapshot of the tenant as of ``as_of`` or earlier
    (epoch seconds; None: all), oldest first: the snapshot, its ``asOf``, the
    customer's segment and prediction (``predicted``: None when the model had no value for
    the customer; ``field`` and ``horizonDays`` say what it predicts). Snapshots that do not
    hold the customer (taken before the customer's first interaction) are skipped.

    Reads every part of every kept snapshot (bounded by ``historyRetention``), as
    :func:`forget_customer` does; the parts are compressed, so that is a few MB per million
    customers and snapshot.
    """
    rows: list[dict[str, Any]] = []
    for summary in reversed(list_all_snapshots(store, tenant_id)):
        # compared as times: ISO text with and without fractional seconds does not sort
        if as_of is not None and datetime.fromisoformat(str(summary["asOf"])).timestamp() > as_of:
            continue
        found = _customer_in(store, tenant_id, summary, customer_id)
        if found is None:
            continue
        code, predicted = found
        prediction = summary.get("prediction") or {}
        rows.append(
            {
                "snapshot": summary["id"],
                "asOf": summary.get("asOf"),
                "segment": SEGMENTS[code],
                "predicted": predicted,
                "field": prediction.get("field"),
                "horizonDays": prediction.get("horizonDays"),
            }
        )
    return rows


def _customer_in(
    store: Store, tenant_id: str, summary: Mapping[str, Any], customer_id: str
) -> tuple[int, float | None] | None:
    """The customer's segment code and prediction in one snapshot, or None when absent."""
    keys = [f"{summary['id']}/{n:05d}" for n in range(int(summary.get("parts", 0)))]
    docs = store.get_documents(CUSTOMERS_NAMESPACE, tenant_id, keys)
    for key in keys:
        doc = docs.get(key)
        if not isinstance(doc, dict):  # deleted by retention while read: not there any more
            return None
        ids = json.loads(_unpack(doc["ids"]))
        if customer_id not in ids:
            continue
        at = ids.index(customer_id)
        code = int(np.frombuffer(_unpack(doc["segments"]), dtype=np.uint8)[at])
        value = float(np.frombuffer(_unpack(doc["predicted"]), dtype="<f8")[at])
        return code, (value if np.isfinite(value) else None)
    return None


def forget_customer(store: Store, tenant_id: str, customer_id: str) -> int:
    """Remove a forgotten customer from every stored snapshot part of the tenant (the
    summaries hold only aggregates); returns the parts rewritten."""
    docs = store.get_documents(CUSTOMERS_NAMESPACE, tenant_id)
    changed: dict[str, Any] = {}
    for key, doc in docs.items():
        if not isinstance(doc, dict):
            continue
        ids = json.loads(_unpack(doc["ids"]))
        if customer_id not in ids:
            continue
        keep = np.asarray([c != customer_id for c in ids], dtype=bool)
        codes = np.frombuffer(_unpack(doc["segments"]), dtype=np.uint8)[keep]
        values = np.frombuffer(_unpack(doc["predicted"]), dtype="<f8")[keep]
        changed[key] = {
            "ids": _pack(json.dumps([c for c in ids if c != customer_id]).encode()),
            "segments": _pack(codes.tobytes()),
            "predicted": _pack(values.astype("<f8").tobytes()),
        }
    if changed:
        store.put_documents(CUSTOMERS_NAMESPACE, tenant_id, changed)
    return len(changed)
