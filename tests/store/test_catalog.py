"""Offers, flows, outcome types and recommendations."""

from __future__ import annotations

import pytest

from nextbest.store import (
    BUILTIN_OUTCOME_TYPES,
    FlowNotFoundError,
    InvalidInputError,
    OutcomeTypeExistsError,
    RecommendationExistsError,
    Store,
    TenantNotFoundError,
    UnknownOutcomeError,
    UnknownRankError,
    UnknownRecommendationError,
)


def test_offers_create_update_get_delete(store: Store) -> None:
    assert store.put_offer("acme", {"id": "o1", "name": "First", "tags": ["a"]}) is True
    assert store.put_offer("acme", {"id": "o1", "name": "Renamed"}) is False
    assert store.get_offer("acme", "o1") == {"id": "o1", "name": "Renamed"}
    assert store.get_offer("globex", "o1") is None
    assert store.delete_offer("globex", "o1") is False
    assert store.delete_offer("acme", "o1") is True
    assert store.get_offer("acme", "o1") is None
    assert store.delete_offer("acme", "o1") is False


@pytest.mark.parametrize("offer", [{"name": "no id"}, {"id": ""}, {"id": 7}])
def test_offers_need_a_string_id(store: Store, offer: dict) -> None:
    with pytest.raises(InvalidInputError, match='offer\\["id"\\]'):
        store.put_offer("acme", offer)


def test_offers_are_documents_that_must_be_json(store: Store) -> None:
    with pytest.raises(InvalidInputError, match="not finite at weight") as caught:
        store.put_offer("acme", {"id": "o1", "weight": float("nan")})
    assert caught.value.field == "offer.weight"
    with pytest.raises(TenantNotFoundError):
        store.put_offer("nobody", {"id": "o1"})


def test_offers_keyset_pagination(store: Store) -> None:
    for i in range(7):
        store.put_offer("acme", {"id": f"o{i}", "n": i})
    store.put_offer("globex", {"id": "o0"})
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = store.list_offers("acme", cursor=cursor, limit=3)
        seen += [o["id"] for o in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"o{i}" for i in range(7)]
    assert pages == 3
    assert store.list_offers("acme", limit=7).next_cursor is None
    with pytest.raises(InvalidInputError, match="cursor"):
        store.list_offers("acme", cursor="%%%not-a-cursor")
    with pytest.raises(InvalidInputError, match="limit"):
        store.list_offers("acme", limit=0)


def test_flows_versions_and_publishing(store: Store) -> None:
    assert store.save_flow("acme", "main", {"nodes": [1]}) == 1
    assert store.save_flow("acme", "main", {"nodes": [1, 2]}) == 2
    assert store.save_flow("globex", "main", {"nodes": []}) == 1

    latest = store.get_flow("acme", "main")
    assert latest is not None and latest.version == 2 and latest.document == {"nodes": [1, 2]}
    assert not latest.published
    assert store.get_flow("acme", "main", version=1).document == {"nodes": [1]}  # type: ignore[union-attr]
    assert store.get_flow("acme", "main", published_only=True) is None

    published = store.publish_flow("acme", "main", 1)
    assert published.published and published.published_at is not None
    assert store.get_flow("acme", "main", published_only=True).version == 1  # type: ignore[union-attr]
    assert store.get_flow("acme", "main", version=2, published_only=True) is None

    store.publish_flow("acme", "main", 2)
    assert store.get_flow("acme", "main", published_only=True).version == 2  # type: ignore[union-attr]
    assert not store.get_flow("acme", "main", version=1).published  # type: ignore[union-attr]
    assert store.publish_flow("acme", "main", 2).version == 2  # publishing again is a no-op
    assert store.get_flow("globex", "main", published_only=True) is None

    with pytest.raises(FlowNotFoundError):
        store.publish_flow("acme", "main", 3)
    with pytest.raises(FlowNotFoundError):
        store.publish_flow("globex", "other", 1)
    assert store.get_flow("acme", "missing") is None


