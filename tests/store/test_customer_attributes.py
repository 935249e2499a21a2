"""Customer attributes: bulk upsert (replace or merge), chunked reads, validation, tenants."""

from __future__ import annotations

import pytest

from nextbest.store import InvalidInputError, Store, TenantNotFoundError
from nextbest.store.customer_attributes_sql import MAX_ATTRIBUTES, attributes_problem


def test_put_and_get_many_customers_in_chunks(store: Store) -> None:
    # more customers than one IN (...) chunk holds
    attributes = {f"c{i:04d}": {"channel": "web" if i % 2 else "shop", "n": i} for i in range(1234)}
    assert store.put_customer_attributes("acme", attributes) == 1234
    assert store.get_customer_attributes("acme") == attributes
    wanted = [f"c{i:04d}" for i in range(0, 1234, 2)] + ["unknown"]
    assert store.get_customer_attributes("acme", wanted) == {
        c: attributes[c] for c in wanted if c in attributes
    }
    assert store.get_customer_attributes("acme", []) == {}
    assert store.get_customer_attributes("globex") == {}


def test_put_replaces_and_merge_updates_names(store: Store) -> None:
    store.put_customer_attributes("acme", {"ada": {"channel": "web", "region": "north"}})
    store.put_customer_attributes("acme", {"ada": {"channel": "shop"}})
    assert store.get_customer_attributes("acme", ["ada"]) == {"ada": {"channel": "shop"}}
    store.put_customer_attributes(
        "acme", {"ada": {"region": "south", "channel": None}, "bob": {"vip": True}}, merge=True
    )
    assert store.get_customer_attributes("acme") == {
        "ada": {"region": "south"},
        "bob": {"vip": True},
    }
    # nulls are "not known": never stored
    store.put_customer_attributes("acme", {"ada": {"region": None, "value": 12.5}})
    assert store.get_customer_attributes("acme", ["ada"]) == {"ada": {"value": 12.5}}
    assert store.customer_attributes_updated_at("acme", "ada") is not None
    assert store.customer_attributes_updated_at("acme", "nobody") is None


def test_delete_and_other_tenants(store: Store) -> None:
    store.put_customer_attributes("acme", {"ada": {"a": 1}, "bob": {"a": 2}})
    store.put_customer_attributes("globex", {"ada": {"a": 3}})
    assert store.delete_customer_attributes("acme", ["ada", "nobody"]) == 1
    assert store.get_customer_attributes("acme") == {"bob": {"a": 2}}
    assert store.get_customer_attributes("globex") == {"ada": {"a": 3}}


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        (["web"], "must be an object"),
        ({"": 1}, "attribute name '' is invalid"),
        ({"a" * 65: 1}, "is invalid"),
        ({"tags": ["a"]}, "attribute 'tags' must be a string, number, boolean or null"),
        ({"nested": {"a": 1}}, "attribute 'nested' must be"),
        ({"x": float("nan")}, "finite"),
        ({f"k{i}": i for i in range(MAX_ATTRIBUTES + 1)}, "at most 100 attributes"),
        ({"text": "x" * 20000}, "at most 16384 bytes"),
    ],
)
def test_bad_attributes_are_refused_naming_the_rule(
    store: Store, attributes: object, reason: str
) -> None:
    problem = attributes_problem(attributes)
    assert problem is not None and reason in problem
    with pytest.raises(InvalidInputError, match="attributes of customer 'ada'") as raised:
        store.put_customer_attributes("acme", {"ada": attributes})  # type: ignore[dict-item]
    assert raised.value.field == "attributes"
    assert store.get_customer_attributes("acme") == {}


def test_bad_ids_and_unknown_tenant(store: Store) -> None:
    with pytest.raises(InvalidInputError, match="customer id"):
        store.put_customer_attributes("acme", {"": {"a": 1}})
    with pytest.raises(InvalidInputError, match="customer id"):
        store.get_customer_attributes("acme", ["bad\x00id"])
    with pytest.raises(TenantNotFoundError):
        store.put_customer_attributes("nobody", {"ada": {"a": 1}})
