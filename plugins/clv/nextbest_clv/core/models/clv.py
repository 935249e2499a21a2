"""Discounted customer lifetime value over a horizon of months.

CLV = sum over months m = 1..M of  E[purchases in month m | history] * spend / (1 + d)^m,

with the expected purchases from a transaction model (BG/NBD, Pareto/NBD) and the expected spend
per transaction from a spend model (Gamma-Gamma), the convention of lifetimes'
``customer_lifetime_value``. Month m covers model time ((m-1) L, m L] after T, where L is the
month length in the model's time unit.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import customer_arrays
from .errors import DataError

FloatArray = NDArray[np.float64]

#: Mean Gregorian month in days (365.25 / 12). lifetimes uses 4.345 weeks (30.415 days) when
#: its time unit is weeks and 30 days when it is days; pass ``days_per_month`` to match it.
DAYS_PER_MONTH = 365.25 / 12

# Customers per block: bounds the (months x customers) intermediate to a few tens of MB.
_BLOCK = 1 << 18


class TransactionModel(Protocol):
    """What the CLV needs from a transaction model (``BetaGeoModel``, ``ParetoNBDModel``)."""

    def conditional_expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """E[purchases in (T, T + t] | x, t_x, T]; ``t`` broadcasts against the customers."""
        ...


def customer_lifetime_value(
    transaction_model: TransactionModel,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary: ArrayLike,
    *,
    months: int = 12,
    discount_rate_monthly: float = 0.01,
    time_unit_days: float = 7.0,
    days_per_month: float = DAYS_PER_MONTH,
) -> FloatArray:
    """Discounted expected value of each customer's purchases over the next ``months`` months.

    Args:
        transaction_model: a fitted model with ``conditional_expected_purchases``, in the same
            time unit as ``recency`` and ``T``.
        frequency, recency, T: per-customer x, t_x and T.
        monetary: expected value per transaction of each customer (e.g. Gamma-Gamma's
            ``conditional_expected_average_profit``), or one value for everyone.
        months: horizon in months (>= 1).
        discount_rate_monthly: discount rate per month (0 for undiscounted).
        time_unit_days: length of the model's time unit in days (7 for weeks, 1 for days).
        days_per_month: length of a month in days.

    Returns:
        One CLV per customer, in the unit of ``monetary``.

    Raises:
        DataError: invalid customer arrays, monetary values or settings.
    """
    if isinstance(months, bool) or not isinstance(months, int | np.integer) or months < 1:
        raise DataError(f"months must be a whole number >= 1, got {months!r}")
    if not np.isfinite(discount_rate_monthly) or discount_rate_monthly <= -1:
        raise DataError(f"discount_rate_monthly must be > -1, got {discount_rate_monthly}")
    for name, days in (("time_unit_days", time_unit_days), ("days_per_month", days_per_month)):
        if not (np.isfinite(days) and days > 0):
            raise DataError(f"{name} must be a positive number of days, got {days}")
    x, tx, big_t = customer_arrays(frequency, recency, T)
    value = np.asarray(monetary, dtype=np.float64)
    if not np.all(np.isfinite(value)):
        raise DataError("monetary contains NaN or infinite values")
    try:
        value = np.broadcast_to(value, x.shape)
    except ValueError as exc:
        raise DataError(f"monetary must match the customers' shape {x.shape}: {exc}") from exc
    shape = x.shape
    x, tx, big_t, value = x.ravel(), tx.ravel(), big_t.ravel(), value.ravel()

    month_length = days_per_month / time_unit_days
    ends = (np.arange(1, months + 1, dtype=np.float64) * month_length)[:, None]
    discount = (1.0 + discount_rate_monthly) ** -np.arange(1, months + 1, dtype=np.float64)
    # sum_m (E_m - E_{m-1}) d_m = sum_m E_m (d_m - d_{m+1}) with d_{M+1} = 0 and E_0 = 0.
    weight = discount - np.r_[discount[1:], 0.0]

    out = np.empty(x.size)
    for start in range(0, x.size, _BLOCK):
        block = slice(start, start + _BLOCK)
        expected = np.asarray(
            transaction_model.conditional_expected_purchases(
                ends, x[block], tx[block], big_t[block]
            )
        )
        n = x[block].size
        if expected.shape != (months, n):
            raise DataError(
                f"{type(transaction_model).__name__}.conditional_expected_purchases returned shape "
                f"{expected.shape} for a ({months}, 1) column of horizons and {n} customers; "
                f"it must broadcast t against the customers and return ({months}, {n})"
            )
        out[block] = np.einsum("m,mn->n", weight, expected) * value[block]
    return out.reshape(shape)
