"""Subscriptions as arrays, and the sBG records (periods, churned) they give (pure numpy).

Per customer, the latest start event is the subscription (its value is the price per billing
period); the first end event after it ends it (an end before a later start is a
re-subscription). Billing periods start at the subscription start; a subscriber "renews" at
each period boundary it passes. Times are epoch seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["DAY_SECONDS", "Subscriptions", "subscriber_periods", "subscriptions_from_events"]

DAY_SECONDS = 86_400.0
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Subscriptions:
    """One row per subscriber (by customer id): latest start (epoch seconds), end (NaN while
    active) and price per period (the value recorded with the start outcome)."""

    customer_ids: NDArray[np.str_]
    start: FloatArray
    end: FloatArray
    price: FloatArray

    def __len__(self) -> int:
        return int(self.customer_ids.size)

    @property
    def churned(self) -> NDArray[np.bool_]:
        """Whether each subscription has ended."""
        return np.asarray(np.isfinite(self.end))


def subscriptions_from_events(
    start_ids: Any,
    start_times: Any,
    start_values: Any,
    end_ids: Any,
    end_times: Any,
    as_of: float,
) -> Subscriptions:
    """Subscriptions from start and end events (see the module doc); events after ``as_of``
    are ignored, and an end before the latest start (a re-subscription) does not count."""
    s_ids = np.asarray(start_ids).astype(str)
    s_t = np.asarray(start_times, dtype=np.float64)
    s_v = np.asarray(start_values, dtype=np.float64)
    keep = s_t <= as_of
    s_ids, s_t, s_v = s_ids[keep], s_t[keep], s_v[keep]
    # Latest start per customer: sort by (customer, time) and take each customer's last row.
    order = np.lexsort((s_t, s_ids))
    s_ids, s_t, s_v = s_ids[order], s_t[order], s_v[order]
    last = np.r_[s_ids[1:] != s_ids[:-1], True] if s_ids.size else np.zeros(0, bool)
    ids, start, price = s_ids[last], s_t[last], s_v[last]
    e_ids = np.asarray(end_ids).astype(str)
    e_t = np.asarray(end_times, dtype=np.float64)
    end = np.full(ids.size, np.nan)
    if ids.size and e_ids.size:
        pos = np.searchsorted(ids, e_ids)
        pos_ok = np.minimum(pos, ids.size - 1)
        match = (pos < ids.size) & (ids[pos_ok] == e_ids) & (e_t <= as_of)
        match &= e_t >= start[pos_ok]
        # The first end after the latest start ends the subscription.
        first_end = np.full(ids.size, np.inf)
        np.minimum.at(first_end, pos_ok[match], e_t[match])
        end = np.where(np.isfinite(first_end), first_end, np.nan)
    return Subscriptions(ids, start, end, price)


def subscriber_periods(
    subscriptions: Subscriptions, as_of: float, period_days: float
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """sBG records (periods, churned) of subscribers as of ``as_of``: an ended subscription
    churned in period floor((end - start) / P) + 1 (1 = did not renew after its first period);
    an active one has completed floor((as_of - start) / P) periods."""
    period = period_days * DAY_SECONDS
    churned = subscriptions.churned
    until = np.where(churned, subscriptions.end, as_of)
    done = np.floor((until - subscriptions.start) / period)
    periods = np.where(churned, done + 1.0, done)
    return periods, churned
