"""Input checks for the per-customer arrays (frequency, recency, T, monetary value)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import DataError

FloatArray = NDArray[np.float64]


def customer_arrays(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    error: type[ValueError] = DataError,
    allow_empty: bool = True,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Validate and broadcast (x, t_x, T) to float64 arrays of one shape.

    Rules: all finite; x >= 0 and whole; 0 <= t_x <= T; T > 0; t_x = 0 where x = 0.
    ``error`` is the exception type to raise (``FitError`` from ``fit``, else ``DataError``).
    """
    try:
        x, tx, big_t = np.broadcast_arrays(
            np.asarray(frequency, dtype=np.float64),
            np.asarray(recency, dtype=np.float64),
            np.asarray(T, dtype=np.float64),
        )
    except ValueError as exc:
        raise error(f"frequency, recency and T must have compatible shapes: {exc}") from exc
    if x.size == 0 and not allow_empty:
        raise error("no customers: frequency, recency and T are empty")
    for name, arr in (("frequency", x), ("recency", tx), ("T", big_t)):
        bad = ~np.isfinite(arr)
        if bad.any():
            raise error(f"{name} contains {int(bad.sum())} NaN or infinite value(s)")
    if np.any(x < 0) or np.any(x != np.floor(x)):
        raise error("frequency must be whole numbers >= 0 (repeat transactions per customer)")
    if np.any(big_t <= 0):
        raise error("T must be > 0 (time from first purchase to the end of the period)")
    if np.any(tx < 0) or np.any(tx > big_t * (1 + 1e-12)):
        raise error("recency must satisfy 0 <= recency <= T")
    if np.any((x == 0) & (tx != 0)):
        raise error("recency must be 0 for customers with frequency 0")
    return x, tx, big_t


def positive_array(
    values: ArrayLike, name: str, *, error: type[ValueError] = DataError
) -> FloatArray:
    """A float64 array of finite values > 0."""
    arr = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise error(f"{name} contains NaN or infinite values")
    if np.any(arr <= 0):
        raise error(f"{name} must be > 0")
    return arr


def horizon(t: ArrayLike, *, error: type[ValueError] = DataError) -> FloatArray:
    """Prediction horizon(s): finite and >= 0."""
    arr = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise error("t (the prediction horizon) must be finite and >= 0")
    return arr


def positive_params(model: str, **params: float) -> None:
    """Model parameters must be finite and > 0."""
    bad = {k: v for k, v in params.items() if not (np.isfinite(v) and v > 0)}
    if bad:
        raise DataError(f"{model}: parameters must be finite and > 0, got {bad}")
