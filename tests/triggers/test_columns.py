"""The column form of a trigger condition never misses a customer the row-wise formula finds
true (it is a prefilter), and is exact where it can judge every row."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nextbest.expressions import DEFAULT_FUNCTIONS, EvaluationError, compile_expression
from nextbest.triggers.columns import column_filter

NAMES = ("c.churn", "c.score", "c.segment", "m.count")


def row_truth(source: str, row: dict[str, Any]) -> bool | None:
    expr = compile_expression(source, functions=DEFAULT_FUNCTIONS)
    try:
        return bool(expr.evaluate(row))
    except EvaluationError:
        return None


def test_a_typical_condition_is_exact() -> None:
    source = "c.churn >= 0.6 and c.score >= 70 or c.segment == 'at_risk' and not m.count > 3"
    columns = {
        "c.churn": np.array([0.7, 0.7, 0.1, 0.1, np.nan]),
        "c.score": np.array([80, 10, 90, 90, 90]),
        "c.segment": np.array(["high", "high", "at_risk", "at_risk", "low"]),
        "m.count": [1, 1, 1, 5, 1],
    }
    run = column_filter(source, frozenset(NAMES))
    assert run is not None
    truth = run(columns, 5)
    # NaN fails the formula row by row: unknown (kept, not sure); the other rows are exact.
    assert truth.may.tolist() == [True, False, True, False, True]
    assert truth.sure.tolist() == [True, False, True, False, False]


def test_gaps_failures_and_other_constructs_are_kept_or_left_to_the_rows() -> None:
    names = frozenset(NAMES)
    run = column_filter("c.churn >= 0.6", names)
    assert run is not None
    # None >= 0.6 fails row by row: unknown, kept for the row evaluation.
    truth = run({"c.churn": [0.7, None, 0.1]}, 3)
    assert truth.may.tolist() == [True, True, False] and truth.sure.tolist() == [True, False, False]
    run = column_filter("c.score / m.count > 1", names)
    assert run is not None  # a division by zero fails row by row: kept
    truth = run({"c.score": [5, 5, 0], "m.count": [1, 0, 1]}, 3)
    assert truth.may.tolist() == [True, True, False] and truth.sure.tolist() == [True, False, False]
    for source in ("max(c.score, 1) > 3", "c.score if c.churn else 1", "c.segment > 'a'"):
        run = column_filter(source, names)
        if run is not None:
            got = run({"c.score": [1], "c.churn": [1.0], "c.segment": ["x"]}, 1)
            assert (got.may.tolist(), got.sure.tolist()) == ([True], [False]), source
    assert column_filter("unknown.name > 1", names) is None


_numbers = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(-10, 10),
    st.just(float("nan")),
)
_leaf = st.one_of(
    st.sampled_from(["c.churn", "c.score", "m.count"]),
    st.integers(-3, 3).map(str),
    st.sampled_from(["0.5", "0", "1e308", "None", "True", "2**60", "c.segment", "'at_risk'"]),
)


def _formula(depth: int) -> st.SearchStrategy[str]:
    if depth == 0:
        return _leaf
    inner = _formula(depth - 1)
    return st.one_of(
        _leaf,
        st.tuples(inner, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), inner).map(" ".join),
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: f"({' '.join(t)})"),
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(
            lambda t: f"({' '.join(t)})"
        ),
        inner.map(lambda f: f"not {f}"),
        inner.map(lambda f: f"-({f})"),
        st.just("c.segment == 'at_risk'"),
        st.just("c.segment != 'high'"),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Rows whose value the columns cannot judge (text truth, text order, big integers) must be kept.
@example(source="(c.churn > 0.5 and c.segment)", rows=[(0.7, 1, 1, "at_risk")])
@example(source="(c.churn > 0.9 or c.segment)", rows=[(0.1, 1, 1, "high")])
@example(source="not (c.segment == 'x' and c.segment)", rows=[(0.1, 1, 1, None)])
@example(source="c.segment > 'a'", rows=[(0.1, 1, 1, "high")])
@example(source="c.score == 1152921504606846977", rows=[(0.1, 2**60 + 1, 1, "high")])
@given(
    source=_formula(3),
    rows=st.lists(
        st.tuples(_numbers, _numbers, _numbers, st.sampled_from(["at_risk", "high", None])),
        min_size=1,
        max_size=8,
    ),
)
def test_the_column_form_never_misses_a_row_the_formula_finds_true(
    source: str, rows: list[tuple[Any, Any, Any, Any]]
) -> None:
    try:
        compile_expression(source, functions=DEFAULT_FUNCTIONS)
    except ValueError:
        return  # not a valid formula (e.g. folds to a non-finite constant)
    run = column_filter(source, frozenset(NAMES))
    if run is None:
        return
    columns = {
        "c.churn": [r[0] for r in rows],
        "c.score": [r[1] for r in rows],
        "m.count": [r[2] for r in rows],
        "c.segment": [r[3] for r in rows],
    }
    truth = run(columns, len(rows))
    for i, row in enumerate(rows):
        values = dict(zip(("c.churn", "c.score", "m.count", "c.segment"), row, strict=True))
        found = row_truth(source, values)
        if found is True:
            assert truth.may[i], (source, values)
        if truth.sure[i]:  # known true: the row evaluation agrees
            assert found is True, (source, values)
        if not truth.may[i]:  # known false: the row evaluation finds it false, not unknown
            assert found is False, (source, values)


@pytest.mark.parametrize("values", [[2**60 + 1, 2], np.array([2**60 + 1, 2], dtype=np.int64)])
def test_integers_beyond_float_precision_are_left_to_the_rows(values: Any) -> None:
    run = column_filter("c.score == 1", frozenset(NAMES))
    assert run is not None
    assert run({"c.score": values}, 2).may.tolist() == [True, False]  # 2**60 + 1: unknown
    run = column_filter("c.score == 1152921504606846977", frozenset(NAMES))
    assert run is not None and run({"c.score": [1, 2]}, 2).may.tolist() == [True, True]


@pytest.mark.parametrize("rearm", [None, "customer.clv.churn_probability < 0.4", "max(1, 2) > 1"])
def test_the_engine_finds_the_same_transitions_with_and_without_the_column_form(
    api: Any, monkeypatch: pytest.MonkeyPatch, rearm: str | None
) -> None:
    import dataclasses

    from nextbest import ContextChange
    from nextbest.store import TriggerState
    from nextbest.triggers import engine_for

    document = {
        "key": "risk",
        "name": "Risk",
        "when": "customer.clv.churn_probability >= 0.6 and customer.clv_score >= 20",
        "cooldownDays": 10,
    }
    if rearm is not None:
        document["rearm"] = rearm
    assert api.put(document).status_code == 201
    engine = engine_for(api.host)
    assert engine is not None
    (trigger,) = engine.active("acme")
    assert trigger.when_columns is not None
    rng = np.random.default_rng(7)
    count = 3000
    ids = [f"c{i}" for i in range(count)]
    churn = rng.uniform(0, 1, count).tolist()
    churn[::97] = [None] * len(churn[::97])  # gaps: unknown to both forms
    change = ContextChange(
        ids,
        {
            "customer.clv.churn_probability": churn,
            "customer.clv_score": rng.integers(0, 100, count),
        },
        as_of=1_700_000_000.0,
        provider="test",
    )
    states = {
        cid: TriggerState(cid, bool(rng.integers(0, 2)), 1, 1_700_000_000.0 - 86_400 * d, None)
        for cid, d in zip(
            rng.choice(ids, 800, replace=False).tolist(), rng.integers(0, 20, 800), strict=True
        )
    }
    monkeypatch.setattr(api.store, "trigger_states", lambda *args, **kwargs: states)
    disarmed = frozenset(c for c, state in states.items() if not state.armed)
    monkeypatch.setattr(api.store, "disarmed_customers", lambda *args, **kwargs: disarmed)
    fast = engine.evaluate("acme", trigger, change, commit=False)
    plain = dataclasses.replace(trigger, when_columns=None, rearm_columns=None)
    slow = engine.evaluate("acme", plain, change, commit=False)
    assert fast.transitions == slow.transitions
    assert sum(fast.transitions.values()) > 100  # every kind of transition happens
    assert all(fast.transitions.values())
    assert [f.event_id for f in fast.firings] == [f.event_id for f in slow.firings]
