"""Plugin documents and locks."""

from __future__ import annotations

import json

import pytest

from nextbest.store import InvalidInputError, Store


class Unserialisable:
    """Not JSON: makes the serialiser fail part-way through a batch."""


def test_documents_put_get_delete(store: Store) -> None:
    assert store.put_documents("clv.records", "acme", {"c1": {"score": 1}, "c2": [1, 2]}) == 2
    assert store.get_document("clv.records", "acme", "c1") == {"score": 1}
    assert store.get_document("clv.records", "acme", "zz") is None
    assert store.get_document("other", "acme", "c1") is None
    store.put_documents("clv.records", "acme", {"c1": {"score": 2}, "c3": "text"})
    assert store.get_documents("clv.records", "acme") == {
        "c1": {"score": 2},
        "c2": [1, 2],
        "c3": "text",
    }
    assert store.get_documents("clv.records", "acme", ["c3", "c1", "nope"]) == {
        "c3": "text",
        "c1": {"score": 2},
    }
    many = {f"k{i}": i for i in range(1200)}  # more keys than one IN (...) batch
    store.put_documents("big", "acme", many)
    assert store.get_documents("big", "acme", list(many)) == many
    assert store.delete_documents("big", "acme", [f"k{i}" for i in range(600)] + ["x"]) == 600
    assert len(store.get_documents("big", "acme")) == 600
    assert store.delete_documents("clv.records", "acme", ["c2"]) == 1
    assert store.delete_documents("clv.records", "acme") == 2
    assert store.get_documents("clv.records", "acme") == {}


def test_replace_swaps_the_whole_namespace(store: Store) -> None:
    store.put_documents("ns", "acme", {"a": 1, "b": 2})
    store.put_documents("ns", "globex", {"a": 9})
    store.put_documents("other", "acme", {"a": 7})
    assert store.put_documents("ns", "acme", {"c": 3}, replace=True) == 1
    assert store.get_documents("ns", "acme") == {"c": 3}
    assert store.get_documents("ns", "globex") == {"a": 9}
    assert store.get_documents("other", "acme") == {"a": 7}


@pytest.mark.parametrize("replace", [True, False])
def test_a_failing_document_leaves_the_previous_ones(store: Store, replace: bool) -> None:
    store.put_documents("ns", "acme", {"a": 1, "b": 2})
    batch = {f"new{i}": i for i in range(100)}
    batch["a"] = 100
    batch["bad"] = Unserialisable()  # type: ignore[assignment]
    batch["after"] = 1
    with pytest.raises(InvalidInputError, match="'bad' in 'ns' holds a Unserialisable, which JSON"):
        store.put_documents("ns", "acme", batch, replace=replace)
    with pytest.raises(InvalidInputError):
        store.put_documents("ns", "acme", {"nan": float("nan")}, replace=replace)
    assert store.get_documents("ns", "acme") == {"a": 1, "b": 2}


def test_lock_is_exclusive_across_stores(store_factory) -> None:
    first, second = store_factory(), store_factory()
    handle = first.try_lock("clv.schedule", ttl_seconds=60)
    assert handle is not None
    assert second.try_lock("clv.schedule", ttl_seconds=60) is None
    assert first.try_lock("clv.schedule", ttl_seconds=60) is None  # not re-entrant
    other = second.try_lock("another.job")
    assert other is not None
    other.release()
    assert handle.renew(60) is True
    handle.release()
    handle.release()  # idempotent
    with second.try_lock("clv.schedule") as taken:  # type: ignore[union-attr]
        assert taken is not None
        assert first.try_lock("clv.schedule") is None
    assert first.try_lock("clv.schedule") is not None


def test_an_expired_lease_can_be_taken_over(store_factory) -> None:
    first, second = store_factory(), store_factory()
    clock = [1000.0]
    first.clock = second.clock = lambda: clock[0]
    stale = first.try_lock("job", ttl_seconds=30)
    assert stale is not None
    clock[0] += 29
    assert second.try_lock("job", ttl_seconds=30) is None
    clock[0] += 1
    fresh = second.try_lock("job", ttl_seconds=30)
    assert fresh is not None
    assert stale.renew(30) is False  # the lease was lost
    stale.release()  # must not release the new holder's lease
    assert first.try_lock("job") is None
    fresh.release()


