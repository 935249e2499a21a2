"""Shared builders for the CLV plugin tests: a fake clock and interaction data.

A module of its own (not conftest) so test files can import it unambiguously."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from nextbest.store import InteractionIn, Store

DAY = 86_400.0
#: asOf of the worked tenant (2024-07-01T00:00:00Z).
T0 = datetime(2024, 7, 1, tzinfo=UTC).timestamp()
_keys = itertools.count()


class FakeClock:
    """Epoch seconds that move only when told to (thread-safe)."""

    def __init__(self, now: float) -> None:
        self._now = now
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def add_interactions(
    store: Store,
    tenant: str,
    customer: str,
    times: Sequence[float],
    values: Sequence[float] | None = None,
    outcome: str = "conversion",
) -> None:
    """Record one interaction per time (epoch seconds) with the given conversion values."""
    values = values if values is not None else [0.0] * len(times)
    batch = [
        InteractionIn(
            customer_id=customer,
            outcome=outcome,
            idempotency_key=f"k{next(_keys)}",
            value=v,
            occurred_at=at(t),
        )
        for t, v in zip(times, values, strict=True)
    ]
    store.record_interactions_bulk(tenant, batch)


def spread(first: float, last: float, n: int) -> list[float]:
    """``n`` times from ``first`` to ``last`` inclusive (n >= 2), or [last] for n == 1."""
    if n == 1:
        return [last]
    step = (last - first) / (n - 1)
    return [first + i * step for i in range(n - 1)] + [last]


def worked_tenant(store: Store, tenant: str = "acme") -> None:
    """The spec's worked example (customer ``ada``: recency 5 days, 48 interactions, 360.00,
    first interaction 6 months before T0) among five smaller customers, so ada is above P75."""
    first = T0 - 6 * 30.4375 * DAY
    add_interactions(store, tenant, "ada", spread(first, T0 - 5 * DAY, 48), [7.5] * 48)
    others = {  # customer: (first days ago, last days ago, interactions, value each)
        "bob": (100, 10, 5, 10.0),
        "cy": (60, 40, 3, 5.0),
        "dee": (200, 2, 10, 12.0),
        "eve": (45, 45, 1, 0.0),
        "fay": (20, 1, 2, 30.0),
    }
    for name, (f, last, n, v) in others.items():
        add_interactions(store, tenant, name, spread(T0 - f * DAY, T0 - last * DAY, n), [v] * n)


def days(n: float) -> timedelta:
    return timedelta(days=n)


def store_settings_unchecked(store: Store, tenant: str, **changes: object) -> None:
    """Write a tenant's CLV settings straight to the store, past ``update_settings``' checks:
    a tenant whose settings name a model with no stored fit (settings stored before the check,
    or fits removed). Services re-read settings after their few-second TTL (or a fresh one)."""
    from nextbest_clv.service.settings import ClvSettings, merge_settings
    from nextbest_clv.service.settings_repository import CONFIG_NAMESPACE, SETTINGS_KEY

    doc = store.get_document(CONFIG_NAMESPACE, tenant, SETTINGS_KEY)
    current = ClvSettings.model_validate(doc) if doc else ClvSettings()
    merged = merge_settings(current, changes)
    store.put_documents(CONFIG_NAMESPACE, tenant, {SETTINGS_KEY: merged.to_json()})
