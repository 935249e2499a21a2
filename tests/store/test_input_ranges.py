"""Arguments the catalog, tenant and document methods take are checked before any SQL runs:
integers out of range (a flow version of 10^19 overflowed SQLite), bools as limits, cursors that
decode to junk, malformed tenant ids and namespaces (a NUL raised psycopg's DataError), lease
times. Each is an InvalidInputError naming the field, on both stores (issue 9)."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any

import pytest

from nextbest.store import MAX_FLOW_VERSION, InvalidInputError, Store

BAD_VERSIONS: list[Any] = [0, -1, MAX_FLOW_VERSION + 1, 10**19, 10**5000, True, "1", 1.0, None]
BAD_LIMITS: list[Any] = [0, 1001, -5, True, False, 2.0, "5", 10**19, 10**5000, None]
BAD_TENANT_IDS: list[Any] = ["a\x00b", "", "x" * 65, "acme\n", "has space", "-dash", "é", 7, None]
BAD_NAMESPACES: list[Any] = ["a\x00b", "", "x" * 257, "tab\there", "bad\ud800", 3]


def short(value: Any) -> str:
    """A test id for a value (the repr of an int of 5,000 digits cannot be made)."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"int{value.bit_length()}bits"
    return repr(value)[:24]


def cursor_of(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


BAD_CURSORS: list[Any] = [
    "%%%not-a-cursor",
    "é",
    12,
    b"W10",
    "A" * 5000,
    cursor_of(b"[" * 1500 + b"]" * 1500),  # nested past json's recursion limit
    cursor_of(b"[" + b"9" * 5000 + b"]"),  # an integer too long to parse
    cursor_of(b'["a\\u0000b"]'),  # a NUL: PostgreSQL text cannot hold it
    cursor_of(b'["\\ud800"]'),  # a lone surrogate: neither store can encode it
    cursor_of(b'[""]'),
    cursor_of(b"[1e999]"),
    cursor_of(b'["a", "b"]'),
    cursor_of(b'{"a": 1}'),
    cursor_of(b"\xff\xfe"),
]


def test_flow_versions_are_range_checked(store: Store) -> None:
    store.save_flow("acme", "f", {"key": "f"})
    calls = [
        (lambda bad: store.get_flow("acme", "f", bad), [v for v in BAD_VERSIONS if v is not None]),
        (lambda bad: store.publish_flow("acme", "f", bad), BAD_VERSIONS),
    ]
    for call, bad_versions in calls:
        for bad in bad_versions:  # (None means "the latest" when reading)
            with pytest.raises(InvalidInputError, match="version must be an integer") as caught:
                call(bad)
            assert caught.value.field == "version"
    assert store.get_flow("acme", "f", MAX_FLOW_VERSION) is None
    assert store.get_flow("acme", "f", 1).version == 1  # type: ignore[union-attr]
    assert store.get_flow("acme", "f", published_only=True) is None  # nothing was published


@pytest.mark.parametrize("bad", BAD_LIMITS, ids=short)
def test_page_limits_are_integers_from_1_to_1000(store: Store, bad: Any) -> None:
    for listing in (store.list_offers, store.list_flows):
        with pytest.raises(InvalidInputError, match="limit must be an integer from 1 to 1000"):
            listing("acme", limit=bad)
    assert store.list_offers("acme", limit=1000).items == []


@pytest.mark.parametrize("bad", BAD_CURSORS, ids=short)
def test_cursors_that_decode_to_junk_are_malformed(store: Store, bad: Any) -> None:
    for listing in (store.list_offers, store.list_flows):
        with pytest.raises(InvalidInputError, match="is malformed: pass a next_cursor") as caught:
            listing("acme", cursor=bad)
        assert caught.value.field == "cursor"
        assert len(str(caught.value)) < 200


def test_cursors_of_the_longest_ids_still_work(store: Store) -> None:
    ids = ["\U0001f600" * 256, "\u00e9" * 256, '"\\' * 128]
    for offer_id in ids:
        store.put_offer("acme", {"id": offer_id})
        store.save_flow("acme", offer_id, {"k": 1})
    for listing in (store.list_offers, store.list_flows):
        seen, cursor = [], None
        while True:
            page = listing("acme", cursor=cursor, limit=1)
            seen += [getattr(item, "key", None) or item["id"] for item in page.items]  # type: ignore[index]
            if (cursor := page.next_cursor) is None:
                break
        assert seen == sorted(ids)


@pytest.mark.parametrize("bad", BAD_TENANT_IDS, ids=repr)
def test_malformed_tenant_ids_are_refused_by_every_method(store: Store, bad: Any) -> None:
    calls: list[Callable[[], object]] = [
        lambda: store.put_offer(bad, {"id": "o1"}),
        lambda: store.create_offer(bad, {"id": "o1"}),
        lambda: store.get_offer(bad, "o1"),
        lambda: store.list_offers(bad),
        lambda: store.delete_offer(bad, "o1"),
        lambda: store.save_flow(bad, "f", {"key": "f"}),
        lambda: store.get_flow(bad, "f"),
        lambda: store.publish_flow(bad, "f", 1),
        lambda: store.list_flows(bad),
        lambda: store.put_documents("ns", bad, {"k": 1}),
        lambda: store.put_documents_json("ns", bad, ["k"], ["1"]),
        lambda: store.get_document("ns", bad, "k"),
        lambda: store.get_documents("ns", bad),
        lambda: store.get_documents("ns", bad, ["k"]),
        lambda: store.delete_documents("ns", bad),
        lambda: store.create_tenant(bad),
        lambda: store.update_tenant_settings(bad, {"a": 1}),
        lambda: store.set_default_flow(bad, "f"),
        lambda: store.create_api_key(bad, "admin"),
        lambda: store.list_api_keys(bad),
        lambda: store.revoke_api_key(bad, "0123456789abcdef"),
    ]
    for call in calls:
        with pytest.raises(InvalidInputError, match=r"tenant id .* is invalid: use 1-64") as caught:
            call()
        assert caught.value.field == "tenant id"
    # Lookups of the tenant itself answer "no such tenant".
    assert store.get_tenant(bad) is None
    assert store.default_flow_key(bad) is None
    assert [t.tenant_id for t in store.list_tenants()] == ["acme", "globex"]


@pytest.mark.parametrize("bad", BAD_NAMESPACES, ids=repr)
def test_namespaces_are_checked_by_reads_and_writes(store: Store, bad: Any) -> None:
    calls: list[Callable[[], object]] = [
        lambda: store.put_documents(bad, "acme", {"k": 1}),
        lambda: store.put_documents_json(bad, "acme", ["k"], ["1"]),
        lambda: store.get_document(bad, "acme", "k"),
        lambda: store.get_documents(bad, "acme"),
        lambda: store.get_documents(bad, "acme", ["k"]),
        lambda: store.delete_documents(bad, "acme"),
        lambda: store.delete_documents(bad, "acme", ["k"]),
    ]
    for call in calls:
        with pytest.raises(InvalidInputError) as caught:
            call()
        assert caught.value.field == "namespace"


def test_document_keys_are_checked_in_every_form(store: Store) -> None:
    store.put_documents("ns", "acme", {"a": 1, "b": 2})
    bad_keys: list[Callable[[], object]] = [
        lambda: store.get_documents("ns", "acme", "ab"),  # one string, not a list of keys
        lambda: store.delete_documents("ns", "acme", "ab"),
        lambda: store.get_documents("ns", "acme", ["a", "x\ud800"]),
        lambda: store.delete_documents("ns", "acme", ["a", "x\ud800"]),
        lambda: store.put_documents_json("ns", "acme", ["c", "x\udfff"], ["1", "2"]),
        lambda: store.put_documents_json("ns", "acme", "cd", ["1", "2"]),
        lambda: store.put_documents("ns", "acme", {"x\ud800": 1}),
    ]
    for call in bad_keys:
        with pytest.raises(InvalidInputError) as caught:
            call()
        assert caught.value.field == "document key"
    with pytest.raises(InvalidInputError, match="documents must be a mapping"):
        store.put_documents("ns", "acme", [("c", 3)])  # type: ignore[arg-type]
    assert store.get_documents("ns", "acme") == {"a": 1, "b": 2}


@pytest.mark.parametrize("bad", [-1, -0.5, math.nan, math.inf, True, "5", 10**400, None], ids=short)
def test_lease_times_are_finite_and_not_negative(store: Store, bad: Any) -> None:
    with pytest.raises(InvalidInputError, match="ttl_seconds must be a finite number") as caught:
        store.try_lock("job", bad)
    assert caught.value.field == "ttl_seconds"
    lease = store.try_lock("job", 60)
    assert lease is not None
    with pytest.raises(InvalidInputError, match="ttl_seconds"):
        lease.renew(bad)
    assert lease.renew(0) is True
    lease.release()


def test_other_tenant_arguments_are_checked(store: Store) -> None:
    with pytest.raises(InvalidInputError) as caught:
        store.create_tenant("initech", name="Ini\x00tech")
    assert caught.value.field == "name"
    with pytest.raises(InvalidInputError) as caught:
        store.create_tenant("initech", settings=["not", "an", "object"])  # type: ignore[arg-type]
    assert caught.value.field == "settings"
    with pytest.raises(InvalidInputError) as caught:
        store.update_tenant_settings("acme", "a=1")  # type: ignore[arg-type]
    assert caught.value.field == "settings"
    with pytest.raises(InvalidInputError) as caught:
        store.set_default_flow("acme", "bad\x00key")
    assert caught.value.field == "flow key"
    assert store.get_tenant("initech") is None
    assert store.get_tenant("acme").settings == {}  # type: ignore[union-attr]
    # Keys not shaped like ours match nothing, whatever they hold.
    for plaintext in ["nbk_" + "\x00" * 16 + "_s", "nbk_0123456789abcdeg_s", "nbk_\ud800" * 3, ""]:
        assert store.authenticate_api_key(plaintext) is None


def test_values_a_database_cannot_take_are_invalid_input_not_driver_errors(store: Store) -> None:
    """The last line behind the checks: what a driver or database refuses (a NUL in text on
    PostgreSQL, an integer beyond 64 bits in SQLite, a lone surrogate on both) surfaces as
    InvalidInputError, whichever store method (or plugin SQL) sent it."""
    dialect = store.url.split(":", 1)[0]
    refused = {"sqlite": [10**19, "x\ud800"], "postgresql": ["a\x00b", "x\ud800"]}[dialect]
    for value in refused:
        with (
            pytest.raises(InvalidInputError, match="cannot store a value"),
            store._transaction() as cur,  # type: ignore[attr-defined]
        ):
            cur.execute("SELECT ?", (value,))
        with store._read() as cur:  # type: ignore[attr-defined]  # the connection still works
            assert cur.execute("SELECT 1").fetchone()[0] == 1
