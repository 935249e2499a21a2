"""The numpy aggregation of new interactions equals the Python fold, row for row."""

from __future__ import annotations

import random

import pytest

from nextbest.store import BUILTIN_OUTCOME_TYPES, summaries


def _events(seed: int, n: int) -> list[summaries.Event]:
    rng = random.Random(seed)
    types = list(BUILTIN_OUTCOME_TYPES.values())
    events = []
    for _ in range(n):
        kind = rng.choice(types)
        events.append(
            (
                rng.choice(["c1", "c2", "b\u00e9", "a"]),
                rng.choice([None, "o1", "o2", "z"]),
                kind.name,
                kind.classification,
                kind.kind,
                rng.choice([0.0, 0.1, 0.2, 1e-9, 7.3, 1e12]),
                # Ties on time, several days, before and after 1970.
                rng.choice([-86_400.5, -0.5, 0.0, 86_399.9, 86_400.0, 1e9, 1e9 + 0.25]),
            )
        )
    return events


@pytest.mark.parametrize("seed", range(40))
def test_aggregate_columns_equals_the_fold(seed: int) -> None:
    events = _events(seed, random.Random(seed).choice([1, 2, 7, 60, 400]))
    columns = list(zip(*events, strict=True))
    assert summaries.aggregate_columns("t", *columns) == summaries.aggregate("t", events)


def test_aggregate_columns_without_offers_or_events() -> None:
    events = [(c, None, o, cl, k, v, t) for c, _, o, cl, k, v, t in _events(1, 50)]
    columns = list(zip(*events, strict=True))
    result = summaries.aggregate_columns("t", *columns)
    assert result == summaries.aggregate("t", events)
    assert result["customer_offer_summaries"] == []
    empty = summaries.aggregate_columns("t", [], [], [], [], [], [], [])
    assert empty == summaries.aggregate("t", [])
