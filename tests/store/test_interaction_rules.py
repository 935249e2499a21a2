"""What the store takes as an interaction, on every write path (single, bulk, correction):
values in the business range (refunds negative), times in the window, valid context text, known
offers when asked, and never a non-finite summary."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from nextbest.store import (
    MAX_DATA_BYTES,
    MAX_VALUE,
    InteractionIn,
    InvalidInputError,
    Store,
    UnknownOfferError,
    UnknownOutcomeError,
    UnknownRecommendationError,
    summaries,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
DEEP: object = 1
for _ in range(40):
    DEEP = [DEEP]


def ev(key: str = "k", outcome: str = "conversion", **kw) -> InteractionIn:
    kw.setdefault("customer_id", "c1")
    kw.setdefault("offer_id", "o1")
    kw.setdefault("occurred_at", T0)
    return InteractionIn(outcome=outcome, idempotency_key=key, **kw)


def record_single(store: Store, item: InteractionIn) -> None:
    store.record_interaction("acme", item)


def record_bulk(store: Store, item: InteractionIn) -> None:
    result = store.record_interactions_bulk("acme", [ev("fine"), item])
    assert result.inserted == 1 and [r.index for r in result.rejected] == [1]
    raise InvalidInputError(result.rejected[0].reason)  # the reason, for the checks below


def record_replacing(store: Store, item: InteractionIn) -> None:
    store.record_interaction("acme", ev(item.idempotency_key, value=1.0))
    result = store.record_interactions_bulk("acme", [item], replace=True)
    assert (result.inserted, result.replaced, len(result.rejected)) == (0, 0, 1)
    raise InvalidInputError(result.rejected[0].reason)


def record_correction(store: Store, item: InteractionIn) -> None:
    store.record_interaction("acme", ev(item.idempotency_key, value=1.0))
    store.correct_interaction("acme", item.idempotency_key, item)


PATHS: dict[str, Callable[[Store, InteractionIn], None]] = {
    "single": record_single,
    "bulk": record_bulk,
    "bulk replace": record_replacing,
    "correction": record_correction,
}
BAD = [
    ({"value": 7.5e304}, "value", "at most 1e+12"),
    ({"value": MAX_VALUE * 1.5}, "value", "at most 1e+12"),
    ({"value": -5.0}, "value", ">= 0"),
    ({"value": float("nan")}, "value", "finite"),
    ({"value": 5.0, "outcome": "refund"}, "value", "<= 0 for a refund"),
    ({"value": -2e12, "outcome": "refund"}, "value", "at most 1e+12"),
    ({"occurred_at": datetime.now(UTC) + timedelta(hours=1)}, "occurred at", "in the future"),
    ({"occurred_at": datetime(1899, 12, 31, tzinfo=UTC)}, "occurred at", "between"),
    (
        {"occurred_at": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))},
        "occurred at",
        "between",
    ),
    (
        {"occurred_at": datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5)))},
        "occurred at",
        "between",
    ),
    ({"context": {"note": "half \ud800 a pair"}}, "context", "not valid Unicode"),
    ({"context": {"\udfff": 1}}, "context", "not valid Unicode"),
    ({"context": {"deep": DEEP}}, "context", "levels"),
    ({"context": {"n": float("inf")}}, "context", "finite"),
    ({"customer_id": "bad\udc00id"}, "customer id", "Unicode"),
    ({"rank": 0, "recommendation_id": "r", "offer_id": "o1"}, "rank", "from 1 to"),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("changes", "field", "reason"), BAD)
def test_every_write_path_applies_the_limits(
    store: Store, path: str, changes: dict, field: str, reason: str
) -> None:
    item = replace(ev("bad"), **changes)
    with pytest.raises(InvalidInputError, match=re.escape(reason)) as caught:
        PATHS[path](store, item)
    if not path.startswith("bulk"):
        assert caught.value.field == field
    # Nothing of the bad interaction is stored, the summaries hold only what was accepted.
    for interaction in store.iter_interactions("acme"):
        assert interaction.value in (0.0, 1.0)
        assert interaction.occurred_at == T0
    summary = store.get_customer_summary("acme", "c1")
    assert summary is None or summary.total_value <= 1.0


def test_values_at_the_limits_and_refunds(store: Store) -> None:
    store.record_interaction("acme", ev("big", value=MAX_VALUE))
    store.record_interaction("acme", ev("refund", "refund", value=-MAX_VALUE))
    store.record_interaction("acme", ev("small", value=12.5))
    store.record_interaction("acme", ev("partial", "refund", value=-2.5))
    store.record_interaction("acme", ev("zero", "refund", value=0.0))
    summary = store.get_customer_summary("acme", "c1")
    assert summary is not None
    # Refunds net total_value; they are not purchases (conversions) but negative responses.
    assert (summary.interactions, summary.conversions, summary.total_value) == (5, 2, 10.0)
    assert (summary.positive, summary.negative) == (2, 3)
    assert store.get_offer_summaries("acme", "c1")["o1"].total_value == 10.0
    bulk = store.record_interactions_bulk(
        "globex", [ev("a", value=30.0), ev("b", "refund", value=-40.0)]
    )
    assert bulk.inserted == 2 and bulk.rejected == ()
    net = store.get_customer_summary("globex", "c1")
    assert net is not None and net.total_value == -10.0  # refunds may exceed what is recorded


def test_times_at_the_window_edges(store: Store) -> None:
    store.record_interaction("acme", ev("old", occurred_at=datetime(1900, 1, 1, tzinfo=UTC)))
    soon = datetime.now(UTC) + timedelta(minutes=4)
    assert store.record_interaction("acme", ev("soon", occurred_at=soon)).created
    naive = datetime(2020, 5, 1, 8, 30)  # naive means UTC
    got = store.record_interaction("acme", ev("naive", occurred_at=naive)).interaction
    assert got.occurred_at == naive.replace(tzinfo=UTC)


def test_the_store_clock_decides_what_is_in_the_future(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "clock", lambda: T0.timestamp())
    with pytest.raises(InvalidInputError, match="in the future"):
        store.record_interaction("acme", ev(occurred_at=T0 + timedelta(minutes=6)))
    assert store.record_interaction("acme", ev(occurred_at=T0 + timedelta(minutes=5))).created


def test_context_round_trips_valid_text(store: Store) -> None:
    context = {"note": "NUL \x00 and emoji \U0001f600", "list": [1, 2.5, None, True]}
    got = store.record_interaction("acme", ev(context=context)).interaction
    assert got.context == context
    assert store.get_interaction("acme", "k").context == context  # type: ignore[union-attr]


def test_context_is_capped_in_the_store_like_in_the_api(store: Store) -> None:
    # Plugins and notebooks write through the store: the cap is the store's, not only the API's.
    at_cap = {"a": "x" * (MAX_DATA_BYTES - len('{"a":""}'))}
    assert store.record_interaction("acme", ev("fits", context=at_cap)).created
    with pytest.raises(InvalidInputError, match=f"at most {MAX_DATA_BYTES} bytes") as caught:
        store.record_interaction("acme", ev("big", context={"a": "é" * MAX_DATA_BYTES}))
    assert caught.value.field == "context"
    assert store.get_interaction("acme", "big") is None
    rows = [ev("ok"), ev("bulk-big", context={"a": "x" * MAX_DATA_BYTES})]
    result = store.record_interactions_bulk("acme", rows)
    assert result.inserted == 1 and [r.index for r in result.rejected] == [1]
    assert f"at most {MAX_DATA_BYTES} bytes" in result.rejected[0].reason
    assert store.get_interaction("acme", "bulk-big") is None


# -- known offers ------------------------------------------------------------------------------


def test_require_known_offer_is_checked_in_the_transaction(store: Store) -> None:
    store.put_offer("acme", {"id": "o1"})
    assert store.record_interaction("acme", ev("a"), require_known_offer=True).created
    with pytest.raises(UnknownOfferError, match="'ghost'"):
        store.record_interaction("acme", ev("b", offer_id="ghost"), require_known_offer=True)
    assert store.get_interaction("acme", "b") is None
    assert store.get_customer_summary("acme", "c1").interactions == 1  # type: ignore[union-attr]
    # Without the requirement (bulk import, offers managed elsewhere) any offer id is taken.
    assert store.record_interaction("acme", ev("c", offer_id="ghost")).created
    # An offer of another tenant is unknown here.
    with pytest.raises(UnknownOfferError):
        store.record_interaction("globex", ev("d"), require_known_offer=True)
    # No offer at all is not an unknown offer.
    assert store.record_interaction("acme", ev("e", offer_id=None), require_known_offer=True)


def test_known_offer_rule_spares_citations_and_retries(store: Store) -> None:
    store.put_offer("acme", {"id": "o1"})
    store.save_recommendation("acme", "r1", "c1", [(1, "gone", 0.5)])
    # An offer cited by recommendation and rank is taken as it was recommended.
    cited = store.record_interaction(
        "acme", ev("r", offer_id=None, recommendation_id="r1", rank=1), require_known_offer=True
    )
    assert cited.created and cited.interaction.offer_id == "gone"
    # A retry of a recorded outcome answers the original even if its offer was deleted since.
    store.record_interaction("acme", ev("x"), require_known_offer=True)
    store.delete_offer("acme", "o1")
    again = store.record_interaction("acme", ev("x"), require_known_offer=True)
    assert not again.created


# -- summaries are never non-finite ----------------------------------------------------------


def _legacy_total(store: Store, total: float) -> None:
    """A customer summary written before values were limited (as old databases hold)."""
    with store._transaction() as cur:  # type: ignore[attr-defined]
        cur.execute(
            "UPDATE customer_summaries SET total_value = ? WHERE tenant_id = ? AND customer_id = ?",
            (total, "acme", "c1"),
        )


@pytest.mark.parametrize("total", [1.7e308, float("inf")])
def test_a_write_onto_an_out_of_range_total_is_refused(store: Store, total: float) -> None:
    store.record_interaction("acme", ev("first", value=1.0))
    _legacy_total(store, total)
    with pytest.raises(InvalidInputError, match="non-finite") as caught:
        store.record_interaction("acme", ev("second", value=MAX_VALUE))
    assert caught.value.field == "value"
    with pytest.raises(InvalidInputError, match="non-finite"):
        store.record_interactions_bulk("acme", [ev("third", value=MAX_VALUE)])
    # Rolled back: neither interaction was kept.
    assert [i.idempotency_key for i in store.iter_interactions("acme")] == ["first"]
    # Another customer is not concerned.
    assert store.record_interaction("acme", ev("other", customer_id="c2", value=2.0)).created


def test_recomputing_legacy_values_beyond_the_float_range_is_refused(store: Store) -> None:
    store.record_interaction("acme", ev("a", value=1.0))
    store.record_interaction("acme", ev("b", value=1.0))
    store.record_interaction("acme", ev("c", value=1.0))
    with store._transaction() as cur:  # type: ignore[attr-defined]
        cur.execute("UPDATE interactions SET value = 1e308 WHERE idempotency_key IN ('a', 'b')")
    with pytest.raises(InvalidInputError, match="non-finite"):
        store.delete_interaction("acme", "c")
    assert store.get_interaction("acme", "c") is not None  # rolled back
    # Deleting one of the culprits brings the total back in range.
    store.delete_interaction("acme", "a")
    summary = store.get_customer_summary("acme", "c1")
    assert summary is not None and summary.total_value == 1e308 + 1.0


def test_folds_refuse_non_finite_sums() -> None:
    events = [("c1", "o1", "conversion", "positive", "response", 1e308, 0.0)] * 2
    with pytest.raises(InvalidInputError, match="customer 'c1'"):
        summaries.aggregate("t", events)
    with pytest.raises(InvalidInputError, match="customer 'c1'"):
        summaries.aggregate_columns("t", *zip(*events, strict=True))
    # A finer key can overflow while the customer's total does not (values of both signs).
    mixed = [
        ("c1", "o1", "conversion", "positive", "response", 1e308, 0.0),
        ("c1", "o2", "refund", "negative", "response", -1e308, 1.0),
        ("c1", "o1", "conversion", "positive", "response", 1e308, 2.0),
    ]
    with pytest.raises(InvalidInputError):
        summaries.aggregate("t", mixed)
    with pytest.raises(InvalidInputError):
        summaries.aggregate_columns("t", *zip(*mixed, strict=True))


# -- siblings: reads of impossible tenants, integers and recommendations ---------------------


def test_reads_of_a_tenant_id_no_tenant_can_have_find_nothing(store: Store) -> None:
    """A NUL in a tenant id reached PostgreSQL and failed there (DataError, a 500)."""
    tenant = "a\x00b"
    assert [t.name for t in store.list_outcome_types(tenant)][:2] == ["impression", "click"]
    with pytest.raises(UnknownOutcomeError):
        store.resolve_outcome_type(tenant, "upgrade")
    assert store.get_recommendation(tenant, "r") is None
    with pytest.raises(UnknownRecommendationError):
        store.resolve_recommendation(tenant, "r", 1)
    assert store.get_interaction(tenant, "k") is None
    assert list(store.iter_interactions(tenant)) == []
    assert store.get_customer_summary(tenant, "c") is None
    assert store.get_offer_summaries(tenant, "c") == {}
    assert store.get_daily_summaries(tenant, "c") == []
    assert len(store.customer_summary_columns(tenant)) == 0
    assert len(store.interaction_columns(tenant)) == 0
    store.record_interaction("acme", ev())
    assert len(store.interaction_columns("acme", outcomes=["conv\x00ersion"])) == 0
    assert len(store.interaction_columns("acme", outcomes=["conversion", "x\x00"])) == 1


@pytest.mark.parametrize("rank", [0, -1, 2**31, 2**70, True])
def test_ranks_are_checked_everywhere(store: Store, rank: int) -> None:
    store.save_recommendation("acme", "r1", "c1", [(1, "o1", 0.5)])
    with pytest.raises(InvalidInputError) as caught:
        store.resolve_recommendation("acme", "r1", rank)
    assert caught.value.field == "rank"
    with pytest.raises(InvalidInputError) as caught:
        store.record_interaction("acme", ev(offer_id=None, recommendation_id="r1", rank=rank))
    assert caught.value.field == "rank"
    bulk = store.record_interactions_bulk("acme", [ev(recommendation_id="r1", rank=rank)])
    assert bulk.inserted == 0 and "rank" in bulk.rejected[0].reason
    with pytest.raises(InvalidInputError) as caught:
        store.save_recommendation("acme", "r2", "c1", [(rank, "o1", 0.5)])
    assert caught.value.field == "rank"
    assert store.get_recommendation("acme", "r2") is None


def test_recommendations_are_checked(store: Store) -> None:
    with pytest.raises(InvalidInputError) as caught:
        store.save_recommendation("acme", "r", "c1", [(1, "o\x00", 0.5)])
    assert caught.value.field == "offer id"
    with pytest.raises(InvalidInputError) as caught:
        store.save_recommendation("acme", "r", "c1", [(1, "a", 0.5), (1, "b", 0.4)])
    assert caught.value.field == "rank"
    with pytest.raises(InvalidInputError) as caught:
        store.save_recommendation("acme", "r", "c1", [], flow_key="f", flow_version=2**40)
    assert caught.value.field == "flow version"
    with pytest.raises(InvalidInputError) as caught:
        store.save_recommendation(
            "acme", "r", "c1", [], created_at=datetime(2300, 1, 1, tzinfo=UTC)
        )
    assert caught.value.field == "created at"
    assert store.get_recommendation("acme", "r") is None
