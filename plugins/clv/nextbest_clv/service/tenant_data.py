"""A tenant's transactions and subscriptions, read from the store as arrays for the models.

- Transactions: the interactions whose outcome is one of the tenant's ``transactionOutcomes``
  (default ``conversion``), with their recorded value.
- Subscriptions (:class:`~nextbest_clv.core.subscriptions.Subscriptions`): per customer, the
  latest interaction whose outcome is one of ``subscriptionStartOutcomes`` (default
  ``subscribe``; its value is the price per billing period) and whether an
  ``subscriptionEndOutcomes`` interaction (default ``cancel``) follows it (then the
  subscription has ended at that time). Billing periods of ``subscriptionPeriodDays`` start at
  the subscription start; a subscriber "renews" at each period boundary it passes.

A customer with an event the store's rules refuse (``value_problem``: a value that is not
finite or beyond 1e12 in magnitude; ``epoch_problem``: a time outside [1900, 2200)), written
before the store checked them or by another writer, is left out entirely and listed in
``rejected`` (customer id -> reason): a fit or a back-test excludes it, a batch reports it as
failed, and one value near the float64 limit cannot poison the tenant's spend model.

Monetary values: each transaction's ``value`` column is what the models' spend comes from
(summed per transaction day, averaged per customer by ``summarize_transactions``), net of the
customer's refunds (outcome ``refund``, values <= 0, up to the same time): each of a customer's
transaction values is scaled by (purchases + refunds) / purchases, floored at 0, so the spend
nets refunds while the purchase count (the models' frequency) is unchanged. A subscription's
price is its start event's value.

And :func:`require_tenant`: the check that a tenant exists, with a message that says how to
create it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nextbest.store import (
    MAX_VALUE,
    REFUND,
    TIME_MAX,
    TIME_MIN,
    Store,
    TenantNotFoundError,
    epoch_problem,
    from_epoch,
    to_epoch,
    value_problem,
)
from nextbest_clv.core.subscriptions import DAY_SECONDS, Subscriptions, subscriptions_from_events
from nextbest_clv.service.records import iso_time

__all__ = [
    "Transactions",
    "customer_subscription",
    "customer_transactions",
    "end_of_day",
    "epoch_day",
    "load_subscriptions",
    "load_transactions",
    "require_tenant",
    "unusable_events",
]

FloatArray = NDArray[np.float64]
_LOW, _HIGH = TIME_MIN.timestamp(), TIME_MAX.timestamp()


@dataclass(frozen=True)
class Transactions:
    """Transactions as columns: customer ids (str), days (datetime64[D]), values; ``rejected``:
    the customers left out, with the reason (see the module doc)."""

    customer_ids: NDArray[np.str_]
    days: NDArray[np.datetime64]
    values: FloatArray
    rejected: Mapping[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.customer_ids.size)


def unusable_events(
    ids: NDArray[np.str_], seconds: FloatArray, values: FloatArray | None = None
) -> dict[str, str]:
    """Customers with an event whose time (or value) the store's rules refuse, each with the
    reason of its first such event (vectorised; the reason comes from ``nextbest.store``)."""
    with np.errstate(invalid="ignore"):  # NaN compares False: refused
        ok = (seconds >= _LOW) & (seconds < _HIGH)
        if values is not None:
            ok &= np.abs(values) <= MAX_VALUE
    bad = np.flatnonzero(~ok)
    rejected: dict[str, str] = {}
    for i in bad.tolist():
        customer = str(ids[i])
        if customer in rejected:
            continue
        value = None if values is None else float(values[i])
        # Negative values are the refunds' business (netted by the store), not a limit here.
        problem = None if value is None else value_problem(value, allow_negative=True)
        if problem is not None:
            rejected[customer] = f"a transaction value {value!r} {problem}"
        else:
            when = float(seconds[i])
            rejected[customer] = f"an interaction time {iso_time(when)} {epoch_problem(when)}"
    return rejected


def _without(ids: NDArray[np.str_], rejected: Mapping[str, str]) -> NDArray[np.bool_]:
    """Rows of ``ids`` whose customer is not rejected."""
    if not rejected:
        return np.ones(ids.size, dtype=bool)
    return np.asarray(~np.isin(ids, np.array(list(rejected), dtype=str)), dtype=bool)


def _columns_to_transactions(
    ids: Any,
    timestamps: Any,
    values: Any,
    refund_ids: Any = (),
    refund_values: Any = (),
) -> Transactions:
    customer_ids = np.asarray(ids).astype(str)
    seconds = np.asarray(timestamps, dtype=np.float64)
    amounts = np.asarray(values, dtype=np.float64)
    rejected = unusable_events(customer_ids, seconds, amounts)
    if rejected:
        keep = _without(customer_ids, rejected)
        customer_ids, seconds, amounts = customer_ids[keep], seconds[keep], amounts[keep]
    amounts = net_of_refunds(customer_ids, amounts, refund_ids, refund_values)
    days = np.floor(seconds / DAY_SECONDS).astype(np.int64).astype("datetime64[D]")
    return Transactions(customer_ids, days, amounts, rejected)


def net_of_refunds(
    customer_ids: NDArray[np.str_], values: FloatArray, refund_ids: Any, refund_values: Any
) -> FloatArray:
    """``values`` (transactions) scaled per customer by (purchases + refunds) / purchases,
    floored at 0 (see the module doc); refunds of customers without a purchase change
    nothing, and non-finite refunds are ignored (the store refuses them)."""
    refund_customers = np.asarray(refund_ids).astype(str)
    refunds = np.asarray(refund_values, dtype=np.float64)
    if customer_ids.size == 0 or refund_customers.size == 0:
        return values
    customers, index = np.unique(customer_ids, return_inverse=True)
    gross = np.bincount(index, weights=values, minlength=customers.size)
    where = np.searchsorted(customers, refund_customers)
    where = np.minimum(where, customers.size - 1)
    known = (customers[where] == refund_customers) & np.isfinite(refunds)
    refunded = np.bincount(where[known], weights=refunds[known], minlength=customers.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(gross > 0, np.clip((gross + refunded) / gross, 0.0, 1.0), 0.0)
    return np.asarray(values * factor[index], dtype=np.float64)


def load_transactions(
    store: Store, tenant_id: str, outcomes: tuple[str, ...], end: float | None = None
) -> Transactions:
    """The tenant's transactions (``outcomes``) up to ``end`` (epoch seconds, inclusive)."""
    # The store keeps whole microseconds and selects occurred_at < until: one microsecond more
    # makes ``end`` inclusive (nothing is stored at or after the end of the window).
    until = None if end is None or end + 1e-6 >= _HIGH else from_epoch(end + 1e-6)
    purchases = [name for name in outcomes if name != REFUND]  # refunds net, never count
    cols = store.interaction_columns(tenant_id, outcomes=purchases, end=until)
    refunds = store.interaction_columns(tenant_id, outcomes=[REFUND], end=until)
    return _columns_to_transactions(
        cols.customer_ids, cols.timestamps, cols.values, refunds.customer_ids, refunds.values
    )


