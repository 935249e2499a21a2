"""Forgetting a customer: every row about them goes in one transaction, nothing else does."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from nextbest.store import (
    ForgetResult,
    InteractionIn,
    InvalidInputError,
    Store,
    TenantNotFoundError,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
NAMESPACES = ("plugin.records", "plugin.scores")


def ev(key: str, customer: str, hours: float = 0, **kw) -> InteractionIn:
    kw.setdefault("offer_id", "o1")
    return InteractionIn(
        customer_id=customer,
        outcome=kw.pop("outcome", "conversion"),
        idempotency_key=key,
        occurred_at=T0 + timedelta(hours=hours),
        value=kw.pop("value", 5.0),
        **kw,
    )


def populate(store: Store, tenant: str) -> None:
    """Two customers with interactions on two days, recommendations and plugin documents."""
    for customer in ("ada", "bob"):
        store.record_interaction(tenant, ev(f"{customer}-1", customer, 0))
        store.record_interaction(tenant, ev(f"{customer}-2", customer, 30, offer_id="o2"))
        store.save_recommendation(tenant, f"{customer}-r1", customer, [(1, "o1", 0.5)])
        store.save_recommendation(
            tenant, f"{customer}-r2", customer, [(1, "o1", 0.5), (2, "o2", 0.1)]
        )
        for namespace in NAMESPACES:
            store.put_documents(namespace, tenant, {customer: {"score": 1}})
        store.put_customer_attributes(tenant, {customer: {"channel": "web"}})
    store.put_documents("plugin.records", tenant, {"tenant-wide": {"n": 2}})
    store.put_documents("plugin.other", tenant, {"ada": {"kept": True}})


def snapshot(store: Store, tenant: str, customer: str) -> tuple:
    return (
        [i.idempotency_key for i in store.iter_interactions(tenant, customer)],
        store.get_customer_summary(tenant, customer),
        store.get_offer_summaries(tenant, customer),
        store.get_daily_summaries(tenant, customer),
        store.get_recommendation(tenant, f"{customer}-r1"),
        store.get_recommendation(tenant, f"{customer}-r2"),
        {ns: store.get_document(ns, tenant, customer) for ns in (*NAMESPACES, "plugin.other")},
        store.get_customer_attributes(tenant, [customer]),
    )


def test_forget_deletes_everything_about_the_customer(store: Store) -> None:
    populate(store, "acme")
    populate(store, "globex")
    bob_before = snapshot(store, "acme", "bob")
    other_tenant = snapshot(store, "globex", "ada")

    result = store.forget_customer("acme", "ada", document_namespaces=NAMESPACES)
    assert result == ForgetResult(
        interactions=2,
        customer_summaries=1,
        offer_summaries=2,
        daily_summaries=2,
        recommendations=2,
        documents={"plugin.records": 1, "plugin.scores": 1},
        customer_attributes=1,
    )
    assert result.total == 12
    assert store.get_customer_attributes("acme", ["ada"]) == {}
    assert list(store.iter_interactions("acme", "ada")) == []
    assert store.get_customer_summary("acme", "ada") is None
    assert store.get_offer_summaries("acme", "ada") == {}
    assert store.get_daily_summaries("acme", "ada") == []
    assert store.get_recommendation("acme", "ada-r1") is None
    assert store.get_recommendation("acme", "ada-r2") is None
    with store._read() as cur:  # type: ignore[attr-defined]
        items = cur.execute(
            "SELECT count(*) FROM recommendation_items WHERE tenant_id = ? "
            "AND recommendation_id IN (?, ?)",
            ("acme", "ada-r1", "ada-r2"),
        ).fetchone()
    assert items[0] == 0
    assert store.get_document("plugin.records", "acme", "ada") is None
    assert store.get_document("plugin.scores", "acme", "ada") is None
    # Not asked for, keyed otherwise, another customer, another tenant: untouched.
    assert store.get_document("plugin.other", "acme", "ada") == {"kept": True}
    assert store.get_document("plugin.records", "acme", "tenant-wide") == {"n": 2}
    assert snapshot(store, "acme", "bob") == bob_before
    assert snapshot(store, "globex", "ada") == other_tenant
    assert list(store.customer_summary_columns("acme").customer_ids) == ["bob"]
    # Forgetting again (a retry) finds nothing; the customer may come back with new data.
    assert store.forget_customer("acme", "ada", NAMESPACES).total == 0
    assert store.record_interaction("acme", ev("ada-1", "ada")).created


def test_forget_is_one_transaction(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    populate(store, "acme")
    before = snapshot(store, "acme", "ada")
    original = store._transaction  # type: ignore[attr-defined]

    @contextmanager
    def delete_then_crash():  # type: ignore[no-untyped-def]
        with original() as cur:
            yield cur  # every row is deleted...
            raise RuntimeError("power cut")  # ...then the transaction fails before commit

    monkeypatch.setattr(store, "_transaction", delete_then_crash)
    with pytest.raises(RuntimeError, match="power cut"):
        store.forget_customer("acme", "ada", NAMESPACES)
    monkeypatch.undo()
    assert snapshot(store, "acme", "ada") == before
    assert store.forget_customer("acme", "ada", NAMESPACES).interactions == 2


def test_forget_checks_its_arguments(store: Store) -> None:
    with pytest.raises(TenantNotFoundError):
        store.forget_customer("nobody", "ada")
    with pytest.raises(InvalidInputError) as caught:
        store.forget_customer("acme", "")
    assert caught.value.field == "customer id"
    with pytest.raises(InvalidInputError) as caught:
        store.forget_customer("acme", "ada", ["bad\x00namespace"])
    assert caught.value.field == "document namespace"
    assert store.forget_customer("acme", "nobody-known") == ForgetResult(0, 0, 0, 0, 0, {})
