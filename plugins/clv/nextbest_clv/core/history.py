"""The numbers of CLV history: distribution summaries, segment migration, predicted vs actual.

Pure numeric code (numpy only): arrays in, plain numbers and lists out. The service keeps them
in snapshots (``nextbest_clv.service.history``).

- Quantiles are ``np.percentile`` with linear interpolation at 0, 5, 10, 25, 50, 75, 90, 95,
  99 and 100.
- The score histogram has ten bins of ten points (0-9, ..., 90-100); the value histogram
  :data:`VALUE_BINS` equal bins from 0 to the 99th percentile plus one open bin above it (so
  one huge customer does not squash every other bar).
- Deciles rank customers by prediction, highest first (ties in the given order), in ten groups
  of (nearly) equal size (``numpy.array_split``; fewer when there are fewer customers), as the
  back-tests do.
- Prediction error: ``error = predicted - actual`` per customer; ``mae`` its mean absolute
  value, ``rmse`` the root of its mean square, ``bias`` its mean (positive: over-predicted);
  ``relativeError = (Σpredicted - Σactual) / Σactual`` (None when nothing happened).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "QUANTILES",
    "VALUE_BINS",
    "decile_groups",
    "migration_matrix",
    "prediction_error",
    "quantiles",
    "score_histogram",
    "value_histogram",
]

QUANTILES: tuple[int, ...] = (0, 5, 10, 25, 50, 75, 90, 95, 99, 100)
VALUE_BINS = 20


def quantiles(values: ArrayLike) -> dict[str, float | None]:
    """``{"p0": .., "p5": .., ..., "p100": ..}`` of the finite ``values`` (None when none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {f"p{q}": None for q in QUANTILES}
    points = np.percentile(v, QUANTILES)
    return {f"p{q}": float(x) for q, x in zip(QUANTILES, points, strict=True)}


def score_histogram(scores: ArrayLike) -> list[dict[str, Any]]:
    """Ten bins of CLV scores (0-100): ``[{"from", "to", "count"}]``."""
    s = np.asarray(scores, dtype=np.int64)
    bins = np.bincount(np.clip(s // 10, 0, 9), minlength=10) if s.size else np.zeros(10, int)
    return [
        {"from": 10 * b, "to": 100 if b == 9 else 10 * b + 9, "count": int(bins[b])}
        for b in range(10)
    ]


def value_histogram(values: ArrayLike, bins: int = VALUE_BINS) -> list[dict[str, Any]]:
    """``bins`` equal bins of the finite ``values`` from 0 (or the minimum, when negative) to the
    99th percentile, then one open bin (``to`` None) for the values above it:
    ``[{"from", "to", "count"}]``. Empty when there are no finite values."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return []
    low = min(0.0, float(v.min()))
    high = float(np.percentile(v, 99))
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, bins + 1)
    inside = v <= high
    counts = np.histogram(v[inside], bins=edges)[0]
    rows: list[dict[str, Any]] = [
        {"from": float(edges[i]), "to": float(edges[i + 1]), "count": int(counts[i])}
        for i in range(bins)
    ]
    rows.append({"from": high, "to": None, "count": int((~inside).sum())})
    return rows


def decile_groups(predicted: ArrayLike, groups: int = 10) -> list[NDArray[np.int64]]:
    """Row indices of the deciles of ``predicted``, highest first (see the module doc)."""
    p = np.asarray(predicted, dtype=np.float64)
    if p.size == 0:
        return []
    order = np.argsort(-p, kind="stable")
    return [np.asarray(g, dtype=np.int64) for g in np.array_split(order, min(groups, p.size))]


def migration_matrix(
    from_ids: ArrayLike,
    from_codes: ArrayLike,
    to_ids: ArrayLike,
    to_codes: ArrayLike,
    k: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Customers moving between ``k`` segments (codes 0..k-1) from one snapshot to another.

    Returns ``(matrix, left, joined)``: ``matrix[i, j]`` customers in segment i before and j
    after; ``left[i]`` customers of segment i before who are not in the later snapshot;
    ``joined[j]`` customers in segment j after who were not in the earlier one. Ids are unique
    within each snapshot.
    """
    fi, fc = np.asarray(from_ids).astype(str), np.asarray(from_codes, dtype=np.int64)
    ti, tc = np.asarray(to_ids).astype(str), np.asarray(to_codes, dtype=np.int64)
    _, at_from, at_to = np.intersect1d(fi, ti, assume_unique=True, return_indices=True)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (fc[at_from], tc[at_to]), 1)
    left = np.bincount(fc, minlength=k) - matrix.sum(axis=1)
    joined = np.bincount(tc, minlength=k) - matrix.sum(axis=0)
    return matrix, left, joined


def _errors(p: NDArray[np.float64], a: NDArray[np.float64]) -> dict[str, Any]:
    err = p - a
    total_a = float(a.sum())
    total_p = float(p.sum())
    n = int(p.size)
    return {
        "customers": n,
        "predicted": total_p,
        "actual": total_a,
        "mae": float(np.mean(np.abs(err))) if n else None,
        "rmse": float(math.sqrt(np.mean(err * err))) if n else None,
        "bias": float(np.mean(err)) if n else None,
        "relativeError": (total_p - total_a) / total_a if total_a != 0 else None,
    }


def prediction_error(
    predicted: ArrayLike,
    actual: ArrayLike,
    segment_codes: ArrayLike,
    segments: tuple[str, ...],
) -> dict[str, Any]:
    """Predicted vs actual per customer (aligned arrays; ``segment_codes`` index
    ``segments``): the totals and errors overall (module doc), per decile of the prediction
    and per segment."""
    p = np.asarray(predicted, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    codes = np.asarray(segment_codes, dtype=np.int64)
    out = _errors(p, a)
    out["deciles"] = [
        {"decile": i, **_errors(p[idx], a[idx])} for i, idx in enumerate(decile_groups(p), 1)
    ]
    out["segments"] = {
        name: _errors(p[codes == c], a[codes == c]) for c, name in enumerate(segments)
    }
    return out
