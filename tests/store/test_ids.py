"""Id rules shared by both stores: length and control characters (PostgreSQL text cannot hold
NUL, so every store refuses it alike), bulk rows validated one by one, and NUL inside JSON
documents kept exactly."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from nextbest.store import (
    MAX_ID_LENGTH,
    BulkRejection,
    InteractionIn,
    InvalidInputError,
    Store,
    UnknownOutcomeError,
    id_problem,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
BAD_IDS = ["a\x00b", "tab\there", "line\nbreak", "del\x7f", "c1\x85", "x" * (MAX_ID_LENGTH + 1)]


def ev(key: str, **kw: Any) -> InteractionIn:
    kw.setdefault("customer_id", "c1")
    kw.setdefault("offer_id", "o1")
    kw.setdefault("outcome", "conversion")
    return InteractionIn(idempotency_key=key, occurred_at=T0, value=2.0, **kw)


def test_id_problem_rule() -> None:
    assert id_problem("c-1 é 名") is None
    assert id_problem("x" * MAX_ID_LENGTH) is None
    assert id_problem("") == "must not be empty"
    assert id_problem(7) == "must be a string, not int"
    assert "at most 256" in (id_problem("x" * 257) or "")
    assert id_problem("a\x00b") == "must not contain control characters (U+0000 at position 2)"
    assert "U+0085" in (id_problem("\x85") or "")


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_writes_with_bad_ids_are_refused_naming_the_field(store: Store, bad: str) -> None:
    writes: list[tuple[str, Callable[[], object]]] = [
        ("customer id", lambda: store.record_interaction("acme", ev("k", customer_id=bad))),
        ("offer id", lambda: store.record_interaction("acme", ev("k", offer_id=bad))),
        ("channel", lambda: store.record_interaction("acme", ev("k", channel=bad))),
        ("idempotency key", lambda: store.record_interaction("acme", ev(bad))),
        ('offer["id"]', lambda: store.put_offer("acme", {"id": bad})),
        ("flow key", lambda: store.save_flow("acme", bad, {"key": "f"})),
        ("recommendation id", lambda: store.save_recommendation("acme", bad, "c1", [])),
        ("customer id", lambda: store.save_recommendation("acme", "r1", bad, [])),
        ("channel", lambda: store.save_recommendation("acme", "r1", "c1", [], channel=bad)),
        ("placement", lambda: store.save_recommendation("acme", "r1", "c1", [], placement=bad)),
        ("document key", lambda: store.put_documents("ns", "acme", {bad: 1})),
        ("document key", lambda: store.put_documents_json("ns", "acme", ["ok", bad], ["1", "2"])),
        ("namespace", lambda: store.put_documents(bad, "acme", {"k": 1})),
    ]
    for field, write in writes:
        with pytest.raises(InvalidInputError, match=f"^{field.replace('[', '.')}") as caught:
            write()
        assert caught.value.field == field
    assert list(store.iter_interactions("acme")) == []
    assert store.list_offers("acme").items == []
    assert store.get_documents("ns", "acme") == {}


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_reads_with_bad_ids_are_refused_not_crashed(store: Store, bad: str) -> None:
    reads: list[tuple[str, Callable[[], object]]] = [
        ("offer id", lambda: store.get_offer("acme", bad)),
        ("offer id", lambda: store.delete_offer("acme", bad)),
        ("flow key", lambda: store.get_flow("acme", bad)),
        ("flow key", lambda: store.publish_flow("acme", bad, 1)),
        ("recommendation id", lambda: store.get_recommendation("acme", bad)),
        ("recommendation id", lambda: store.resolve_recommendation("acme", bad, 1)),
        ("idempotency key", lambda: store.get_interaction("acme", bad)),
        ("customer id", lambda: list(store.iter_interactions("acme", bad))),
        ("customer id", lambda: store.get_customer_summary("acme", bad)),
        ("customer id", lambda: store.get_offer_summaries("acme", bad)),
        ("customer id", lambda: store.get_daily_summaries("acme", bad)),
        ("document key", lambda: store.get_document("ns", "acme", bad)),
        ("document key", lambda: store.get_documents("ns", "acme", ["ok", bad])),
        ("document key", lambda: store.delete_documents("ns", "acme", [bad])),
        ("key id", lambda: store.revoke_api_key("acme", bad)),
    ]
    for field, read in reads:
        with pytest.raises(InvalidInputError) as caught:
            read()
        assert caught.value.field == field
    # No tenant or outcome type can have such a name: they are simply not found.
    assert store.get_tenant(bad) is None
    with pytest.raises(UnknownOutcomeError):
        store.resolve_outcome_type("acme", bad)
    with pytest.raises(UnknownOutcomeError):
        store.record_interaction("acme", ev("k", outcome=bad))


def test_bulk_stores_the_valid_rows_around_bad_ones(store: Store) -> None:
    rows = [
        ev("g1"),
        ev("b1", customer_id="x" * 300),
        ev("g2", customer_id="c2"),
        ev("b2", customer_id="a\x00b"),
        ev("b3", outcome="teleport"),
        ev("g3", customer_id="c3"),
        ev("b4", offer_id=None, recommendation_id="r", rank=1),
        ev("b5", channel="web\x00"),
    ]
    result = store.record_interactions_bulk("acme", rows, chunk_size=3)
    assert (result.inserted, result.duplicates) == (3, 0)
    assert [r.index for r in result.rejected] == [1, 3, 4, 6, 7]
    reasons = dict((r.index, r.reason) for r in result.rejected)
    assert reasons[1].startswith("customer id must be at most 256 characters")
    assert "U+0000" in reasons[3] and "unknown outcome 'teleport'" in reasons[4]
    assert "offer_id" in reasons[6] and reasons[7].startswith("channel")
    assert result.rejected[0] == BulkRejection(1, reasons[1])
    assert sorted(i.idempotency_key for i in store.iter_interactions("acme")) == ["g1", "g2", "g3"]
    for customer in ("c1", "c2", "c3"):
        summary = store.get_customer_summary("acme", customer)
        assert summary is not None and (summary.conversions, summary.total_value) == (1, 2.0)


def test_nul_inside_json_documents_round_trips(store: Store) -> None:
    """A NUL inside a JSON string value is stored as the escape ``\\u0000`` (TEXT columns on
    both stores), so it comes back exactly; only ids refuse control characters."""
    odd = {"text": "a\x00b", "k\x00": ["\x00", "\\u0000"], "tab": "\t"}
    recorded = store.record_interaction("acme", ev("k1", context=odd)).interaction
    assert recorded.context == odd
    assert store.get_interaction("acme", "k1").context == odd  # type: ignore[union-attr]
    store.put_offer("acme", {"id": "o1", "name": "a\x00b"})
    assert store.get_offer("acme", "o1") == {"id": "o1", "name": "a\x00b"}
    store.save_flow("acme", "f", {"key": "f", "doc": odd})
    assert store.get_flow("acme", "f").document == {"key": "f", "doc": odd}  # type: ignore[union-attr]
    store.put_documents("ns", "acme", {"d": odd})
    store.put_documents_json("ns", "acme", ["j"], ['{"v": "x\\u0000y"}'])
    assert store.get_documents("ns", "acme") == {"d": odd, "j": {"v": "x\x00y"}}
    assert store.update_tenant_settings("acme", {"note": "a\x00"}) == {"note": "a\x00"}
    assert store.get_tenant("acme").settings == {"note": "a\x00"}  # type: ignore[union-attr]
