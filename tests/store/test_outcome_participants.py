"""Outcome participants: writes in the transaction that records a new outcome, committed or
rolled back with it, never called for an idempotent retry, exact under concurrent writers."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from nextbest.store import (
    Interaction,
    InteractionIn,
    OutcomeTransaction,
    RecommendationItem,
    Store,
)


def outcome(key: str, **extra: Any) -> InteractionIn:
    return InteractionIn(
        customer_id="c1", outcome="conversion", idempotency_key=key, offer_id="a", **extra
    )


def counter(seen: list[Any]) -> Any:
    """A participant counting outcomes in a document and noting what it could read."""

    def participant(tx: OutcomeTransaction, interaction: Interaction) -> None:
        rec = (
            tx.get_recommendation(interaction.recommendation_id)
            if interaction.recommendation_id
            else None
        )
        seen.append((interaction.idempotency_key, tx.tenant_settings(), rec))

        def add(current: dict[tuple[str, str], Any]) -> dict[tuple[str, str], Any]:
            return {("test.count", "n"): current.get(("test.count", "n"), 0) + 1}

        tx.update_documents([("test.count", "n")], add)

    return participant


def test_a_participant_writes_with_the_outcome_and_not_for_a_retry(store: Store) -> None:
    store.update_tenant_settings("acme", {"mood": "calm"})
    store.save_recommendation("acme", "r1", "c1", [RecommendationItem(1, "a", 0.5, {"p": 1})])
    seen: list[Any] = []
    first = store.record_interaction(
        "acme", outcome("k1", recommendation_id="r1", rank=1), participants=[counter(seen)]
    )
    assert first.created
    again = store.record_interaction(
        "acme", outcome("k1", recommendation_id="r1", rank=1), participants=[counter(seen)]
    )
    assert not again.created  # a retry: no participant called, nothing counted twice
    assert store.get_document("test.count", "acme", "n") == 1
    ((key, settings, rec),) = seen
    assert key == "k1" and settings["mood"] == "calm"
    assert rec is not None and rec.items[0].annotations == {"p": 1}


def test_a_participant_reads_one_item_of_a_recommendation(store: Store) -> None:
    items = [RecommendationItem(1, "a", 0.5, {"p": 1}), RecommendationItem(2, "b", 0.4, None)]
    store.save_recommendation("acme", "r1", "c1", items, channel="web")
    read: list[Any] = []

    def reader(tx: OutcomeTransaction, interaction: Interaction) -> None:
        read.extend(tx.get_recommendation("r1", rank) for rank in (2, 9))
        read.append(tx.get_recommendation("nope", 1))

    store.record_interaction("acme", outcome("k1"), participants=[reader])
    two, nine, missing = read
    assert two is not None and two.channel == "web" and two.customer_id == "c1"
    assert [(i.rank, i.offer_id, i.annotations) for i in two.items] == [(2, "b", None)]
    assert nine is not None and nine.items == [] and missing is None


def test_a_raising_participant_rolls_the_outcome_back(store: Store) -> None:
    def failing(tx: OutcomeTransaction, interaction: Interaction) -> None:
        counter([])(tx, interaction)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        store.record_interaction("acme", outcome("k1"), participants=[failing])
    assert list(store.iter_interactions("acme")) == []
    assert store.get_customer_summary("acme", "c1") is None
    assert store.get_document("test.count", "acme", "n") is None
    # the same key records afterwards (nothing of the failed attempt stayed)
    assert store.record_interaction("acme", outcome("k1"), participants=[counter([])]).created
    assert store.get_document("test.count", "acme", "n") == 1


def test_concurrent_participants_count_exactly(store_factory: Any, store: Store) -> None:
    per_thread, threads = 15, 8

    def work(t: int) -> None:
        handle = store_factory()  # its own handle, as another process would have
        for i in range(per_thread):
            handle.record_interaction("acme", outcome(f"t{t}-{i}"), participants=[counter([])])

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert store.get_document("test.count", "acme", "n") == per_thread * threads
    assert len(list(store.iter_interactions("acme"))) == per_thread * threads
