"""The CLV plugin and a customer's data: its stored records are forgotten with the customer,
follow corrected interactions, and net refunds."""

from __future__ import annotations

import time

import numpy as np
import pytest
from clvkit import DAY, add_interactions, at
from nextbest_clv.backtest.runs import BACKTESTS_NAMESPACE
from nextbest_clv.errors import NoInteractionsError
from nextbest_clv.service import CUSTOMER_NAMESPACES, RECORDS_NAMESPACE, attach
from nextbest_clv.service.fits import FITS_NAMESPACE
from nextbest_clv.service.model_records import MODEL_RECORDS_NAMESPACE
from nextbest_clv.service.tenant_data import (
    customer_transactions,
    load_transactions,
    net_of_refunds,
)

from nextbest import Host
from nextbest.service import DecisionService
from nextbest.store import InteractionIn, Store

NOW = time.time()


def test_the_plugin_registers_its_per_customer_namespaces(store: Store) -> None:
    host = Host(store=store)
    assert set(CUSTOMER_NAMESPACES) == {RECORDS_NAMESPACE, MODEL_RECORDS_NAMESPACE}
    assert set(CUSTOMER_NAMESPACES) <= set(host.registry.customer_data)
    assert host.registry.owner("customer data namespace", RECORDS_NAMESPACE) == "clv"


def test_forgetting_a_customer_forgets_the_clv_records(store: Store) -> None:
    add_interactions(store, "acme", "kim", [NOW - 30 * DAY, NOW - 3 * DAY], [10.0, 20.0])
    add_interactions(store, "acme", "lee", [NOW - 5 * DAY], [5.0])
    add_interactions(store, "globex", "kim", [NOW - 5 * DAY], [5.0])
    host = Host(store=store)
    service = attach(host)
    assert service is not None
    for tenant, customer in (("acme", "kim"), ("acme", "lee"), ("globex", "kim")):
        service.get(tenant, customer)  # computed, stored and cached
    model_doc = {"model": "bgnbd"}  # as the probabilistic fields would be stored
    store.put_documents(MODEL_RECORDS_NAMESPACE, "acme", {"kim": model_doc, "lee": model_doc})
    assert store.get_document(RECORDS_NAMESPACE, "acme", "kim") is not None

    result = DecisionService(host, store).forget_customer("acme", "kim")
    assert result.interactions == 2
    assert result.documents == {RECORDS_NAMESPACE: 1, MODEL_RECORDS_NAMESPACE: 1}
    assert store.get_document(RECORDS_NAMESPACE, "acme", "kim") is None
    assert store.get_document(MODEL_RECORDS_NAMESPACE, "acme", "kim") is None
    # The cached record went too (customer_forgotten): no record without interactions.
    with pytest.raises(NoInteractionsError):
        service.get("acme", "kim")
    assert store.get_document(RECORDS_NAMESPACE, "acme", "lee") is not None
    assert store.get_document(MODEL_RECORDS_NAMESPACE, "acme", "lee") == model_doc
    assert service.get("globex", "kim")["rfmMonetary"] == 5.0


def test_forgetting_a_customer_drops_them_from_fits_and_backtests(store: Store) -> None:
    # Fits and back-tests list up to 100 customers they left out, by id.
    add_interactions(store, "acme", "kim", [NOW - 5 * DAY], [5.0])
    host = Host(store=store)
    excluded = [{"customerId": "kim", "reason": "r"}, {"customerId": "lee", "reason": "r"}]
    fit = {"model": "bgnbd", "version": 1, "excludedCustomers": 2, "excluded": excluded}
    store.put_documents(FITS_NAMESPACE, "acme", {"bgnbd/v1": fit, "bgnbd": fit})
    store.put_documents(
        BACKTESTS_NAMESPACE, "acme", {"b1": {"model": "bgnbd", "excluded": excluded}}
    )
    store.put_documents(FITS_NAMESPACE, "globex", {"bgnbd": fit})

    DecisionService(host, store).forget_customer("acme", "kim")
    lee = [{"customerId": "lee", "reason": "r"}]
    for doc in store.get_documents(FITS_NAMESPACE, "acme").values():
        assert doc["excluded"] == lee and doc["excludedCustomers"] == 2
    assert store.get_document(BACKTESTS_NAMESPACE, "acme", "b1")["excluded"] == lee  # type: ignore[index]
    assert store.get_document(FITS_NAMESPACE, "globex", "bgnbd") == fit  # another tenant's kim


def test_a_corrected_value_recomputes_the_record(store: Store) -> None:
    """A corrected value leaves the interaction count and last time as they were, which is
    all a stored record is checked against: the hook drops the stored record."""
    when = at(NOW - 3 * DAY)
    store.record_interaction(
        "acme", InteractionIn("kim", "conversion", "order-1", value=10.0, occurred_at=when)
    )
    host = Host(store=store)
    service = attach(host)
    assert service is not None
    assert service.get("acme", "kim")["rfmMonetary"] == 10.0
    decisions = DecisionService(host, store)
    decisions.correct_outcome(
        "acme", "order-1", InteractionIn("kim", "conversion", "order-1", value=50.0)
    )
    assert service.get("acme", "kim")["rfmMonetary"] == 50.0
    # Another process (a new service over the same store) does not serve the old record either.
    assert attach(Host(store=store)).get("acme", "kim")["rfmMonetary"] == 50.0  # type: ignore[union-attr]
    decisions.delete_outcome("acme", "order-1")
    with pytest.raises(NoInteractionsError):
        service.get("acme", "kim")


def test_rfm_monetary_nets_refunds(store: Store) -> None:
    add_interactions(store, "acme", "kim", [NOW - 20 * DAY], [100.0])
    add_interactions(store, "acme", "kim", [NOW - 10 * DAY], [-30.0], outcome="refund")
    record = attach(Host(store=store)).get("acme", "kim")  # type: ignore[union-attr]
    assert record["rfmMonetary"] == 70.0
    assert record["rfmFrequency"] == 2  # RFM frequency counts interactions, refunds included


def test_net_of_refunds_scales_each_customers_spend() -> None:
    ids = np.array(["a", "a", "b", "c"])
    values = np.array([10.0, 30.0, 20.0, 5.0])
    out = net_of_refunds(ids, values, np.array(["a", "b", "z"]), np.array([-8.0, -50.0, -1.0]))
    # a: (40 - 8) / 40 = 0.8; b refunded more than it bought: 0; c has no refund; z bought nothing
    assert out.tolist() == [8.0, 24.0, 0.0, 5.0]


def test_the_models_spend_nets_refunds_and_keeps_the_purchase_count(store: Store) -> None:
    base = 1_700_000_000.0
    add_interactions(store, "acme", "kim", [base, base + 10 * DAY], [40.0, 60.0])
    add_interactions(store, "acme", "kim", [base + 12 * DAY], [-25.0], outcome="refund")
    add_interactions(store, "acme", "kim", [base + 40 * DAY], [-5.0], outcome="refund")
    add_interactions(store, "acme", "lee", [base], [10.0])
    transactions = load_transactions(store, "acme", ("conversion",), end=base + 20 * DAY)
    kim = transactions.customer_ids == "kim"
    assert transactions.values[kim].tolist() == [
        30.0,
        45.0,
    ]  # net 75 of 100: the later refund waits
    assert transactions.values[~kim].tolist() == [10.0]
    one = customer_transactions(store, "acme", "kim", ("conversion", "refund"), base + 50 * DAY)
    assert one.values.tolist() == [28.0, 42.0] and len(one) == 2  # refunds never count
