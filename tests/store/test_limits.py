"""The limits every entry point applies (nextbest.store.limits)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from nextbest.store import (
    MAX_DOCUMENT_DEPTH,
    MAX_VALUE,
    TIME_MAX,
    TIME_MIN,
    document_problem,
    epoch_problem,
    id_problem,
    parse_time,
    time_problem,
    value_problem,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "must not be empty"),
        ("x" * 257, "at most 256"),
        ("a\x00b", "control characters (U+0000 at position 2)"),
        ("bad\ud800", "lone surrogate"),
        (42, "must be a string"),
    ],
)
def test_id_problems(value: object, reason: str) -> None:
    problem = id_problem(value)
    assert problem is not None and reason in problem
    assert id_problem("customer-1 é 東京") is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (True, "must be a number"),
        ("5", "must be a number"),
        (math.nan, "finite"),
        (math.inf, "finite"),
        (10**400, "finite"),
        (-0.01, ">= 0"),
        (7.5e304, "at most 1e+12"),
        (MAX_VALUE * 1.0000001, "at most"),
    ],
)
def test_value_problems(value: object, reason: str) -> None:
    problem = value_problem(value)
    assert problem is not None and reason in problem


def test_values_in_range() -> None:
    assert value_problem(0) is None and value_problem(MAX_VALUE) is None
    assert value_problem(19.99) is None
    assert value_problem(-15.5, allow_negative=True) is None
    assert value_problem(-MAX_VALUE * 2, allow_negative=True) is not None


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00+05:00",  # no UTC equivalent: OverflowError inside datetime
        "9999-12-31T23:59:59-05:00",
        "1684-12-31T23:59:59Z",
        "1899-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
        "2255-06-01T00:00:00Z",
    ],
)
def test_times_outside_the_window_are_refused_without_overflow(text: str) -> None:
    with pytest.raises(ValueError, match="must be between 1900-01-01T00:00:00Z and 2200"):
        parse_time(text)


def test_times_inside_the_window() -> None:
    assert parse_time("1900-01-01T00:00:00Z") == TIME_MIN
    assert parse_time("2024-03-01T10:00:00+02:00") == datetime(2024, 3, 1, 8, tzinfo=UTC)
    assert parse_time("2024-03-01T10:00:00").tzinfo is UTC  # naive means UTC
    assert parse_time("2199-12-31T23:59:59Z") < TIME_MAX
    with pytest.raises(ValueError, match="not an ISO-8601 time"):
        parse_time("yesterday")


def test_outcome_times_may_not_lie_in_the_future() -> None:
    assert time_problem(NOW + timedelta(minutes=4), outcome=True, now=NOW) is None
    problem = time_problem(NOW + timedelta(minutes=6), outcome=True, now=NOW)
    assert problem is not None and "5 minutes in the future" in problem
    assert time_problem(NOW + timedelta(days=400)) is None  # an asOf may lie ahead
    east = timezone(timedelta(hours=14))
    assert time_problem(datetime(1900, 1, 1, 10, tzinfo=east)) is not None  # 1899 in UTC


def test_epoch_times() -> None:
    assert epoch_problem(NOW.timestamp()) is None
    for bad in (math.nan, math.inf, -math.inf, TIME_MIN.timestamp() - 1, TIME_MAX.timestamp()):
        assert epoch_problem(bad) is not None
    now = NOW.timestamp()
    assert epoch_problem(now + 3600, outcome=True, now=now) is not None


def nested(depth: int) -> object:
    """``depth`` levels of containers, alternating objects and arrays."""
    document: object = 1
    for level in range(depth):
        document = {"a": document} if level % 2 else [document]
    return document


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"a": math.nan}, "not finite at a"),
        ({"a": [1, {"b": math.inf}]}, "not finite at a[1].b"),
        ({"a": "x\udc80"}, "lone surrogate) at a"),
        ({"k\ud800": 1}, "key that is not valid Unicode"),
        ({1: "x"}, "key that is not a string"),
        ({"a": {1, 2}}, "holds a set"),
        ({"big": 2**63}, "64-bit range at big"),
    ],
)
def test_document_problems(document: object, reason: str) -> None:
    problem = document_problem(document)
    assert problem is not None and reason in problem


def test_document_depth() -> None:
    assert document_problem(nested(MAX_DOCUMENT_DEPTH - 1)) is None
    problem = document_problem(nested(MAX_DOCUMENT_DEPTH + 1))
    assert problem is not None and f"more than {MAX_DOCUMENT_DEPTH} levels" in problem
    # far past the interpreter's recursion limit: checked without recursing
    assert document_problem(nested(100_000)) is not None
    assert (
        document_problem({"offer": {"id": "x", "tags": ["a", None, True, 1.5, -(2**63)]}}) is None
    )
