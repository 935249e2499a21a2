"""Recommendation items with annotations, listing a tenant's recommendations, and atomic
read-modify-write of plugin documents (exact under concurrent writers in several handles)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nextbest.store import InvalidInputError, RecommendationItem, Store

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def test_annotations_are_stored_with_each_item(store: Store) -> None:
    note = {"adaptive": {"propensity": 0.2, "source": "learned"}}
    store.save_recommendation(
        "acme", "r1", "c1", [RecommendationItem(1, "a", 0.5, note), (2, "b", 0.1)]
    )
    rec = store.get_recommendation("acme", "r1")
    assert rec is not None
    assert [(i.offer_id, i.annotations) for i in rec.items] == [("a", note), ("b", None)]


@pytest.mark.parametrize(
    "bad", [{"x": float("nan")}, {"x": "\ud800"}, ["not", "an", "object"]], ids=str
)
def test_bad_annotations_are_refused_before_anything_is_written(store: Store, bad: Any) -> None:
    with pytest.raises(InvalidInputError) as info:
        store.save_recommendation("acme", "r1", "c1", [RecommendationItem(1, "a", 0.5, bad)])
    assert "annotations" in str(info.value.field)
    assert store.get_recommendation("acme", "r1") is None


def test_iter_recommendations_pages_filters_and_isolates_tenants(store: Store) -> None:
    for i in range(1203):  # more than two pages
        store.save_recommendation(
            "acme",
            f"r{i:05d}",
            f"c{i % 7}",
            [(1, "a", 1.0), (2, "b", None)],
            flow_key="f" if i % 2 else "g",
            created_at=T0 + timedelta(seconds=i // 3),  # equal times across page edges
        )
    store.save_recommendation("globex", "other", "c1", [(1, "a", 1.0)], created_at=T0)
    every = list(store.iter_recommendations("acme"))
    assert [r.recommendation_id for r in every] == [f"r{i:05d}" for i in range(1203)]
    assert all([i.rank for i in r.items] == [1, 2] for r in every)
    since = list(store.iter_recommendations("acme", since=T0 + timedelta(seconds=100)))
    assert len(since) == 1203 - 300
    only_f = list(store.iter_recommendations("acme", flow_key="f"))
    assert len(only_f) == 601 and {r.flow_key for r in only_f} == {"f"}
    assert [r.recommendation_id for r in store.iter_recommendations("globex")] == ["other"]
    assert list(store.iter_recommendations("nobody")) == []
    with pytest.raises(InvalidInputError):
        list(store.iter_recommendations("acme", since=datetime(1800, 1, 1, tzinfo=UTC)))


def test_update_documents_is_exact_under_concurrent_writers(store_factory: Any) -> None:
    first = store_factory()
    first.create_tenant("acme")
    handles = [store_factory() for _ in range(4)]
    keys = [("counts", "a"), ("counts", "b"), ("marks", "m")]

    def bump(current: dict[tuple[str, str], Any]) -> dict[tuple[str, str], Any]:
        return {k: (current.get(k) or 0) + 1 for k in keys}

    def work(handle: Store) -> None:
        for _ in range(25):
            handle.update_documents("acme", reversed(keys), bump)

    threads = [threading.Thread(target=work, args=(h,)) for h in handles for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert first.get_documents("counts", "acme") == {"a": 200, "b": 200}
    assert first.get_document("marks", "acme", "m") == 200


def test_update_documents_refuses_keys_it_was_not_given(store: Store) -> None:
    with pytest.raises(InvalidInputError, match="not given"):
        store.update_documents("acme", [("n", "a")], lambda current: {("n", "b"): 1})
    with pytest.raises(InvalidInputError):
        store.update_documents("acme", [("n", "")], lambda current: {})
    assert store.get_documents("n", "acme") == {}
    # an update that writes nothing leaves everything as it was
    assert store.update_documents("acme", [("n", "a")], lambda current: {}) == {}
