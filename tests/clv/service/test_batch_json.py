"""The batch's pre-encoded record texts equal json.dumps of the record documents."""

from __future__ import annotations

import json

import numpy as np
import pytest
from nextbest_clv.core.rfm import score_batch
from nextbest_clv.service.records import BatchDocuments
from nextbest_clv.service.settings import ClvSettings

from nextbest.store import InvalidInputError

AS_OF = 1_751_328_000.0
IDS = ["c1", 'quote"back\\slash', "caf\u00e9 \u2603", "tab\tnew\nline", "pct%s%r", "c6"]


def _documents(rows: list[int], progress: object = None, poison: bool = False) -> BatchDocuments:
    n = len(IDS)
    last = AS_OF - np.array([0.5, 3, 40, 400, 7.25, 1]) * 86_400
    first = last - np.array([0, 100, 1000, 10, 3.3, 60]) * 86_400
    values = np.array([0.0, 1e-7, 360.0, 1e12, 0.1 + 0.2, 12.5])
    batch, _ = score_batch(last, first, np.arange(1, n + 1), values, AS_OF, ClvSettings())
    if poison:  # scoring refuses such inputs; the encoder must not rely on it
        batch.predicted_revenue[5] = float("nan")
    return BatchDocuments(
        IDS,
        batch,
        rows,
        last,
        values,
        "2025-07-01T00:00:00Z",
        "fp%d\u00e9",
        progress,
        4,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("rows", [list(range(len(IDS))), [1, 3, 4], [], [5]])
def test_json_texts_equal_json_dumps_of_the_documents(rows: list[int]) -> None:
    documents = _documents(rows)
    keys = documents.key_list()
    texts = list(documents.json_texts())
    assert keys == [IDS[i] for i in rows] == list(documents)
    expected = [
        json.dumps(documents[key], separators=(",", ":"), ensure_ascii=False) for key in keys
    ]
    assert texts == expected
    assert [json.loads(t) for t in texts] == [documents[key] for key in keys]


def test_json_texts_report_progress_as_consumed() -> None:
    calls: list[tuple[int, int]] = []
    texts = _documents(list(range(len(IDS))), lambda d, t: calls.append((d, t))).json_texts()
    assert len([next(texts) for _ in range(4)]) == 4
    assert calls == []
    assert len(list(texts)) == 2
    assert calls == [(4, 6), (6, 6)]


def test_json_texts_refuse_non_finite_numbers() -> None:
    documents = _documents(list(range(len(IDS))), poison=True)
    with pytest.raises(InvalidInputError, match="'c6' has a NaN or infinite number"):
        list(documents.json_texts())
