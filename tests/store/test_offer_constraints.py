"""Offer budgets and stock consumed by positive outcomes: capped, idempotent, per UTC day, and
exact under 8 concurrent responders (each on its own store handle, as separate processes)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime

from nextbest.store import InteractionIn, Store

StoreFactory = Callable[[], Store]
RESPONDERS = 8
EACH = 12


def _offer(store: Store, offer_id: str, **fields: object) -> None:
    store.put_offer("acme", {"id": offer_id, **fields})


def _buy(store: Store, offer_id: str, key: str, value: float, outcome: str = "conversion") -> None:
    store.record_interaction(
        "acme",
        InteractionIn(
            customer_id=f"c-{key}", outcome=outcome, idempotency_key=key, offer_id=offer_id,
            value=value,
        ),
    )  # fmt: skip


def _today() -> date:
    return datetime.now(UTC).date()


def test_positive_outcomes_consume_up_to_the_caps(store: Store) -> None:
    _offer(store, "gift", budget={"daily": 25.0, "lifetime": 40.0}, stock=3)
    _offer(store, "free")  # no constraints: nothing is kept
    _buy(store, "gift", "a", 10.0)
    _buy(store, "gift", "a", 10.0)  # a retry of the same key consumes nothing
    _buy(store, "gift", "b", 0.0, outcome="impression")  # not positive: nothing
    _buy(store, "gift", "c", 0.0, outcome="dismiss")
    _buy(store, "free", "d", 99.0)
    used = store.offer_consumption("acme", _today())
    assert set(used) == {"gift"}
    assert (used["gift"].day_value, used["gift"].total_value, used["gift"].units) == (10, 10, 1)
    _buy(store, "gift", "e", 10.0)
    _buy(store, "gift", "f", 10.0)  # the daily budget takes 5 of it, the lifetime budget 10
    _buy(store, "gift", "g", 10.0)  # stock already used up; lifetime reaches 40
    used = store.offer_consumption("acme", _today())["gift"]
    assert (used.day_value, used.total_value, used.units) == (25.0, 40.0, 3)
    # another day starts at zero; another tenant sees nothing
    other_day = store.offer_consumption("acme", date(2000, 1, 1))["gift"]
    assert (other_day.day_value, other_day.total_value) == (0.0, 40.0)
    assert store.offer_consumption("globex", _today()) == {}


def test_concurrent_responders_never_overspend(store_factory: StoreFactory) -> None:
    setup = store_factory()
    setup.create_tenant("acme")
    # 8 x 12 outcomes of value 1.5: 144 in all against a lifetime budget of 100, a daily
    # budget of 60 and a stock of 50
    _offer(setup, "gift", budget={"daily": 60.0, "lifetime": 100.0}, stock=50)
    _offer(setup, "open", budget={"lifetime": 1000.0})
    errors: list[BaseException] = []
    start = threading.Barrier(RESPONDERS)

    def respond(worker: int) -> None:
        store = store_factory()
        try:
            start.wait()
            for i in range(EACH):
                _buy(store, "gift", f"g-{worker}-{i}", 1.5)
                _buy(store, "open", f"o-{worker}-{i}", 1.5)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=respond, args=(w,)) for w in range(RESPONDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    used = setup.offer_consumption("acme", _today())
    # each budget is capped on its own: never past it, never short of it
    assert used["gift"].total_value == 100.0
    assert used["gift"].day_value == 60.0
    assert used["gift"].units == 50
    # below every cap, every outcome is counted exactly once
    assert used["open"].total_value == RESPONDERS * EACH * 1.5
    assert used["open"].units == RESPONDERS * EACH


def _used(store: Store, offer_id: str) -> tuple[float, float, int]:
    seen = store.offer_consumption("acme", _today())[offer_id]
    return seen.day_value, seen.total_value, seen.units


def _fix(store: Store, key: str, offer_id: str, value: float, outcome: str) -> None:
    store.correct_interaction(
        "acme",
        key,
        InteractionIn(
            customer_id=f"c-{key}", outcome=outcome, idempotency_key=key, offer_id=offer_id,
            value=value,
        ),
    )  # fmt: skip


def test_corrections_and_deletions_give_back_exactly_what_was_consumed(store: Store) -> None:
    _offer(store, "gift", budget={"daily": 25.0, "lifetime": 30.0}, stock=3)
    for key in ("a", "b", "c"):
        _buy(store, "gift", key, 10.0)
    _buy(store, "gift", "d", 10.0)  # budgets and stock used up: it consumes nothing
    assert _used(store, "gift") == (25.0, 30.0, 3)
    store.delete_interaction("acme", "d")  # nothing to give back
    assert _used(store, "gift") == (25.0, 30.0, 3)
    # c consumed 5 of the daily budget (capped), 10 of the lifetime one and a unit
    store.delete_interaction("acme", "c")
    assert _used(store, "gift") == (20.0, 20.0, 2)
    # corrected to a negative outcome: a's consumption comes back
    _fix(store, "a", "gift", 0.0, "dismiss")
    assert _used(store, "gift") == (10.0, 10.0, 1)
    # corrected to another value: the old share back, the new one consumed
    _fix(store, "b", "gift", 4.0, "conversion")
    assert _used(store, "gift") == (4.0, 4.0, 1)
    # a retried correction changes nothing; deleting twice gives back once
    _fix(store, "b", "gift", 4.0, "conversion")
    store.delete_interaction("acme", "b")
    assert _used(store, "gift") == (0.0, 0.0, 0)


def test_forgetting_a_customer_keeps_the_consumption(store: Store) -> None:
    _offer(store, "gift", budget={"lifetime": 100.0}, stock=10)
    _buy(store, "gift", "a", 10.0)
    store.forget_customer("acme", "c-a")
    # what was given out stays given out: erasure is not a retraction
    assert _used(store, "gift") == (0.0, 10.0, 1)


def test_bulk_imports_consume_nothing(store: Store) -> None:
    _offer(store, "gift", budget={"daily": 5.0, "lifetime": 5.0}, stock=1)
    rows = [
        InteractionIn(
            customer_id=f"c{i}", outcome="conversion", idempotency_key=f"k{i}", offer_id="gift",
            value=3.0, occurred_at=datetime(2026, 1, 2, tzinfo=UTC),
        )
        for i in range(3)
    ]  # fmt: skip
    assert store.record_interactions_bulk("acme", rows).inserted == 3
    assert store.offer_consumption("acme", _today()) == {}
    _buy(store, "gift", "live", 3.0)  # a live response still consumes
    assert _used(store, "gift") == (3.0, 3.0, 1)


def test_concurrent_deletions_give_back_exactly(store_factory: StoreFactory) -> None:
    setup = store_factory()
    setup.create_tenant("acme")
    _offer(setup, "open", budget={"lifetime": 10_000.0, "daily": 10_000.0}, stock=10_000)
    errors: list[BaseException] = []
    start = threading.Barrier(RESPONDERS)

    def respond(worker: int) -> None:
        store = store_factory()
        try:
            start.wait()
            for i in range(EACH):
                _buy(store, "open", f"o-{worker}-{i}", 1.5)
            for i in range(0, EACH, 2):  # every other one is taken back
                store.delete_interaction("acme", f"o-{worker}-{i}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=respond, args=(w,)) for w in range(RESPONDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    left = RESPONDERS * EACH // 2
    assert _used(setup, "open") == (left * 1.5, left * 1.5, left)
