"""From a transaction log to the per-customer summary the buy-till-you-die models need.

Conventions (the BTYD literature and lifetimes):

- time resolution is the calendar day: several transactions by one customer on one day count as
  one transaction, and their values are summed;
- ``frequency`` x is the number of repeat transaction-days (the first one excluded);
- ``recency`` t_x is the time from the first to the last transaction-day;
- ``T`` is the time from the first transaction-day to the end of the (calibration) period;
- ``monetary_value`` is the mean value of the repeat transaction-days (0 when x = 0);
- times are expressed in a chosen unit: days, weeks (days / 7) or any number of days.

Customers whose first transaction falls after the end of the (calibration) period are left out.
The holdout average value is per transaction-day, like the calibration one (lifetimes'
``calibration_and_holdout_data`` averages holdout values per raw record instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import DataError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
TimeUnit = Literal["days", "weeks"] | float


@dataclass(frozen=True)
class CustomerSummary:
    """Per-customer summary, one row per customer sorted by customer id.

    Attributes:
        customer_ids: the customer ids, in ascending order.
        frequency: repeat transaction-days in the (calibration) period (x).
        recency: time of the last transaction-day since the first (t_x), in ``time_unit``.
        T: time from the first transaction-day to the end of the (calibration) period.
        monetary_value: mean value of the repeat transaction-days; 0 where frequency is 0.
        time_unit_days: length of the time unit in days (7.0 for weeks).
        frequency_holdout: transaction-days in the holdout period (``None`` without a split).
        monetary_value_holdout: mean value of the holdout transaction-days (0 where none).
        duration_holdout: length of the holdout period in ``time_unit`` (``None`` without one).
    """

    customer_ids: NDArray[np.generic]
    frequency: FloatArray
    recency: FloatArray
    T: FloatArray
    monetary_value: FloatArray
    time_unit_days: float
    frequency_holdout: FloatArray | None = None
    monetary_value_holdout: FloatArray | None = None
    duration_holdout: float | None = None

    def __len__(self) -> int:
        return int(self.frequency.size)


def summarize_transactions(
    customer_ids: ArrayLike,
    dates: ArrayLike,
    values: ArrayLike | None = None,
    *,
    observation_end: ArrayLike | None = None,
    calibration_end: ArrayLike | None = None,
    time_unit: TimeUnit = "weeks",
) -> CustomerSummary:
    """Summarise a transaction log per customer, optionally split into calibration and holdout.

    Args:
        customer_ids: one id per transaction (any sortable dtype: ints, strings).
        dates: transaction dates or datetimes (datetime64 of any resolution, ISO strings,
            ``datetime.date`` objects); only the calendar day is used.
        values: transaction values (e.g. revenue); ``None`` means monetary values of 0.
        observation_end: last day of the observation period (inclusive); defaults to the last
            transaction day. Later transactions are ignored.
        calibration_end: if given, last day of the calibration period (inclusive): ``frequency``,
            ``recency``, ``T`` and ``monetary_value`` describe the calibration period and the
            ``*_holdout`` fields the days after it, up to ``observation_end``.
        time_unit: "days", "weeks" or the length of the unit in days.

    Raises:
        DataError: empty input, arrays of different lengths, missing dates (NaT), non-finite
            values, or a calibration end outside the observation period.
    """
    unit_days = _unit_days(time_unit)
    ids = np.asarray(customer_ids)
    days = _as_days(dates)
    if ids.ndim != 1 or days.ndim != 1 or ids.size != days.size:
        raise DataError(
            f"customer_ids and dates must be 1-d arrays of the same length, got shapes "
            f"{ids.shape} and {days.shape}"
        )
    if ids.size == 0:
        raise DataError("no transactions: customer_ids and dates are empty")
    if values is None:
        vals = np.zeros(ids.size)
    else:
        vals = np.asarray(values, dtype=np.float64)
        if vals.shape != ids.shape:
            raise DataError(
                f"values must have the shape of customer_ids {ids.shape}, got {vals.shape}"
            )
        if not np.all(np.isfinite(vals)):
            raise DataError(
                f"values contain {np.count_nonzero(~np.isfinite(vals))} NaN/inf entries"
            )

    end = (
        int(days.max())
        if observation_end is None
        else _scalar_day(observation_end, "observation_end")
    )
    cal_end = end if calibration_end is None else _scalar_day(calibration_end, "calibration_end")
    if cal_end > end:
        raise DataError(
            f"calibration_end ({np.datetime64(cal_end, 'D')}) is after observation_end "
            f"({np.datetime64(end, 'D')})"
        )

    keep = days <= end
    if not keep.any():
        raise DataError(f"no transactions on or before observation_end ({np.datetime64(end, 'D')})")
    ids, days, vals = ids[keep], days[keep], vals[keep]

    # One row per (customer, day), value summed, sorted customer-major then day: a single
    # int64 key sorts once, much faster than a two-key lexsort on millions of rows. Integer
    # ids go into the key directly; other ids (strings, ...) are first coded by np.unique.
    first = int(days.min())
    span = int(days.max()) - first + 1
    if np.issubdtype(ids.dtype, np.integer) and _fits_in_key(ids, span):
        base = ids.min()
        offsets = (ids - base).astype(np.int64)  # in the ids' dtype first: no overflow
        pair_key, p_value = _sum_by_key(offsets * span + (days - first), vals)
        pair_offsets = pair_key // span
        new_customer = np.r_[True, pair_offsets[1:] != pair_offsets[:-1]]
        unique_ids = pair_offsets[new_customer].astype(ids.dtype) + base
        p_code = np.cumsum(new_customer) - 1
    else:
        unique_ids, inverse = np.unique(ids, return_inverse=True)
        codes = inverse.reshape(-1).astype(np.int64)
        pair_key, p_value = _sum_by_key(codes * span + (days - first), vals)
        p_code = pair_key // span
    p_day = pair_key % span + first

    n_customers = unique_ids.size
    first_day = np.full(n_customers, np.iinfo(np.int64).max)
    np.minimum.at(first_day, p_code, p_day)

    cal = p_day <= cal_end
    in_cal = first_day <= cal_end  # customers acquired in the calibration period
    c_code, c_day, c_value = p_code[cal], p_day[cal], p_value[cal]
    count = np.bincount(c_code, minlength=n_customers)
    last_day = np.full(n_customers, np.iinfo(np.int64).min)
    np.maximum.at(last_day, c_code, c_day)
    total = np.bincount(c_code, weights=c_value, minlength=n_customers)
    first_value = np.zeros(n_customers)
    is_first = np.r_[True, c_code[1:] != c_code[:-1]] if c_code.size else np.zeros(0, bool)
    first_value[c_code[is_first]] = c_value[is_first]

    sel = np.flatnonzero(in_cal)
    frequency = (count[sel] - 1).astype(np.float64)
    recency = (last_day[sel] - first_day[sel]) / unit_days
    T = (cal_end - first_day[sel]) / unit_days
    repeat_total = total[sel] - first_value[sel]
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(frequency > 0, repeat_total / frequency, 0.0)

    if calibration_end is None:
        return CustomerSummary(unique_ids[sel], frequency, recency, T, monetary, unit_days)

    hold = ~cal & in_cal[p_code]
    h_count = np.bincount(p_code[hold], minlength=n_customers)[sel].astype(np.float64)
    h_total = np.bincount(p_code[hold], weights=p_value[hold], minlength=n_customers)[sel]
    with np.errstate(invalid="ignore", divide="ignore"):
        h_monetary = np.where(h_count > 0, h_total / h_count, 0.0)
    return CustomerSummary(
        unique_ids[sel],
        frequency,
        recency,
        T,
        monetary,
        unit_days,
        frequency_holdout=h_count,
        monetary_value_holdout=h_monetary,
        duration_holdout=(end - cal_end) / unit_days,
    )


def _fits_in_key(ids: IntArray, span: int) -> bool:
    """Whether (id - min id) * span + day offset fits in an int64."""
    id_range = int(ids.max()) - int(ids.min()) + 1
    return id_range * span < 2**62


def _sum_by_key(keys: IntArray, values: FloatArray) -> tuple[IntArray, FloatArray]:
    """Distinct keys in ascending order and the sum of ``values`` for each."""
    order = np.argsort(keys)
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    return sorted_keys[starts], np.add.reduceat(values[order], starts)


def _unit_days(time_unit: TimeUnit) -> float:
    if time_unit == "days":
        return 1.0
    if time_unit == "weeks":
        return 7.0
    if isinstance(time_unit, int | float) and not isinstance(time_unit, bool) and time_unit > 0:
        return float(time_unit)
    raise DataError(
        f"time_unit must be 'days', 'weeks' or a positive number of days, got {time_unit!r}"
    )


def _as_days(dates: ArrayLike) -> IntArray:
    """Calendar days since 1970-01-01 as int64; datetimes are floored to their day."""
    try:
        arr = np.asarray(dates)
        if not np.issubdtype(arr.dtype, np.datetime64):
            arr = arr.astype("datetime64")
        days = arr.astype("datetime64[D]")
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"dates must be dates or datetimes (datetime64, ISO strings): {exc}"
        ) from exc
    if np.any(np.isnat(days)):
        raise DataError(f"dates contain {np.count_nonzero(np.isnat(days))} missing values (NaT)")
    return days.astype(np.int64)


def _scalar_day(value: ArrayLike, name: str) -> int:
    days = _as_days(np.atleast_1d(np.asarray(value)))
    if days.size != 1:
        raise DataError(f"{name} must be a single date, got {days.size} values")
    return int(days[0])