def customer_transactions(
    store: Store, tenant_id: str, customer_id: str, outcomes: tuple[str, ...], end: float
) -> Transactions:
    """One customer's transactions up to ``end`` (epoch seconds, inclusive)."""
    wanted = set(outcomes) - {REFUND}
    times: list[float] = []
    values: list[float] = []
    refunds: list[float] = []
    for interaction in store.iter_interactions(tenant_id, customer_id):
        at = to_epoch(interaction.occurred_at)
        if at > end:
            continue
        if interaction.outcome in wanted:
            times.append(at)
            values.append(interaction.value)
        elif interaction.outcome == REFUND:
            refunds.append(interaction.value)
    return _columns_to_transactions(
        [customer_id] * len(times), times, values, [customer_id] * len(refunds), refunds
    )


def load_subscriptions(
    store: Store,
    tenant_id: str,
    start_outcomes: tuple[str, ...],
    end_outcomes: tuple[str, ...],
    as_of: float,
) -> tuple[Subscriptions, dict[str, str]]:
    """The tenant's subscriptions as of ``as_of`` (epoch seconds), and the customers left out
    (see the module doc) with the reason."""
    starts = store.interaction_columns(tenant_id, outcomes=list(start_outcomes))
    ends = store.interaction_columns(tenant_id, outcomes=list(end_outcomes))
    return _subscriptions(
        starts.customer_ids,
        starts.timestamps,
        starts.values,
        ends.customer_ids,
        ends.timestamps,
        as_of,
    )


def _subscriptions(
    start_ids: Any,
    start_times: Any,
    start_values: Any,
    end_ids: Any,
    end_times: Any,
    as_of: float,
) -> tuple[Subscriptions, dict[str, str]]:
    s_ids = np.asarray(start_ids).astype(str)
    s_t = np.asarray(start_times, dtype=np.float64)
    s_v = np.asarray(start_values, dtype=np.float64)
    e_ids = np.asarray(end_ids).astype(str)
    e_t = np.asarray(end_times, dtype=np.float64)
    rejected = unusable_events(s_ids, s_t, s_v)
    for customer, reason in unusable_events(e_ids, e_t).items():
        rejected.setdefault(customer, reason)
    if rejected:
        keep, keep_end = _without(s_ids, rejected), _without(e_ids, rejected)
        s_ids, s_t, s_v = s_ids[keep], s_t[keep], s_v[keep]
        e_ids, e_t = e_ids[keep_end], e_t[keep_end]
    return subscriptions_from_events(s_ids, s_t, s_v, e_ids, e_t, as_of), rejected


def customer_subscription(
    store: Store,
    tenant_id: str,
    customer_id: str,
    start_outcomes: tuple[str, ...],
    end_outcomes: tuple[str, ...],
    as_of: float,
) -> tuple[Subscriptions, dict[str, str]]:
    """One customer's subscription (zero or one row), and the customer when left out."""
    starts: list[tuple[float, float]] = []
    ends: list[float] = []
    for interaction in store.iter_interactions(tenant_id, customer_id):
        if interaction.outcome in start_outcomes:
            starts.append((to_epoch(interaction.occurred_at), interaction.value))
        elif interaction.outcome in end_outcomes:
            ends.append(to_epoch(interaction.occurred_at))
    return _subscriptions(
        [customer_id] * len(starts),
        [t for t, _ in starts],
        [v for _, v in starts],
        [customer_id] * len(ends),
        ends,
        as_of,
    )


def end_of_day(seconds: float) -> float:
    """The last microsecond of the UTC day of epoch ``seconds``."""
    return (math.floor(seconds / DAY_SECONDS) + 1) * DAY_SECONDS - 1e-6


def epoch_day(seconds: float) -> np.datetime64:
    """The UTC calendar day (datetime64[D]) of epoch seconds."""
    return np.datetime64(math.floor(seconds / DAY_SECONDS), "D")


def require_tenant(store: Store, tenant_id: str) -> None:
    """Raise TenantNotFoundError when the tenant does not exist."""
    if store.get_tenant(tenant_id) is None:
        raise TenantNotFoundError(
            f"tenant {tenant_id!r} does not exist: create it with `nextbest tenants create`"
        )
