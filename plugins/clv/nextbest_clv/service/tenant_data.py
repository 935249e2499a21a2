"""A tenant's transactions and subscriptions, read from the store as arrays for the models.

- Transactions: the interactions whose outcome is one of the tenant's ``transactionOutcomes``
  (default ``conversion``), with their recorded value.
- Subscriptions (:class:`~nextbest_clv.core.subscriptions.Subscriptions`): per customer, the
  latest interaction whose outcome is one of ``subscriptionStartOutcomes`` (default
  ``subscribe``; its value is the price per billing period) and whether an
  ``subscriptionEndOutcomes`` interaction (default ``cancel``) follows it (then the
  subscription has ended at that time). Billing periods of ``subscriptionPeriodDays`` start at
  the subscription start; a subscriber "renews" at each period boundary it passes.

And :func:`require_tenant`: the check that a tenant exists, with a message that says how to
create it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nextbest.store import Store, TenantNotFoundError, from_epoch, to_epoch
from nextbest_clv.core.subscriptions import DAY_SECONDS, Subscriptions, subscriptions_from_events

__all__ = [
    "Transactions",
    "customer_subscription",
    "customer_transactions",
    "end_of_day",
    "epoch_day",
    "load_subscriptions",
    "load_transactions",
    "require_tenant",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Transactions:
    """Transactions as columns: customer ids (str), days (datetime64[D]), values."""

    customer_ids: NDArray[np.str_]
    days: NDArray[np.datetime64]
    values: FloatArray

    def __len__(self) -> int:
        return int(self.customer_ids.size)


def _columns_to_transactions(ids: Any, timestamps: Any, values: Any) -> Transactions:
    seconds = np.asarray(timestamps, dtype=np.float64)
    days = np.floor(seconds / DAY_SECONDS).astype(np.int64).astype("datetime64[D]")
    return Transactions(np.asarray(ids).astype(str), days, np.asarray(values, dtype=np.float64))


def load_transactions(
    store: Store, tenant_id: str, outcomes: tuple[str, ...], end: float | None = None
) -> Transactions:
    """The tenant's transactions (``outcomes``) up to ``end`` (epoch seconds, inclusive)."""
    # The store keeps whole microseconds and selects occurred_at < until: one microsecond more
    # makes ``end`` inclusive.
    until = None if end is None else from_epoch(end + 1e-6)
    cols = store.interaction_columns(tenant_id, outcomes=list(outcomes), end=until)
    return _columns_to_transactions(cols.customer_ids, cols.timestamps, cols.values)


def customer_transactions(
    store: Store, tenant_id: str, customer_id: str, outcomes: tuple[str, ...], end: float
) -> Transactions:
    """One customer's transactions up to ``end`` (epoch seconds, inclusive)."""
    wanted = set(outcomes)
    times: list[float] = []
    values: list[float] = []
    for interaction in store.iter_interactions(tenant_id, customer_id):
        at = to_epoch(interaction.occurred_at)
        if interaction.outcome in wanted and at <= end:
            times.append(at)
            values.append(interaction.value)
    return _columns_to_transactions([customer_id] * len(times), times, values)


def load_subscriptions(
    store: Store,
    tenant_id: str,
    start_outcomes: tuple[str, ...],
    end_outcomes: tuple[str, ...],
    as_of: float,
) -> Subscriptions:
    """The tenant's subscriptions as of ``as_of`` (epoch seconds)."""
    starts = store.interaction_columns(tenant_id, outcomes=list(start_outcomes))
    ends = store.interaction_columns(tenant_id, outcomes=list(end_outcomes))
    return subscriptions_from_events(
        starts.customer_ids,
        starts.timestamps,
        starts.values,
        ends.customer_ids,
        ends.timestamps,
        as_of,
    )


def customer_subscription(
    store: Store,
    tenant_id: str,
    customer_id: str,
    start_outcomes: tuple[str, ...],
    end_outcomes: tuple[str, ...],
    as_of: float,
) -> Subscriptions:
    """One customer's subscription (zero or one row)."""
    starts: list[tuple[float, float]] = []
    ends: list[float] = []
    for interaction in store.iter_interactions(tenant_id, customer_id):
        if interaction.outcome in start_outcomes:
            starts.append((to_epoch(interaction.occurred_at), interaction.value))
        elif interaction.outcome in end_outcomes:
            ends.append(to_epoch(interaction.occurred_at))
    return subscriptions_from_events(
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
