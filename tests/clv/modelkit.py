"""Builders for the probabilistic-model tests: synthetic buyers drawn from a BG/NBD model,
subscribers, and CDNOW in a store. A module of its own (not conftest) for unambiguous imports."""

from __future__ import annotations

import numpy as np
from clvkit import DAY, add_interactions
from nextbest_clv.core.models import BetaGeoModel
from nextbest_clv.datasets import load_cdnow_sample

from nextbest.store import InteractionIn, Store
from nextbest.store.base import from_epoch

#: The model synthetic buyers are drawn from (time unit: days).
TRUE_BGNBD = BetaGeoModel.from_params(0.8, 20.0, 0.5, 3.0)


def add_buyers(
    store: Store, tenant: str, as_of: float, n: int = 150, seed: int = 7, prefix: str = "c"
) -> None:
    """``n`` customers drawn from :data:`TRUE_BGNBD`, first purchase 30-300 days before
    ``as_of``; one conversion per purchase day (whole days after the first), values 5-50."""
    rng = np.random.default_rng(seed)
    ages = rng.integers(30, 300, n).astype(float)
    drawn = TRUE_BGNBD.sample(ages, seed=seed)
    for c in range(n):
        first = as_of - ages[c] * DAY
        x = int(drawn.frequency[c])
        offsets = [0.0]
        if x:
            last = max(1.0, float(np.round(drawn.recency[c])))
            between = np.sort(rng.uniform(0.0, last, x - 1)) if x > 1 else np.zeros(0)
            offsets += [float(v) for v in np.round(between)] + [last]
        times = [first + o * DAY for o in offsets]
        values = [float(v) for v in rng.uniform(5.0, 50.0, len(times)).round(2)]
        add_interactions(store, tenant, f"{prefix}{c}", times, values)


def add_subscriber(
    store: Store,
    tenant: str,
    customer: str,
    start: float,
    cancel: float | None = None,
    price: float = 10.0,
) -> None:
    """A ``subscribe`` at ``start`` (value = price per period) and optionally a ``cancel``."""
    add_interactions(store, tenant, customer, [start], [price], outcome="subscribe")
    if cancel is not None:
        add_interactions(store, tenant, customer, [cancel], [0.0], outcome="cancel")


def ingest_cdnow(store: Store, tenant: str) -> None:
    """The CDNOW sample (2,357 customers) as conversions at noon UTC of their day."""
    data = load_cdnow_sample()
    seconds = data.dates.astype("datetime64[s]").astype(np.int64) + 43_200
    store.record_interactions_bulk(
        tenant,
        (
            InteractionIn(
                customer_id=str(cid),
                outcome="conversion",
                idempotency_key=f"cdnow-{i}",
                value=float(v),
                occurred_at=from_epoch(float(t)),
            )
            for i, (cid, t, v) in enumerate(
                zip(data.customer_ids.tolist(), seconds.tolist(), data.values.tolist(), strict=True)
            )
        ),
    )
