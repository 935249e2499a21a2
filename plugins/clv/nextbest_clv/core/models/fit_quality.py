"""How well a fitted transaction model describes its data, as arrays.

:func:`calibration_histogram`: the number of customers with 0, 1, ..., k-1 and "k or more"
repeat purchases in calibration, actual against expected under the model (the expected count
is the sum over customers of P(X(T_i) = n), each customer observed for their own T). The
standard first check of a BTYD fit (Fader, Hardie & Lee 2005, figure 2). Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import customer_arrays
from .errors import DataError

FloatArray = NDArray[np.float64]

__all__ = [
    "CalibrationHistogram",
    "TrackingCurve",
    "calibration_histogram",
    "tracking_curve",
]


class CountModel(Protocol):
    """A model that gives P(X(t) = n) for a new customer."""

    def probability_of_purchases(self, t: ArrayLike, n: ArrayLike) -> FloatArray: ...


class MeanModel(Protocol):
    """A model that gives E[X(t)] for a new customer."""

    def expected_purchases(self, t: ArrayLike) -> FloatArray: ...


@dataclass(frozen=True)
class CalibrationHistogram:
    """Customers by number of repeat purchases: ``labels`` ("0", "1", ..., "k+"), the
    ``actual`` counts and the ``expected`` counts under the model (same length)."""

    labels: list[str]
    actual: FloatArray
    expected: FloatArray

    def to_dict(self) -> dict[str, list[object]]:
        """The histogram as JSON-ready lists."""
        return {
            "labels": list(self.labels),
            "actual": self.actual.tolist(),
            "expected": self.expected.tolist(),
        }


def calibration_histogram(
    model: CountModel, frequency: ArrayLike, T: ArrayLike, *, max_count: int = 7
) -> CalibrationHistogram:
    """Actual against expected customers with 0..max_count-1 and max_count or more repeat
    purchases (``frequency`` = x, ``T`` = each customer's time observed, in the model's
    unit). P(X(T) = n) is computed once per distinct T."""
    if not 1 <= max_count <= 1000:
        raise DataError("max_count must be from 1 to 1000")
    x, _, big_t = customer_arrays(frequency, np.zeros_like(np.asarray(frequency, float)), T)
    ts, per_t = np.unique(big_t, return_counts=True)
    n = np.arange(max_count, dtype=np.float64)
    probabilities = model.probability_of_purchases(ts[:, None], n[None, :])  # (|T|, k)
    below = per_t @ probabilities
    expected = np.append(below, len(x) - below.sum())  # the rest: k or more
    actual = np.bincount(np.minimum(x, max_count).astype(np.intp), minlength=max_count + 1)
    labels = [str(i) for i in range(max_count)] + [f"{max_count}+"]
    return CalibrationHistogram(labels, actual.astype(np.float64), expected)


@dataclass(frozen=True)
class TrackingCurve:
    """Expected repeat transactions of a cohort: at the end of each period (``ends``, in
    the model's unit from the start of the data), ``cumulative`` since the start and the
    ``increments`` of each period."""

    ends: FloatArray
    cumulative: FloatArray
    increments: FloatArray

    def to_dict(self) -> dict[str, list[float]]:
        """The curve as JSON-ready lists."""
        return {
            "ends": self.ends.tolist(),
            "cumulative": self.cumulative.tolist(),
            "increments": self.increments.tolist(),
        }


def tracking_curve(model: MeanModel, births: ArrayLike, ends: ArrayLike) -> TrackingCurve:
    """The expected cumulative repeat transactions of customers first seen at ``births``
    (each customer's first purchase, in the model's unit from the start) at each of ``ends``
    (increasing): sum over customers of E[X(end - birth)] for those born by then. E[X(t)] is
    computed once per distinct (end - birth)."""
    b = np.asarray(births, dtype=np.float64).ravel()
    e = np.asarray(ends, dtype=np.float64).ravel()
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(e))):
        raise DataError("births and ends must be finite numbers")
    if e.size and np.any(np.diff(e) < 0):
        raise DataError("ends must be increasing")
    span = np.maximum(e[:, None] - b[None, :], 0.0)  # (ends, customers)
    values, inverse = np.unique(span, return_inverse=True)
    expected = model.expected_purchases(values)[inverse.reshape(span.shape)]
    cumulative = expected.sum(axis=1)
    increments = np.diff(cumulative, prepend=0.0)
    return TrackingCurve(e, cumulative, increments)
