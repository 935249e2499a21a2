"""``Store.lift_aggregates``: the SQL aggregates equal the documented rule computed in Python
over random data (both dialects); the group is stored with the recommendation."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from nextbest.experiments import GroupTotals
from nextbest.store import InteractionIn, InvalidInputError, Store

T0 = datetime(2026, 6, 1, tzinfo=UTC)
SINCE, UNTIL = T0, T0 + timedelta(days=10)
OFFERS = ("a", "b", "c")
OUTCOMES = {  # outcome -> (positive response, value range)
    "click": (True, (0.0, 0.0)),
    "conversion": (True, (1.0, 90.0)),
    "dismiss": (False, (0.0, 0.0)),
    "impression": (False, (0.0, 0.0)),
    "refund": (False, (-30.0, -1.0)),
}


def test_the_group_is_stored_with_the_recommendation(store: Store) -> None:
    store.save_recommendation("acme", "r1", "c1", [(1, "a", 1.0)], flow_key="f", group="control")
    store.save_recommendation("acme", "r2", "c1", [(1, "a", 1.0)], flow_key="f")
    assert store.get_recommendation("acme", "r1").group == "control"  # type: ignore[union-attr]
    assert store.get_recommendation("acme", "r2").group is None  # type: ignore[union-attr]
    with pytest.raises(InvalidInputError) as caught:
        store.save_recommendation("acme", "r3", "c1", [], group="test")
    assert caught.value.field == "group"
    assert store.get_recommendation("acme", "r3") is None


def _seed(store: Store, tenant: str, rng: random.Random) -> dict[str, tuple[str, datetime]]:
    """Random recommendations and outcomes; the members (group, first time) the rule keeps."""
    groups: dict[str, set[str]] = defaultdict(set)
    first: dict[str, datetime] = {}
    n = 0
    for i in range(60):
        customer = f"{tenant}-c{i}"
        group = rng.choice(("control", "treatment", "treatment"))
        for _ in range(rng.randint(1, 3)):
            n += 1
            when = T0 + timedelta(days=rng.uniform(-3, 12))
            flow = rng.choice(("f", "f", "f", "g"))
            mixed = i % 17 == 0 and rng.random() < 0.7  # the salt changed for this one
            rec_group = ("control" if group == "treatment" else "treatment") if mixed else group
            offers = rng.sample(OFFERS, rng.randint(0, 2)) if rec_group == "treatment" else []
            store.save_recommendation(
                tenant,
                f"r{n}",
                customer,
                [(rank, offer, 1.0) for rank, offer in enumerate(offers, 1)],
                flow_key=flow,
                created_at=when,
                group=rec_group if i % 13 else None,  # some saved without a control group
            )
            if flow == "f" and SINCE <= when < UNTIL and i % 13:
                groups[customer].add(rec_group)
                first[customer] = min(first.get(customer, when), when)
        for j in range(rng.randint(0, 4)):
            outcome = rng.choice(list(OUTCOMES))
            low, high = OUTCOMES[outcome][1]
            store.record_interaction(
                tenant,
                InteractionIn(
                    customer_id=customer,
                    outcome=outcome,
                    idempotency_key=f"{customer}-{j}",
                    offer_id=rng.choice((*OFFERS, None)),
                    value=round(rng.uniform(low, high), 2),
                    occurred_at=T0 + timedelta(days=rng.uniform(-2, 12)),
                ),
            )
    return {c: (g.pop(), first[c]) for c, g in groups.items() if len(g) == 1} | {
        c: ("mixed", first[c]) for c, g in groups.items() if len(g) > 1
    }


def _expected(store: Store, tenant: str, members: dict[str, tuple[str, datetime]]):
    per_group: dict[str, list[tuple[int, float]]] = defaultdict(list)
    per_offer: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for customer, (group, first) in members.items():
        if group == "mixed":
            continue
        rows = [
            i
            for i in store.iter_interactions(tenant, customer_id=customer)
            if first <= i.occurred_at < UNTIL
        ]
        positive = [i.classification == "positive" and i.kind == "response" for i in rows]
        per_group[group].append((int(any(positive)), sum(i.value for i in rows)))
        by_offer: dict[str, list] = defaultdict(list)
        for row, good in zip(rows, positive, strict=True):
            if row.offer_id is not None:
                by_offer[row.offer_id].append((good, row.value))
        for offer, items in by_offer.items():
            per_offer[(group, offer)].append(
                (int(any(g for g, _ in items)), sum(v for _, v in items))
            )
    return per_group, per_offer


def _totals(customers: int, rows: list[tuple[int, float]]) -> GroupTotals:
    return GroupTotals(
        customers,
        sum(s for s, _ in rows),
        sum(v for _, v in rows),
        sum(v * v for _, v in rows),
    )


def _close(a: GroupTotals, b: GroupTotals) -> bool:
    same_counts = (a.customers, a.successes) == (b.customers, b.successes)
    sums = (a.value_sum, a.value_sq_sum)
    return same_counts and sums == pytest.approx((b.value_sum, b.value_sq_sum))


def test_aggregates_follow_the_rule(store: Store) -> None:
    rng = random.Random(5)
    members = _seed(store, "acme", rng)
    _seed(store, "globex", rng)  # another tenant's data with the same flow key
    aggregates = store.lift_aggregates("acme", "f", SINCE, UNTIL)
    per_group, per_offer = _expected(store, "acme", members)
    assert set(aggregates.groups) == set(per_group)
    sizes = {g: len(rows) for g, rows in per_group.items()}
    for group, rows in per_group.items():
        assert _close(aggregates.groups[group], _totals(sizes[group], rows)), group
    assert aggregates.mixed_customers == sum(g == "mixed" for g, _ in members.values())
    assert aggregates.mixed_customers > 0
    seen = {(g, o.offer_id) for o in aggregates.offers for g in o.totals}
    assert seen == set(per_offer)
    for offer in aggregates.offers:
        for group, total in offer.totals.items():
            assert _close(total, _totals(sizes[group], per_offer[(group, offer.offer_id)]))
        # control customers were shown nothing in this data
        assert offer.shown.get("control", 0) == 0
    assert sum(o.shown.get("treatment", 0) for o in aggregates.offers) > 0


def test_an_empty_window_and_an_unknown_tenant(store: Store) -> None:
    empty = store.lift_aggregates("acme", "f", SINCE, UNTIL)
    assert empty.groups == {} and empty.offers == [] and empty.mixed_customers == 0
    assert store.lift_aggregates("nobody", "f", SINCE, UNTIL).groups == {}


@pytest.mark.parametrize(
    ("since", "until", "field"),
    [
        (UNTIL, SINCE, "since"),
        (SINCE, SINCE, "since"),
        (datetime(1800, 1, 1, tzinfo=UTC), UNTIL, "since"),
        (SINCE, datetime(2300, 1, 1, tzinfo=UTC), "until"),
    ],
)
def test_bad_windows_name_the_field(
    store: Store, since: datetime, until: datetime, field: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        store.lift_aggregates("acme", "f", since, until)
    assert caught.value.field == field


def test_a_bad_flow_key_is_refused(store: Store) -> None:
    with pytest.raises(InvalidInputError):
        store.lift_aggregates("acme", "bad\nkey", SINCE, UNTIL)
