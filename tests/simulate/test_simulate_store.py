"""The store's whole-tenant summary reads equal the per-customer ones, and simulation rows
keep their inputs, progress and result; both stores."""

from __future__ import annotations

from datetime import date

import pytest

from nextbest.store import InvalidInputError, Store


def test_bulk_summaries_equal_per_customer_reads(store: Store) -> None:
    summaries = store.customer_summaries("acme")
    offers = store.tenant_offer_summaries("acme")
    start, end = date(2026, 6, 1), date(2026, 6, 30)
    daily = store.tenant_daily_summaries("acme", start, end)
    assert len(summaries) > 0 and daily
    for cid, summary in summaries.items():
        assert store.get_customer_summary("acme", cid) == summary
        assert store.get_offer_summaries("acme", cid) == offers.get(cid, {})
        assert store.get_daily_summaries("acme", cid, start, end) == daily.get(cid, [])
    assert store.customer_summaries("globex") == {}
    assert store.tenant_offer_summaries("globex") == {}
    assert store.customer_summaries("not a tenant!") == {}


def test_simulation_rows(store: Store) -> None:
    created = store.create_simulation("acme", "sim_a", {"flow": "retention", "sample": None})
    assert created.status == "queued" and created.inputs == {"flow": "retention", "sample": None}
    assert store.update_simulation("acme", "sim_a", status="running", done=0, total=5)
    assert store.update_simulation("acme", "sim_a", done=5)
    assert store.update_simulation("acme", "sim_a", status="done", result={"customers": 5})
    got = store.get_simulation("acme", "sim_a")
    assert got is not None
    assert (got.status, got.done, got.total, got.result) == ("done", 5, 5, {"customers": 5})
    assert got.finished_at is not None
    assert store.update_simulation("acme", "sim_a", status="failed", error="x") is False
    assert store.get_simulation("globex", "sim_a") is None  # another tenant's
    assert store.update_simulation("globex", "sim_a", done=1) is False
    store.create_simulation("acme", "sim_b", {})
    assert [r.simulation_id for r in store.list_simulations("acme").items] == ["sim_b", "sim_a"]
    assert store.list_simulations("acme").items[1].result is None  # left out of listings
    # a stale run is failed; a finished one is left alone
    assert store.fail_stale_simulations(store.clock() + 1, "interrupted") == 1  # type: ignore[attr-defined]
    failed = store.get_simulation("acme", "sim_b")
    assert failed is not None and (failed.status, failed.error) == ("failed", "interrupted")


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.create_simulation("acme", "", {}), "simulation id"),
        (lambda s: s.create_simulation("acme", "sim_x", {"x": float("nan")}), "inputs.x"),
        (lambda s: s.update_simulation("acme", "sim_x", status="paused"), "status"),
        (lambda s: s.update_simulation("acme", "sim_x", done=-1), "done"),
        (lambda s: s.list_simulations("acme", cursor="junk"), "cursor"),
    ],
)
def test_bad_arguments_name_the_field(store: Store, call: object, field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        call(store)  # type: ignore[operator]
    assert caught.value.field == field
