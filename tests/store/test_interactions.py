"""Recording outcomes: idempotency, summaries, atomicity, concurrency, bulk, columnar reads."""

from __future__ import annotations

import random
import threading
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from nextbest.store import (
    InteractionIn,
    InvalidInputError,
    Store,
    TenantNotFoundError,
    UnknownOutcomeError,
    UnknownRankError,
    UnknownRecommendationError,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def ev(key: str, outcome: str = "click", hours: float = 0, **kw) -> InteractionIn:
    kw.setdefault("customer_id", "c1")
    kw.setdefault("offer_id", "o1")
    return InteractionIn(outcome=outcome, idempotency_key=key, occurred_at=at(hours), **kw)


def test_record_returns_the_stored_interaction(store: Store) -> None:
    result = store.record_interaction(
        "acme",
        ev("k1", "conversion", value=12.5, channel="web", context={"page": "home", "n": [1]}),
    )
    assert result.created
    stored = result.interaction
    assert (stored.tenant_id, stored.customer_id, stored.offer_id) == ("acme", "c1", "o1")
    assert (stored.outcome, stored.classification, stored.kind) == (
        "conversion",
        "positive",
        "response",
    )
    assert stored.value == 12.5 and stored.channel == "web"
    assert stored.occurred_at == T0 and stored.context == {"page": "home", "n": [1]}
    assert stored.recorded_at.tzinfo is not None
    assert store.get_interaction("acme", "k1") == stored


def test_same_key_returns_the_original_and_counts_once(store: Store) -> None:
    original = store.record_interaction("acme", ev("k1", "conversion", value=5.0)).interaction
    again = store.record_interaction("acme", ev("k1", "dismiss", hours=9, value=99.0))
    assert not again.created
    assert again.interaction == original
    summary = store.get_customer_summary("acme", "c1")
    assert summary is not None
    assert (summary.interactions, summary.conversions, summary.total_value) == (1, 1, 5.0)
    # The same key in another tenant is another event.
    assert store.record_interaction("globex", ev("k1")).created


def test_summaries_count_by_kind_and_classification(store: Store) -> None:
    events = [
        ev("1", "impression", 0),
        ev("2", "impression", 1, offer_id="o2"),
        ev("3", "click", 2),
        ev("4", "conversion", 3, value=10.25),
        ev("5", "dismiss", 4, offer_id="o2"),
        ev("6", "defer", 5),
        ev("7", "conversion", 30, value=4.75, offer_id=None),
    ]
    for event in events:
        store.record_interaction("acme", event)
    customer = store.get_customer_summary("acme", "c1")
    assert customer is not None
    assert asdict(customer) == {
        "customer_id": "c1",
        "interactions": 7,
        "impressions": 2,
        "positive": 3,
        "negative": 1,
        "neutral": 1,
        "conversions": 2,
        "total_value": 15.0,
        "first_at": at(0),
        "last_at": at(30),
        "last_outcome": "conversion",
    }
    offers = store.get_offer_summaries("acme", "c1")
    assert set(offers) == {"o1", "o2"}
    assert (offers["o1"].interactions, offers["o1"].positive, offers["o1"].total_value) == (
        4,
        2,
        10.25,
    )
    assert (offers["o2"].impressions, offers["o2"].negative, offers["o2"].last_outcome) == (
        1,
        1,
        "dismiss",
    )
    days = store.get_daily_summaries("acme", "c1")
    assert [(d.day, d.interactions) for d in days] == [(date(2024, 3, 1), 6), (date(2024, 3, 2), 1)]
    assert store.get_daily_summaries("acme", "c1", start=date(2024, 3, 2))[0].total_value == 4.75
    assert store.get_daily_summaries("acme", "c1", end=date(2024, 2, 29)) == []
    assert store.get_customer_summary("acme", "nobody") is None
    assert store.get_offer_summaries("acme", "nobody") == {}


def test_backfilled_history_does_not_replace_the_last_outcome(store: Store) -> None:
    store.record_interaction("acme", ev("new", "click", hours=10))
    store.record_interaction("acme", ev("old", "opt_out", hours=-100))
    summary = store.get_customer_summary("acme", "c1")
    assert summary is not None
    assert (summary.last_outcome, summary.last_at, summary.first_at) == ("click", at(10), at(-100))
    store.record_interaction("acme", ev("newest", "save", hours=11))
    assert store.get_customer_summary("acme", "c1").last_outcome == "save"  # type: ignore[union-attr]
    assert store.get_offer_summaries("acme", "c1")["o1"].last_outcome == "save"


def test_custom_outcomes_use_their_classification(store: Store) -> None:
    store.create_outcome_type("acme", "upgrade", "positive")
    store.create_outcome_type("acme", "viewed", "neutral", "impression")
    store.record_interaction("acme", ev("1", "upgrade"))
    store.record_interaction("acme", ev("2", "viewed", 1))
    summary = store.get_customer_summary("acme", "c1")
    assert (summary.positive, summary.impressions, summary.conversions) == (1, 1, 0)  # type: ignore[union-attr]
    with pytest.raises(UnknownOutcomeError):
        store.record_interaction("globex", ev("3", "upgrade"))


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"value": -1.0}, InvalidInputError, "value"),
        ({"value": float("nan")}, InvalidInputError, "value"),
        ({"value": float("inf")}, InvalidInputError, "value"),
        ({"outcome": "teleport"}, UnknownOutcomeError, "unknown outcome"),
        ({"idempotency_key": ""}, InvalidInputError, "idempotency key"),
        ({"customer_id": ""}, InvalidInputError, "customer id"),
        ({"context": {"x": {1, 2}}}, InvalidInputError, "context"),
        ({"rank": 1}, InvalidInputError, "together"),
    ],
)
def test_invalid_interactions_write_nothing(
    store: Store, changes: dict, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        store.record_interaction("acme", replace(ev("k"), **changes))
    assert list(store.iter_interactions("acme")) == []
    assert store.get_customer_summary("acme", "c1") is None


def test_unknown_tenant(store: Store) -> None:
    with pytest.raises(TenantNotFoundError):
        store.record_interaction("nobody", ev("k"))
    with pytest.raises(TenantNotFoundError):
        store.record_interactions_bulk("nobody", [ev("k")])


def test_recommendation_rank_resolves_the_offer(store: Store) -> None:
    store.save_recommendation("acme", "r1", "c1", [(1, "o7", 0.9), (2, "o8", 0.4)])
    got = store.record_interaction(
        "acme", ev("k1", offer_id=None, recommendation_id="r1", rank=2)
    ).interaction
    assert (got.offer_id, got.recommendation_id, got.rank) == ("o8", "r1", 2)
    assert set(store.get_offer_summaries("acme", "c1")) == {"o8"}
    with pytest.raises(UnknownRankError):
        store.record_interaction("acme", ev("k2", offer_id=None, recommendation_id="r1", rank=5))
    with pytest.raises(UnknownRecommendationError):
        store.record_interaction("acme", ev("k3", offer_id=None, recommendation_id="zz", rank=1))
    with pytest.raises(UnknownRecommendationError, match="for customer 'c2'"):
        store.record_interaction(
            "acme", ev("k4", offer_id=None, recommendation_id="r1", rank=1, customer_id="c2")
        )
    with pytest.raises(InvalidInputError, match="not rank 1"):
        store.record_interaction("acme", ev("k5", offer_id="o8", recommendation_id="r1", rank=1))
    with pytest.raises(UnknownRecommendationError):
        store.record_interaction("globex", ev("k6", offer_id=None, recommendation_id="r1", rank=1))
    assert [i.idempotency_key for i in store.iter_interactions("acme")] == ["k1"]


def test_a_failure_inside_the_transaction_leaves_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.record_interaction("acme", ev("before", "click", 0))
    original = store._transaction  # type: ignore[attr-defined]

    @contextmanager
    def write_then_fail():  # type: ignore[no-untyped-def]
        with original() as cur:
            yield cur  # the row and the summaries are written...
            raise RuntimeError("disk on fire")  # ...then the transaction fails before commit

    monkeypatch.setattr(store, "_transaction", write_then_fail)
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.record_interaction("acme", ev("k1", "conversion", 1, value=3.0))
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.record_interactions_bulk("acme", [ev("b1", hours=2), ev("b2", customer_id="c9")])
    monkeypatch.undo()

    assert store.get_interaction("acme", "k1") is None
    assert store.get_interaction("acme", "b1") is None
    assert store.get_customer_summary("acme", "c9") is None
    summary = store.get_customer_summary("acme", "c1")
    assert summary is not None and (summary.interactions, summary.total_value) == (1, 0.0)
    assert len(store.get_daily_summaries("acme", "c1")) == 1
    # The same keys can be recorded afterwards: nothing was half-written.
    assert store.record_interaction("acme", ev("k1", "conversion", 1, value=3.0)).created


def _events(count: int, seed: int) -> list[InteractionIn]:
    rng = random.Random(seed)
    outcomes = ["impression", "click", "conversion", "dismiss", "defer", "save"]
    events = []
    for i in range(count):
        outcome = rng.choice(outcomes)
        events.append(
            InteractionIn(
                customer_id=f"c{rng.randrange(40)}",
                outcome=outcome,
                idempotency_key=f"evt-{i}",
                offer_id=rng.choice(["o1", "o2", "o3", None]),
                # Values on a 1/4 grid sum exactly in any order; times are distinct and in the past.
                value=rng.randrange(400) / 4 if outcome == "conversion" else 0.0,
                occurred_at=T0 - timedelta(minutes=rng.randrange(10**6) * 7 + i % 7),
            )
        )
    return events


def _all_summaries(store: Store, tenant: str) -> dict:
    columns = store.customer_summary_columns(tenant)
    result = {}
    for customer in columns.customer_ids:
        result[customer] = (
            store.get_customer_summary(tenant, customer),
            store.get_offer_summaries(tenant, customer),
            store.get_daily_summaries(tenant, customer),
        )
    return result


def test_concurrent_retries_record_each_outcome_once(store_factory) -> None:
    setup = store_factory()
    setup.create_tenant("serial")
    setup.create_tenant("parallel")
    events = _events(1000, seed=7)
    for event in events:
        setup.record_interaction("serial", event)

    shared = store_factory()  # one store used by 8 threads, as a server process would
    created: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        order = events[:]
        rng.shuffle(order)
        retries = rng.sample(order, 100)  # a client retrying some requests
        barrier.wait()
        try:
            for event in order + retries:
                result = shared.record_interaction("parallel", event)
                if result.created:
                    created.append(1)
                assert result.interaction.idempotency_key == event.idempotency_key
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(created) == 1000
    assert len(list(shared.iter_interactions("parallel"))) == 1000
    serial = _all_summaries(setup, "serial")
    assert len(serial) == 40
    assert _all_summaries(shared, "parallel") == serial


def test_bulk_matches_single_records_and_is_idempotent(store: Store) -> None:
    events = _events(500, seed=3)
    for event in events:
        store.record_interaction("acme", event)
    result = store.record_interactions_bulk("globex", events + events[:50], chunk_size=128)
    assert (result.inserted, result.duplicates, result.chunks) == (500, 50, 5)
    assert _all_summaries(store, "globex") == _all_summaries(store, "acme")
    again = store.record_interactions_bulk("globex", events)
    assert (again.inserted, again.duplicates) == (0, 500)
    assert _all_summaries(store, "globex") == _all_summaries(store, "acme")
    assert store.get_interaction("globex", "evt-1") is not None


def test_bulk_needs_resolved_offers(store: Store) -> None:
    result = store.record_interactions_bulk(
        "acme", [ev("k", offer_id=None, recommendation_id="r", rank=1)]
    )
    assert (result.inserted, result.chunks) == (0, 0)
    [rejection] = result.rejected
    assert rejection.index == 0 and "offer_id" in rejection.reason
    assert store.get_interaction("acme", "k") is None


def test_summary_and_interaction_columns(store: Store) -> None:
    store.record_interaction("acme", ev("1", "conversion", 0, value=2.0, customer_id="b"))
    store.record_interaction("acme", ev("2", "click", 5, customer_id="a"))
    store.record_interaction("acme", ev("3", "conversion", 24, value=3.0, customer_id="b"))
    store.record_interaction("acme", ev("4", "conversion", -24, value=1.5, customer_id="a"))
    store.record_interaction("globex", ev("5", "conversion", 1, value=100.0, customer_id="a"))

    cols = store.customer_summary_columns("acme")
    assert list(cols.customer_ids) == ["a", "b"]
    assert cols.first_at.dtype == np.float64
    assert cols.first_at.tolist() == [at(-24).timestamp(), at(0).timestamp()]
    assert cols.last_at.tolist() == [at(5).timestamp(), at(24).timestamp()]
    assert cols.interactions.tolist() == [2, 2]
    assert cols.total_value.tolist() == [1.5, 5.0]
    assert cols.conversions.tolist() == [1, 2]
    assert len(store.customer_summary_columns("nobody")) == 0

    inter = store.interaction_columns("acme")
    assert list(inter.customer_ids) == ["a", "a", "b", "b"]
    assert inter.timestamps.tolist() == [
        at(-24).timestamp(),
        at(5).timestamp(),
        at(0).timestamp(),
        at(24).timestamp(),
    ]
    conv = store.interaction_columns("acme", outcomes=["conversion"], start=at(-1), end=at(24))
    assert (list(conv.customer_ids), conv.values.tolist()) == (["b"], [2.0])
    assert len(store.interaction_columns("acme", outcomes=[])) == 0


def test_tenants_are_isolated(store: Store) -> None:
    store.put_offer("acme", {"id": "o1"})
    store.save_flow("acme", "f", {})
    store.create_outcome_type("acme", "upgrade", "positive")
    store.save_recommendation("acme", "r1", "c1", [(1, "o1", None)])
    store.record_interaction("acme", ev("k1", "upgrade"))
    store.put_documents("ns", "acme", {"c1": {"x": 1}})
    assert store.get_offer("globex", "o1") is None
    assert store.list_offers("globex").items == []
    assert store.get_flow("globex", "f") is None
    assert store.get_recommendation("globex", "r1") is None
    assert store.get_interaction("globex", "k1") is None
    assert list(store.iter_interactions("globex")) == []
    assert store.get_customer_summary("globex", "c1") is None
    assert store.get_offer_summaries("globex", "c1") == {}
    assert store.get_daily_summaries("globex", "c1") == []
    assert len(store.customer_summary_columns("globex")) == 0
    assert len(store.interaction_columns("globex")) == 0
    assert store.get_documents("ns", "globex") == {}
    assert store.delete_documents("ns", "globex") == 0
    assert store.get_document("ns", "acme", "c1") == {"x": 1}
