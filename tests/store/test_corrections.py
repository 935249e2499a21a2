"""Correcting, replacing and deleting recorded interactions: summaries recomputed exactly, on
both stores, single and bulk paths agreeing."""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from nextbest.store import (
    InteractionIn,
    InteractionNotFoundError,
    InvalidInputError,
    Store,
    TenantNotFoundError,
    UnknownOfferError,
    summaries,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def ev(key: str, outcome: str = "click", hours: float = 0, **kw) -> InteractionIn:
    kw.setdefault("customer_id", "c1")
    kw.setdefault("offer_id", "o1")
    return InteractionIn(outcome=outcome, idempotency_key=key, occurred_at=at(hours), **kw)


def all_summaries(store: Store, tenant: str) -> dict:
    """Every customer's summaries at the three levels (customer, offer, day)."""
    result = {}
    for customer in store.customer_summary_columns(tenant).customer_ids:
        result[customer] = (
            store.get_customer_summary(tenant, customer),
            store.get_offer_summaries(tenant, customer),
            store.get_daily_summaries(tenant, customer),
            store.get_contact_counts(tenant, customer),
            store.get_offer_outcomes(tenant, customer),
        )
    return result


def folded(store: Store, tenant: str) -> dict:
    """The summaries a fold of the tenant's stored interactions (recording order) gives: what
    the stored summaries must always equal."""
    events = [
        (
            i.customer_id,
            i.offer_id,
            i.outcome,
            i.classification,
            i.kind,
            i.value,
            i.occurred_at.timestamp(),
        )
        for i in store.iter_interactions(tenant)
    ]
    rows = summaries.aggregate(tenant, events)
    out = {
        table: sorted(tuple(row[1:]) for row in table_rows) for table, table_rows in rows.items()
    }
    # the contact counts and offer outcomes, folded here independently of the store's code
    contacts: dict[tuple, list[int]] = {}
    outcomes: dict[tuple, list[Any]] = {}
    for i in store.iter_interactions(tenant):
        at = i.occurred_at.timestamp()
        key = (i.customer_id, i.occurred_at.date().isoformat(), i.offer_id or "", i.channel or "")
        c = contacts.setdefault(key, [0] * 6)
        flags = (True, i.kind == "impression", i.kind != "impression",
                 i.outcome == "conversion", i.classification == "positive",
                 i.classification == "negative")  # fmt: skip
        for n, flag in enumerate(flags):
            c[n] += int(flag)
        if i.offer_id is not None:
            o = outcomes.setdefault((i.customer_id, i.offer_id, i.outcome),
                                    [i.kind, i.classification, at, 0])  # fmt: skip
            o[2], o[3] = max(o[2], at), o[3] + 1
    out["customer_contact_counts"] = sorted((*k, *v) for k, v in contacts.items())
    out["customer_offer_outcomes"] = sorted((*k, *v) for k, v in outcomes.items())
    return out


def stored(store: Store, tenant: str) -> dict:
    """The stored summary rows of a tenant, in the shape of :func:`folded`."""
    columns = {table: summaries.summary_columns(table)[1:] for table in summaries.TABLES}
    columns["customer_contact_counts"] = (
        "customer_id", "day", "offer_id", "channel", "interactions", "impressions", "responses",
        "conversions", "positives", "negatives",
    )  # fmt: skip
    columns["customer_offer_outcomes"] = (
        "customer_id", "offer_id", "outcome", "kind", "classification", "last_at", "n",
    )  # fmt: skip
    with store._read() as cur:  # type: ignore[attr-defined]
        return {
            table: sorted(
                tuple(row)
                for row in cur.execute(
                    f"SELECT {', '.join(names)} FROM {table} WHERE tenant_id = ?", (tenant,)
                ).fetchall()
            )
            for table, names in columns.items()
        }


# -- deleting --------------------------------------------------------------------------------


def test_delete_recomputes_every_level(store: Store) -> None:
    store.record_interaction("acme", ev("a", "impression", 0))
    store.record_interaction("acme", ev("b", "conversion", 1, value=10.0))
    store.record_interaction("acme", ev("c", "dismiss", 30, offer_id="o2"))
    deleted = store.delete_interaction("acme", "c")
    assert (deleted.idempotency_key, deleted.outcome, deleted.offer_id) == ("c", "dismiss", "o2")
    assert store.get_interaction("acme", "c") is None
    summary = store.get_customer_summary("acme", "c1")
    assert summary is not None
    # The latest interaction went: last time and outcome come from what remains.
    assert (summary.interactions, summary.negative, summary.last_at, summary.last_outcome) == (
        2,
        0,
        at(1),
        "conversion",
    )
    assert set(store.get_offer_summaries("acme", "c1")) == {"o1"}  # o2's only row went
    assert [d.day for d in store.get_daily_summaries("acme", "c1")] == [date(2024, 3, 1)]
    first = store.delete_interaction("acme", "a")  # the earliest: first_at moves
    assert first.kind == "impression"
    summary = store.get_customer_summary("acme", "c1")
    assert summary is not None and (summary.first_at, summary.impressions) == (at(1), 0)
    assert stored(store, "acme") == folded(store, "acme")


def test_deleting_a_customers_last_interaction_removes_its_summaries(store: Store) -> None:
    store.record_interaction("acme", ev("only", "conversion", value=5.0))
    store.record_interaction("acme", ev("other", customer_id="c2"))
    store.delete_interaction("acme", "only")
    assert store.get_customer_summary("acme", "c1") is None
    assert store.get_offer_summaries("acme", "c1") == {}
    assert store.get_daily_summaries("acme", "c1") == []
    assert list(store.customer_summary_columns("acme").customer_ids) == ["c2"]
    # The key is free again: recording it is a new event.
    assert store.record_interaction("acme", ev("only", "click")).created


def test_delete_unknown_key_tenant_and_bad_key(store: Store) -> None:
    store.record_interaction("acme", ev("k"))
    with pytest.raises(InteractionNotFoundError, match="'nope'"):
        store.delete_interaction("acme", "nope")
    with pytest.raises(InteractionNotFoundError):
        store.delete_interaction("globex", "k")  # another tenant's key is not found
    with pytest.raises(TenantNotFoundError):
        store.delete_interaction("nobody", "k")
    with pytest.raises(InvalidInputError) as caught:
        store.delete_interaction("acme", "k\x00")
    assert caught.value.field == "idempotency key"
    assert store.get_interaction("acme", "k") is not None


# -- correcting ------------------------------------------------------------------------------


def test_correct_value_time_offer_and_outcome(store: Store) -> None:
    store.record_interaction("acme", ev("a", "impression", 0))
    original = store.record_interaction(
        "acme", ev("b", "conversion", 1, value=10.0, context={"order": 7})
    ).interaction
    correction = store.correct_interaction(
        "acme", "b", ev("b", "conversion", 50, value=12.5, offer_id="o2", context={"order": 7})
    )
    assert correction.changed and correction.before == original
    after = correction.after
    assert (after.value, after.occurred_at, after.offer_id) == (12.5, at(50), "o2")
    assert after.interaction_id > original.interaction_id  # recorded anew
    assert store.get_interaction("acme", "b") == after
    summary = store.get_customer_summary("acme", "c1")
    assert summary is not None
    assert (summary.interactions, summary.total_value, summary.last_at) == (2, 12.5, at(50))
    offers = store.get_offer_summaries("acme", "c1")
    assert (offers["o1"].interactions, offers["o1"].total_value) == (1, 0.0)
    assert (offers["o2"].conversions, offers["o2"].total_value) == (1, 12.5)
    assert [d.day for d in store.get_daily_summaries("acme", "c1")] == [
        date(2024, 3, 1),
        date(2024, 3, 3),
    ]
    assert stored(store, "acme") == folded(store, "acme")


def test_correct_moves_an_interaction_to_another_customer(store: Store) -> None:
    store.record_interaction("acme", ev("a", "conversion", 0, value=3.0, customer_id="wrong"))
    store.record_interaction("acme", ev("b", "conversion", 1, value=4.0, customer_id="right"))
    store.correct_interaction("acme", "a", ev("a", "conversion", 0, value=3.0, customer_id="right"))
    assert store.get_customer_summary("acme", "wrong") is None
    right = store.get_customer_summary("acme", "right")
    assert right is not None and (right.interactions, right.total_value) == (2, 7.0)
    assert stored(store, "acme") == folded(store, "acme")


def test_correct_keeps_the_time_unless_given_and_changes_nothing_when_equal(
    store: Store,
) -> None:
    original = store.record_interaction("acme", ev("k", "conversion", 5, value=2.0)).interaction
    same = store.correct_interaction(
        "acme", "k", InteractionIn("c1", "conversion", "k", offer_id="o1", value=2.0)
    )
    assert not same.changed and same.after == same.before == original
    assert store.get_interaction("acme", "k") == original  # not recorded again
    changed = store.correct_interaction(
        "acme", "k", InteractionIn("c1", "conversion", "k", offer_id="o1", value=3.0)
    )
    assert changed.changed and changed.after.occurred_at == at(5)


def test_correct_errors_write_nothing(store: Store) -> None:
    store.put_offer("acme", {"id": "o1"})
    original = store.record_interaction("acme", ev("k", "conversion", value=2.0)).interaction
    before = stored(store, "acme")
    with pytest.raises(InteractionNotFoundError):
        store.correct_interaction("acme", "nope", ev("nope"))
    with pytest.raises(InvalidInputError, match="differs") as caught:
        store.correct_interaction("acme", "k", ev("other"))
    assert caught.value.field == "idempotency key"
    with pytest.raises(InvalidInputError) as caught:
        store.correct_interaction("acme", "k", ev("k", "conversion", value=7.5e304))
    assert caught.value.field == "value"
    with pytest.raises(InvalidInputError) as caught:
        store.correct_interaction("acme", "k", ev("k", hours=24 * 365 * 100))
    assert caught.value.field == "occurred at"
    with pytest.raises(UnknownOfferError):
        store.correct_interaction("acme", "k", ev("k", offer_id="ghost"), require_known_offer=True)
    assert store.get_interaction("acme", "k") == original
    assert stored(store, "acme") == before


def test_correct_by_recommendation_rank(store: Store) -> None:
    store.save_recommendation("acme", "r1", "c1", [(1, "o7", 0.9), (2, "o8", 0.4)])
    store.record_interaction("acme", ev("k", offer_id=None, recommendation_id="r1", rank=1))
    fixed = store.correct_interaction(
        "acme", "k", ev("k", offer_id=None, recommendation_id="r1", rank=2)
    )
    assert (fixed.after.offer_id, fixed.after.rank) == ("o8", 2)
    assert set(store.get_offer_summaries("acme", "c1")) == {"o8"}


# -- bulk replace ----------------------------------------------------------------------------


def test_bulk_replace_applies_a_corrected_export(store: Store) -> None:
    orders = [
        ev("order-1", "conversion", 1, value=10.0),
        ev("order-2", "conversion", 2, value=20.0, customer_id="c2"),
        ev("order-3", "conversion", 3, value=30.0),
    ]
    first = store.record_interactions_bulk("acme", orders)
    assert (first.inserted, first.duplicates, first.replaced) == (3, 0, 0)
    ids = {i.idempotency_key: i.interaction_id for i in store.iter_interactions("acme")}
    corrected = [
        orders[0],  # unchanged
        replace(orders[1], value=25.0),  # amount corrected
        replace(orders[2], customer_id="c2"),  # attributed to another customer
        ev("order-4", "conversion", 4, value=1.0),  # new
    ]
    # Without replace the corrected rows are duplicates: the first content stays.
    plain = store.record_interactions_bulk("acme", corrected)
    assert (plain.inserted, plain.duplicates, plain.replaced) == (1, 3, 0)
    assert store.get_interaction("acme", "order-2").value == 20.0  # type: ignore[union-attr]
    result = store.record_interactions_bulk("acme", corrected, replace=True)
    assert (result.inserted, result.duplicates, result.replaced) == (0, 2, 2)
    c1 = store.get_customer_summary("acme", "c1")
    c2 = store.get_customer_summary("acme", "c2")
    assert c1 is not None and (c1.interactions, c1.total_value) == (2, 11.0)
    assert c2 is not None and (c2.interactions, c2.total_value) == (2, 55.0)
    after = {i.idempotency_key: i.interaction_id for i in store.iter_interactions("acme")}
    # Unchanged rows are not touched (same-content re-imports are free).
    assert after["order-1"] == ids["order-1"]
    assert after["order-2"] != ids["order-2"]
    assert stored(store, "acme") == folded(store, "acme")
    again = store.record_interactions_bulk("acme", corrected, replace=True)
    assert (again.inserted, again.duplicates, again.replaced) == (0, 4, 0)
    assert {i.idempotency_key: i.interaction_id for i in store.iter_interactions("acme")} == after


def test_bulk_rows_of_one_key_apply_in_order(store: Store) -> None:
    rows = [
        ev("k", "conversion", 1, value=1.0),
        ev("k", "conversion", 1, value=2.0),
        ev("k", "conversion", 1, value=2.0),
    ]
    plain = store.record_interactions_bulk("acme", rows)
    assert (plain.inserted, plain.duplicates, plain.replaced) == (1, 2, 0)
    assert store.get_interaction("acme", "k").value == 1.0  # type: ignore[union-attr]
    store.create_tenant("initech")
    last_wins = store.record_interactions_bulk("initech", rows, replace=True)
    assert (last_wins.inserted, last_wins.duplicates, last_wins.replaced) == (1, 1, 1)
    assert store.get_interaction("initech", "k").value == 2.0  # type: ignore[union-attr]
    summary = store.get_customer_summary("initech", "c1")
    assert summary is not None and (summary.interactions, summary.total_value) == (1, 2.0)


def test_bulk_replace_across_chunks(store: Store) -> None:
    rows = [ev(f"k{i}", "conversion", i, value=float(i), customer_id=f"c{i % 3}") for i in range(9)]
    store.record_interactions_bulk("acme", rows, chunk_size=4)
    changed = [replace(r, value=r.value + 0.5) if i % 2 else r for i, r in enumerate(rows)]
    result = store.record_interactions_bulk("acme", changed, chunk_size=4, replace=True)
    assert (result.inserted, result.duplicates, result.replaced, result.chunks) == (0, 5, 4, 3)
    assert stored(store, "acme") == folded(store, "acme")


# -- single, bulk and corrected paths agree (all three summary levels, exactly) ---------------


def _history(seed: int, count: int = 300) -> list[InteractionIn]:
    rng = random.Random(seed)
    outcomes = ["impression", "click", "conversion", "dismiss", "defer", "refund"]
    events = []
    for i in range(count):
        outcome = rng.choice(outcomes)
        value = 0.0
        # Values on a 1/4 grid sum exactly in any order: a bulk chunk adds its own sum of a
        # key's new values to the stored total, which is exact only for such values.
        if outcome == "conversion":
            value = rng.randrange(1, 4_000) / 4
        elif outcome == "refund":
            value = -rng.randrange(1, 2_000) / 4
        events.append(
            InteractionIn(
                customer_id=f"c{rng.randrange(12)}",
                outcome=outcome,
                idempotency_key=f"evt-{i}",
                offer_id=rng.choice(["o1", "o2", "o3", None]),
                value=value,
                occurred_at=T0 - timedelta(minutes=rng.randrange(10**5) * 7 + i % 7),
            )
        )
    return events


def _corrected(event: InteractionIn, rng: random.Random) -> InteractionIn:
    return replace(
        event,
        customer_id=rng.choice([event.customer_id, f"c{rng.randrange(12)}"]),
        outcome="conversion",
        value=rng.randrange(1, 4_000) / 4,
        offer_id=rng.choice(["o1", "o4", None]),
        occurred_at=(event.occurred_at or T0) - timedelta(minutes=rng.randrange(3000)),
    )


def test_single_bulk_and_corrections_agree_exactly(store: Store) -> None:
    """One history built three ways has the same summaries at every level: recorded one by
    one as finally corrected, in bulk, and recorded as first sent then corrected one by one
    (correct, delete) and by a bulk replace (with unchanged rows around the changed ones).
    Corrected interactions are recorded anew, so the direct builds record them last, in that
    order (which decides the last outcome of equal times)."""
    rng = random.Random(11)
    history = _history(seed=5)
    by_key = {e.idempotency_key: e for e in history}
    picked = rng.sample(history, 90)
    corrections = [_corrected(e, rng) for e in picked[:30]]
    replacements = [_corrected(e, rng) for e in picked[30:60]]
    deletions = [e.idempotency_key for e in picked[60:]]
    changed = {e.idempotency_key for e in corrections + replacements}
    final = [
        e
        for e in history
        if e.idempotency_key not in changed and e.idempotency_key not in deletions
    ]
    final += corrections + replacements
    for name in ("single", "bulk", "corrected"):
        store.create_tenant(name)

    for event in final:
        store.record_interaction("single", event)
    store.record_interactions_bulk("bulk", final)
    # Some keys recorded before: the chunks mixing duplicates and new rows take SQLite's SQL
    # fold instead of the numpy one.
    store.record_interactions_bulk("corrected", history[:100:3])
    store.record_interactions_bulk("corrected", history, chunk_size=70)
    for event in corrections:
        assert store.correct_interaction("corrected", event.idempotency_key, event).changed
    for key in deletions:
        store.delete_interaction("corrected", key)
    export = [by_key[e.idempotency_key] for e in rng.sample(final[:-60], 40)] + replacements
    result = store.record_interactions_bulk("corrected", export, chunk_size=25, replace=True)
    assert result.replaced == len(replacements) and result.inserted == 0

    expected = all_summaries(store, "single")
    assert len(expected) == 12
    assert all_summaries(store, "bulk") == expected
    assert all_summaries(store, "corrected") == expected
    assert stored(store, "corrected") == folded(store, "corrected")


def test_corrections_never_leave_rounding_residues(store: Store) -> None:
    """0.1 + 0.2 - 0.2 is not 0.1 in floats: a correction refolds, it does not subtract."""
    store.record_interaction("acme", ev("a", "conversion", 0, value=0.1))
    store.record_interaction("acme", ev("b", "conversion", 1, value=0.2))
    store.delete_interaction("acme", "b")
    summary = store.get_customer_summary("acme", "c1")
    assert summary is not None and summary.total_value == 0.1


# -- concurrency -----------------------------------------------------------------------------


def test_concurrent_corrections_and_new_outcomes_keep_summaries_exact(store_factory) -> None:
    """Writers of one customer at once (new outcomes, corrections, deletions, a bulk
    replace): the summaries always equal a fold of the interactions that remain."""
    setup = store_factory()
    setup.create_tenant("acme")
    base = [ev(f"b{i}", "conversion", -i, value=float(i)) for i in range(60)]
    setup.record_interactions_bulk("acme", base)
    shared = store_factory()
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run(work) -> None:  # type: ignore[no-untyped-def]
        barrier.wait()
        try:
            work()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    def record() -> None:
        for i in range(40):
            shared.record_interaction("acme", ev(f"n{i}", "click", -i / 7))

    def correct() -> None:
        for i in range(0, 30):
            shared.correct_interaction("acme", f"b{i}", replace(base[i], value=i + 0.25))

    def delete() -> None:
        for i in range(30, 45):
            shared.delete_interaction("acme", f"b{i}")

    def bulk() -> None:
        rows = [replace(e, value=e.value + 0.5) for e in base[45:]]
        shared.record_interactions_bulk("acme", rows, chunk_size=5, replace=True)

    threads = [threading.Thread(target=run, args=(w,)) for w in (record, correct, delete, bulk)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    summary = shared.get_customer_summary("acme", "c1")
    assert summary is not None and summary.interactions == 60 - 15 + 40
    assert stored(shared, "acme") == folded(shared, "acme")


def test_summaries_of_a_recorded_history(store: Store) -> None:
    # The reference fold above is itself right: it matches the summaries of plain records.
    for event in _history(seed=2, count=80):
        store.record_interaction("acme", event)
    assert stored(store, "acme") == folded(store, "acme")
    assert asdict(store.get_customer_summary("acme", "c0"))["customer_id"] == "c0"  # type: ignore[arg-type]
