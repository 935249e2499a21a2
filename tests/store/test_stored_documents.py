"""Every document the store takes is checked by the store itself (``document_problem``: depth,
finite numbers, 64-bit integers, valid Unicode, JSON types) before any SQL runs: the error names
the field path and nothing is written, so whatever the store holds reads back (issue 9)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest

from nextbest.store import MAX_DOCUMENT_DEPTH, InvalidInputError, Store


def nested(levels: int, leaf: Any = 1) -> Any:
    """``levels`` objects inside each other: ``{"x": {"x": ... leaf}}``."""
    document = leaf
    for _ in range(levels):
        document = {"x": document}
    return document


#: (what is inside the document, the path the error names, words of the reason)
BAD_CONTENT: list[tuple[Any, str, str]] = [
    (nested(MAX_DOCUMENT_DEPTH), "x" + ".x" * (MAX_DOCUMENT_DEPTH - 2), "nested more than 32"),
    (nested(300), "x" + ".x" * (MAX_DOCUMENT_DEPTH - 2), "nested more than 32"),
    ({"name": "bad\ud800"}, "name", "lone surrogate"),
    ({"ok": {"bad\udc80": 1}}, "ok", "key that is not valid Unicode"),
    ({"n": [1, 2**64]}, "n[1]", "64-bit range"),
    ({"w": -math.inf}, "w", "not finite"),
    ({"w": math.nan}, "w", "not finite"),
    ({"tags": {"a", "b"}}, "tags", "holds a set"),
    ({"pair": (1, 2)}, "pair", "holds a tuple"),
    ({"by_id": {7: "x"}}, "by_id", "key that is not a string"),
]


@pytest.mark.parametrize(("content", "path", "reason"), BAD_CONTENT)
def test_every_document_entry_point_refuses_what_it_cannot_hold(
    store: Store, content: Any, path: str, reason: str
) -> None:
    store.put_offer("acme", {"id": "o1", "name": "kept"})
    store.save_flow("acme", "f", {"key": "f"})
    store.update_tenant_settings("acme", {"kept": True})
    store.put_documents("ns", "acme", {"d": "kept"})
    # Each entry point, the document it is given (with the bad content inside "a") and the
    # field its error names.
    writes: list[tuple[str, Callable[[], object]]] = [
        ("offer", lambda: store.put_offer("acme", {"id": "o1", "a": content})),
        ("offer", lambda: store.create_offer("acme", {"id": "o2", "a": content})),
        ("flow", lambda: store.save_flow("acme", "f", {"key": "f", "a": content})),
        ("settings", lambda: store.update_tenant_settings("acme", {"a": content})),
        ("settings", lambda: store.create_tenant("initech", settings={"a": content})),
        ("document", lambda: store.put_documents("ns", "acme", {"d": {"a": content}})),
        ("document", lambda: store.put_documents("ns", "acme", {"e": 1, "d": {"a": content}})),
    ]
    for field, write in writes:
        with pytest.raises(InvalidInputError, match=reason) as caught:
            write()
        assert caught.value.field == f"{field}.a.{path}", (field, caught.value.field)
    assert store.get_offer("acme", "o1") == {"id": "o1", "name": "kept"}
    assert store.get_offer("acme", "o2") is None
    assert store.get_flow("acme", "f").version == 1  # type: ignore[union-attr]
    assert store.get_tenant("acme").settings == {"kept": True}  # type: ignore[union-attr]
    assert store.get_tenant("initech") is None
    assert store.get_documents("ns", "acme") == {"d": "kept"}


def test_documents_at_the_depth_limit_are_stored_and_read_back(store: Store) -> None:
    deepest = nested(MAX_DOCUMENT_DEPTH - 1, "leaf")  # inside the offer: 32 levels in all
    offer = {"id": "deep", "a": deepest, "big": -(2**63), "text": "é\x00😀"}
    store.put_offer("acme", offer)
    store.save_flow("acme", "f", {"key": "f", "a": deepest})
    store.put_documents("ns", "acme", {"d": {"a": deepest}})
    store.put_documents_json("ns", "acme", ["j"], [json.dumps({"a": deepest})])
    assert store.get_offer("acme", "deep") == offer
    assert store.list_offers("acme").items == [offer]
    assert store.get_flow("acme", "f").document["a"] == deepest  # type: ignore[union-attr]
    assert store.get_documents("ns", "acme") == {"d": {"a": deepest}, "j": {"a": deepest}}


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ("[" * 33 + "]" * 33, "document" + "[0]" * 32, "nested more than 32"),
        ("[" * 100_000 + "]" * 100_000, "document", "nested more than 32"),
        ('{"a": "\\ud800"}', "document.a", "lone surrogate"),
        ('{"a": "\\uDC00 x"}', "document.a", "lone surrogate"),
        ('{"a": "raw \ud800"}', "document.a", "lone surrogate"),
        ('{"\\ud800": 1}', "document", "key that is not valid Unicode"),
        ('{"a": "nul \x00 raw"}', "document", "not valid JSON"),
        ('{"a": 2.5, "deep": ' + "[" * 40 + "]" * 40 + "}", "document.deep" + "[0]" * 31, "nested"),
        # A text the fast tests do not let through is checked in full, numbers included.
        ('{"n": 1' + "0" * 30 + ', "\\ud83d\\ude00": 1}', "document.n", "64-bit range"),
        (b"[1]", "document", "must be a str of JSON, not bytes"),
    ],
)
def test_pre_encoded_documents_are_checked_for_depth_and_unicode(
    store: Store, text: Any, field: str, reason: str
) -> None:
    store.put_documents("ns", "acme", {"d": "kept"})
    for replace in (False, True):
        with pytest.raises(InvalidInputError, match=reason) as caught:
            store.put_documents_json("ns", "acme", ["ok", "bad"], ["1", text], replace=replace)
        assert caught.value.field == field
        assert "document 'bad' in 'ns'" in str(caught.value)
    assert store.get_documents("ns", "acme") == {"d": "kept"}


def test_pre_encoded_documents_that_only_look_suspicious_are_stored(store: Store) -> None:
    texts = {
        "brackets in text": json.dumps({"a": "[" * 50 + "{" * 50}),
        "escaped pair": '"\\ud83d\\ude00"',
        "ascii escapes": json.dumps({"k": "é\u2028"}),
        "backslash u": json.dumps({"k": "\\ud800 is not an escape here"}),
        "non-ascii": json.dumps({"k": "東京"}, ensure_ascii=False),
    }
    assert store.put_documents_json("ns", "acme", list(texts), list(texts.values())) == 5
    assert store.get_documents("ns", "acme") == {k: json.loads(t) for k, t in texts.items()}
    assert store.get_document("ns", "acme", "escaped pair") == "😀"


def test_pre_encoded_text_count_mismatches_name_the_texts(store: Store) -> None:
    for texts, words in ((["1"], "only 1"), (["1", "2", "3"], "more than 2")):
        with pytest.raises(InvalidInputError, match=words) as caught:
            store.put_documents_json("ns", "acme", ["a", "b"], iter(texts))
        assert caught.value.field == "json_texts"
    # An endless generator is not read past the keys.
    endless = (str(i) for i in range(10**12))
    with pytest.raises(InvalidInputError, match="more than 2"):
        store.put_documents_json("ns", "acme", ["a", "b"], endless)
    assert next(endless) == "3"
    assert store.get_documents("ns", "acme") == {}


@pytest.mark.parametrize(
    ("bad", "reason"),
    [("[" * 40 + "]" * 40, "nested more than 32"), ('"\\ud800"', "lone surrogate"), (7, "str")],
)
def test_a_bad_text_deep_in_a_large_batch_is_found_and_named(
    store: Store, bad: Any, reason: str
) -> None:
    # Batches are cleared a chunk at a time; a bad text in a later chunk is still judged.
    keys = [f"k{i}" for i in range(9000)]
    texts: list[Any] = [json.dumps({"n": i, "b": [i]}) for i in range(9000)]
    texts[8500] = bad
    with pytest.raises(InvalidInputError, match=reason) as caught:
        store.put_documents_json("ns", "acme", keys, texts)
    assert "document 'k8500' in 'ns'" in str(caught.value)
    assert store.get_documents("ns", "acme") == {}
    texts[8500] = "{}"
    assert store.put_documents_json("ns", "acme", keys, texts) == 9000