def test_put_documents_json_stores_pre_encoded_texts(store: Store) -> None:
    assert store.put_documents_json("ns", "acme", ["a", "b"], ['{"x":1}', "[1,2.5]"]) == 2
    assert store.get_documents("ns", "acme") == {"a": {"x": 1}, "b": [1, 2.5]}
    # Upsert by default; the texts may come from a generator.
    texts = (t for t in ['"text"', "null"])
    assert store.put_documents_json("ns", "acme", ["b", "c"], texts) == 2
    assert store.get_documents("ns", "acme") == {"a": {"x": 1}, "b": "text", "c": None}
    # The same documents through either method read back equal.
    doc = {"customerId": 'c\u00e9"1', "score": 0.1 + 0.2, "basis": [3, 1_700_000_000_000_000]}
    store.put_documents("p", "acme", {"k": doc})
    store.put_documents_json("j", "acme", ["k"], [json.dumps(doc, ensure_ascii=False)])
    assert store.get_document("j", "acme", "k") == store.get_document("p", "acme", "k") == doc


def test_put_documents_json_replace_keeps_only_the_new_keys(store: Store) -> None:
    store.put_documents("ns", "acme", {f"k{i}": i for i in range(1200)})
    store.put_documents("ns", "globex", {"k1": 9})
    store.put_documents("other", "acme", {"k1": 7})
    keys = [f"k{i}" for i in range(0, 1200, 2)] + ["new"]
    assert store.put_documents_json("ns", "acme", keys, ["1"] * len(keys), replace=True) == 601
    assert store.get_documents("ns", "acme") == dict.fromkeys(keys, 1)
    # Same key set again: rewritten in place, nothing else touched.
    assert store.put_documents_json("ns", "acme", keys, ["2"] * len(keys), replace=True) == 601
    assert store.get_documents("ns", "acme") == dict.fromkeys(keys, 2)
    assert store.put_documents_json("ns", "acme", [], [], replace=True) == 0
    assert store.get_documents("ns", "acme") == {}
    assert store.get_documents("ns", "globex") == {"k1": 9}
    assert store.get_documents("other", "acme") == {"k1": 7}


def test_put_documents_replace_with_the_same_keys_rewrites_them(store: Store) -> None:
    store.put_documents("ns", "acme", {"a": 1, "b": 2})
    assert store.put_documents("ns", "acme", {"b": 3, "a": 4}, replace=True) == 2
    assert store.get_documents("ns", "acme") == {"a": 4, "b": 3}
    assert store.put_documents("ns", "acme", {}, replace=True) == 0
    assert store.get_documents("ns", "acme") == {}


@pytest.mark.parametrize("replace", [True, False])
@pytest.mark.parametrize(
    ("keys", "texts", "message"),
    [
        (["a", "b", "c"], ["1", "{bad", "3"], "1 of 3 texts for 'ns' are not valid JSON|not valid"),
        (["a", "b"], ["1"], "2 keys but a different number of JSON texts"),
        (["a"], ["1", "2"], "1 keys but a different number of JSON texts"),
        (["a", "a"], ["1", "2"], "1 document keys are repeated"),
        (["a", ""], ["1", "2"], "document key '' is invalid"),
        (["a", 3], ["1", "2"], "document key 3 is invalid"),
    ],
)
def test_put_documents_json_failure_leaves_the_previous_ones(
    store: Store, replace: bool, keys: list, texts: list[str], message: str
) -> None:
    store.put_documents("ns", "acme", {"a": 0, "z": 26})
    with pytest.raises(InvalidInputError, match=message):
        store.put_documents_json("ns", "acme", keys, texts, replace=replace)
    assert store.get_documents("ns", "acme") == {"a": 0, "z": 26}