def test_flows_list_paginates_by_key(store: Store) -> None:
    for key in ("c", "a", "b"):
        store.save_flow("acme", key, {"k": key})
    store.save_flow("acme", "a", {"k": "a2"})
    store.publish_flow("acme", "a", 1)
    first = store.list_flows("acme", limit=2)
    assert [(f.key, f.latest_version, f.published_version) for f in first.items] == [
        ("a", 2, 1),
        ("b", 1, None),
    ]
    second = store.list_flows("acme", cursor=first.next_cursor, limit=2)
    assert [f.key for f in second.items] == ["c"] and second.next_cursor is None
    assert store.list_flows("globex").items == []


def test_builtin_outcome_types_are_exactly_the_eleven() -> None:
    expected = {
        "impression": ("neutral", "impression"),
        "click": ("positive", "response"),
        "conversion": ("positive", "response"),
        "share": ("positive", "response"),
        "save": ("positive", "response"),
        "not_interested": ("negative", "response"),
        "opt_out": ("negative", "response"),
        "dismiss": ("negative", "response"),
        "complaint": ("negative", "response"),
        "defer": ("neutral", "response"),
        "refund": ("negative", "response"),
    }
    assert {n: (t.classification, t.kind) for n, t in BUILTIN_OUTCOME_TYPES.items()} == expected


def test_custom_outcome_types_per_tenant(store: Store) -> None:
    made = store.create_outcome_type("acme", "upgrade", "positive")
    assert (made.name, made.classification, made.kind, made.builtin) == (
        "upgrade",
        "positive",
        "response",
        False,
    )
    assert store.resolve_outcome_type("acme", "upgrade") == made
    assert store.resolve_outcome_type("acme", "click").builtin
    with pytest.raises(UnknownOutcomeError, match="unknown outcome 'upgrade'"):
        store.resolve_outcome_type("globex", "upgrade")
    with pytest.raises(OutcomeTypeExistsError):
        store.create_outcome_type("acme", "upgrade", "negative")
    with pytest.raises(OutcomeTypeExistsError, match="built-in"):
        store.create_outcome_type("acme", "click", "negative")
    with pytest.raises(InvalidInputError, match="classification"):
        store.create_outcome_type("acme", "meh", "lukewarm")
    with pytest.raises(InvalidInputError, match="kind"):
        store.create_outcome_type("acme", "meh", "neutral", "view")
    with pytest.raises(InvalidInputError, match="name"):
        store.create_outcome_type("acme", "Bad Name", "neutral")
    names = [t.name for t in store.list_outcome_types("acme")]
    assert names == [*BUILTIN_OUTCOME_TYPES, "upgrade"]
    assert len(store.list_outcome_types("globex")) == 11


def test_recommendations_resolve_ranks(store: Store) -> None:
    saved = store.save_recommendation(
        "acme",
        "rec-1",
        "cust-1",
        [(2, "o2", 0.5), (1, "o1", 0.9)],
        channel="web",
        placement="home",
        flow_key="main",
        flow_version=3,
    )
    assert [i.rank for i in saved.items] == [1, 2]
    assert store.resolve_recommendation("acme", "rec-1", 1) == "o1"
    assert store.resolve_recommendation("acme", "rec-1", 2) == "o2"
    with pytest.raises(UnknownRankError, match="no rank 3"):
        store.resolve_recommendation("acme", "rec-1", 3)
    with pytest.raises(UnknownRecommendationError):
        store.resolve_recommendation("acme", "rec-2", 1)
    with pytest.raises(UnknownRecommendationError):
        store.resolve_recommendation("globex", "rec-1", 1)
    with pytest.raises(RecommendationExistsError):
        store.save_recommendation("acme", "rec-1", "cust-1", [(1, "o1", None)])

    loaded = store.get_recommendation("acme", "rec-1")
    assert loaded is not None
    assert (loaded.customer_id, loaded.channel, loaded.placement) == ("cust-1", "web", "home")
    assert (loaded.flow_key, loaded.flow_version) == ("main", 3)
    assert [(i.rank, i.offer_id, i.score) for i in loaded.items] == [(1, "o1", 0.9), (2, "o2", 0.5)]
    assert store.get_recommendation("globex", "rec-1") is None
    with pytest.raises(InvalidInputError, match="ranks"):
        store.save_recommendation("acme", "rec-3", "c", [(1, "a", None), (1, "b", None)])
    assert store.get_recommendation("acme", "rec-3") is None
