"""``Store.offer_activity``: the SQL sums per (period, offer, channel) equal the same sums
computed in Python over random interactions (both dialects, days and ISO weeks); the window
and the period are checked; another tenant's interactions never count."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from nextbest.store import InteractionIn, InvalidInputError, Store
from nextbest.store.report_sql import period_start

T0 = datetime(2026, 3, 4, 15, tzinfo=UTC)  # a Wednesday
OUTCOMES = {"impression": 0.0, "click": 0.0, "conversion": 40.0, "dismiss": 0.0, "refund": -5.0}


def _seed(store: Store, tenant: str, rng: random.Random, n: int) -> list[InteractionIn]:
    rows = []
    for i in range(n):
        outcome = rng.choice(list(OUTCOMES))
        rows.append(
            InteractionIn(
                customer_id=f"c{rng.randint(1, 9)}",
                outcome=outcome,
                idempotency_key=f"{tenant}-{i}",
                offer_id=rng.choice(("a", "b", None)),
                channel=rng.choice(("web", "email", None)),
                value=OUTCOMES[outcome] * rng.random(),
                occurred_at=T0 + timedelta(hours=rng.uniform(-100, 400)),
            )
        )
    store.record_interactions_bulk(tenant, rows)
    return rows


@pytest.mark.parametrize("period", ["day", "week"])
def test_sums_match_python(store: Store, period: str) -> None:
    rng = random.Random(7)
    rows = _seed(store, "acme", rng, 300)
    _seed(store, "globex", rng, 50)
    since, until = T0, T0 + timedelta(days=12)
    expected: dict[tuple[datetime, str | None, str | None], list[float]] = defaultdict(
        lambda: [0, 0, 0, 0, 0.0]
    )
    for row in rows:
        assert row.occurred_at is not None
        if not since <= row.occurred_at < until:
            continue
        key = (period_start(row.occurred_at, period), row.offer_id, row.channel)
        sums = expected[key]
        sums[0] += row.outcome == "impression"
        sums[1] += row.outcome != "impression"
        sums[2] += row.outcome in ("click", "conversion")
        sums[3] += row.outcome == "conversion"
        sums[4] += row.value
    got = store.offer_activity("acme", since, until, period)
    assert len(got) == len(expected)
    for item in got:
        sums = expected[(item.period_start, item.offer_id, item.channel)]
        assert [item.impressions, item.responses, item.positive, item.conversions] == sums[:4]
        assert item.value == pytest.approx(sums[4])
    assert [g.period_start for g in got] == sorted(g.period_start for g in got)
    if period == "week":
        assert {g.period_start.weekday() for g in got} == {0}


def test_the_window_and_period_are_checked(store: Store) -> None:
    for args, field in [
        ((T0, T0), "since"),
        ((T0, T0 + timedelta(days=1), "month"), "period"),
        ((T0 - timedelta(days=4000), T0), "since"),
        ((datetime(1800, 1, 1, tzinfo=UTC), T0), "since"),
    ]:
        with pytest.raises(InvalidInputError) as caught:
            store.offer_activity("acme", *args)  # type: ignore[arg-type]
        assert caught.value.field == field
    assert store.offer_activity("nobody", T0, T0 + timedelta(days=1)) == []


def test_customer_recommendations_newest_first(store: Store) -> None:
    for i in range(5):
        store.save_recommendation(
            "acme",
            f"r{i}",
            "c1",
            [(1, "a", 0.5), (2, "b", None)],
            created_at=T0 + timedelta(minutes=i),
        )
    store.save_recommendation("acme", "other", "c2", [(1, "a", 1.0)])
    store.save_recommendation("globex", "g1", "c1", [(1, "x", 1.0)])
    latest = store.customer_recommendations("acme", "c1", limit=3)
    assert [r.recommendation_id for r in latest] == ["r4", "r3", "r2"]
    assert [i.offer_id for i in latest[0].items] == ["a", "b"]
    assert store.customer_recommendations("acme", "nobody") == []
    with pytest.raises(InvalidInputError) as caught:
        store.customer_recommendations("acme", "c1", limit=0)
    assert caught.value.field == "limit"
