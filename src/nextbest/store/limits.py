"""What an id, a value, a time and a stored document may be: one definition that every entry
point applies (the HTTP API, the CLI, bulk import, the store itself and plugins).

Each ``*_problem`` function returns why a value is refused (a sentence to show after the field
name), or None when it is fine, so every caller wraps the reason in its own error: a 400 naming
the field, an ``InvalidInputError``, a rejected import row with its line number.

- **Ids** (customer, offer, channel, placement, idempotency key, recommendation id, flow key,
  document key): non-empty strings of at most :data:`MAX_ID_LENGTH` characters without control
  characters (U+0000-U+001F, U+007F-U+009F).
- **Values** (an outcome's monetary value): finite, with magnitude at most :data:`MAX_VALUE`
  (a business range: sums of many stay finite and exact to the cent); negative only where the
  caller allows it (refunds).
- **Times** (when an outcome happened, an ``asOf``): within [:data:`TIME_MIN`,
  :data:`TIME_MAX`); an outcome's time also at most :data:`MAX_FUTURE_SKEW` after now.
- **Integers** a store column keeps (flow versions, ranks): 1 to :data:`MAX_FLOW_VERSION`
  (32 bits).
- **Documents** (offers, flows, settings, request context and attributes, plugin documents):
  JSON values nested at most :data:`MAX_DOCUMENT_DEPTH` levels, with finite numbers and text
  that is valid Unicode (no lone surrogates, which neither store can encode).
"""

from __future__ import annotations

import json
import math
import re
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

#: The longest id a store takes.
MAX_ID_LENGTH = 256
#: Unicode category Cc: C0 controls, DEL and C1 controls. PostgreSQL text cannot hold NUL at
#: all; the others are refused on every store so ids mean the same everywhere.
CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f]")

#: The largest magnitude of one outcome's value (10^12: a trillion in any currency).
MAX_VALUE = 1e12

#: The earliest time accepted anywhere (inclusive).
TIME_MIN = datetime(1900, 1, 1, tzinfo=UTC)
#: The first time no longer accepted anywhere (exclusive).
TIME_MAX = datetime(2200, 1, 1, tzinfo=UTC)
#: How far in the future an outcome's time may lie (clock skew between systems).
MAX_FUTURE_SKEW = timedelta(minutes=5)
_EPOCH_MIN, _EPOCH_MAX = TIME_MIN.timestamp(), TIME_MAX.timestamp()

#: The largest flow version, rank and other counter a store column keeps (32-bit integers).
MAX_FLOW_VERSION = MAX_RANK = 2**31 - 1

#: How deeply a stored JSON document may nest (``{"a": {"b": 1}}`` is 2 levels).
MAX_DOCUMENT_DEPTH = 32
#: The largest encoded size of a caller's free-form data: a request's ``attributes``, an
#: outcome's ``context`` (compact UTF-8 JSON, in bytes).
MAX_DATA_BYTES = 16 * 1024

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_INT64 = 2**63


def id_problem(value: object) -> str | None:
    """Why ``value`` cannot be an id, or None when it can."""
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    if not value:
        return "must not be empty"
    if len(value) > MAX_ID_LENGTH:
        return f"must be at most {MAX_ID_LENGTH} characters long (it has {len(value)})"
    found = CONTROL_CHARACTER.search(value)
    if found is not None:
        return (
            f"must not contain control characters (U+{ord(found.group()):04X} at position "
            f"{found.start() + 1})"
        )
    if _LONE_SURROGATE.search(value):
        return "must be valid Unicode text (it holds a lone surrogate)"
    return None


def value_problem(value: object, *, allow_negative: bool = False) -> str | None:
    """Why ``value`` cannot be an outcome's value, or None when it can (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"must be a number, not {type(value).__name__}"
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        number = math.inf
    if not math.isfinite(number):
        return "must be a finite number"
    if number < 0 and not allow_negative:
        return "must be >= 0"
    if abs(number) > MAX_VALUE:
        return f"must be at most {MAX_VALUE:.0e} in magnitude"
    return None


def time_problem(
    value: datetime, *, outcome: bool = False, now: datetime | None = None
) -> str | None:
    """Why ``value`` (naive means UTC) is outside the accepted window, or None.

    ``outcome``: the time an outcome happened, which may lie at most :data:`MAX_FUTURE_SKEW`
    ahead of ``now`` (default: the current time).
    """
    when = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    try:
        when = when.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+05:00 has no UTC equivalent
        return f"must be between {_iso(TIME_MIN)} and {_iso(TIME_MAX)} (UTC)"
    if not TIME_MIN <= when < TIME_MAX:
        return f"must be between {_iso(TIME_MIN)} and {_iso(TIME_MAX)} (UTC)"
    if outcome:
        limit = (now or datetime.now(UTC)) + MAX_FUTURE_SKEW
        if when > limit:
            minutes = int(MAX_FUTURE_SKEW.total_seconds() // 60)
            return (
                f"is more than {minutes} minutes in the future; send the time the outcome happened"
            )
    return None


def epoch_problem(value: float, *, outcome: bool = False, now: float | None = None) -> str | None:
    """:func:`time_problem` for epoch seconds (any float, NaN and infinities included)."""
    if not math.isfinite(value):
        return "must be a finite time"
    if not _EPOCH_MIN <= value < _EPOCH_MAX:
        return f"must be between {_iso(TIME_MIN)} and {_iso(TIME_MAX)} (UTC)"
    if outcome:
        limit = (now if now is not None else datetime.now(UTC).timestamp()) + (
            MAX_FUTURE_SKEW.total_seconds()
        )
        if value > limit:
            minutes = int(MAX_FUTURE_SKEW.total_seconds() // 60)
            return (
                f"is more than {minutes} minutes in the future; send the time the outcome happened"
            )
    return None


def parse_time(text: str) -> datetime:
    """An ISO-8601 time as an aware UTC datetime (naive means UTC), within the window.

    Raises:
        ValueError: not ISO-8601, or outside [TIME_MIN, TIME_MAX), with a readable reason.
    """
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO-8601 time; use e.g. 2026-01-31T12:00:00Z"
        ) from None
    problem = time_problem(parsed)
    if problem is not None:
        raise ValueError(f"{text!r} {problem}")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _plain(value: Any, depth: int, max_depth: int) -> bool:
    """Whether ``value`` certainly has none of :func:`document_problem`'s problems: the fast
    pass (no paths built; exact types; recursion bounded by ``max_depth``). False only means
    "look closer"."""
    kind = type(value)
    if kind is dict:
        if depth > max_depth:
            return False
        for key, item in value.items():
            if type(key) is not str or (not key.isascii() and _LONE_SURROGATE.search(key)):
                return False
            if not _plain_scalar(item) and not _plain(item, depth + 1, max_depth):
                return False
        return True
    if kind is list:
        if depth > max_depth:
            return False
        return all(_plain_scalar(item) or _plain(item, depth + 1, max_depth) for item in value)
    return _plain_scalar(value)


def _plain_scalar(value: Any) -> bool:
    kind = type(value)
    if kind is str:
        return value.isascii() or _LONE_SURROGATE.search(value) is None
    if kind is float:
        return math.isfinite(value)
    if kind is int:
        return -_INT64 <= value < _INT64
    return kind is bool or value is None


def document_problem(document: Any, *, max_depth: int = MAX_DOCUMENT_DEPTH) -> str | None:
    """Why a JSON-like value (dicts, lists, str, numbers, bools, None) cannot be stored, or None:
    nested deeper than ``max_depth``, a non-finite number, an integer outside 64 bits, a lone
    surrogate in a string or key, a key that is not a string, or a value JSON cannot hold. The
    path of the first problem is named (``a.b[2]``)."""
    # The usual document passes the fast check; the path-naming walk runs only when it fails
    # (or for subclasses of the JSON types, which the fast check leaves to this one).
    # (A max_depth beyond the interpreter's stack ends the fast check: the walk below decides.)
    with suppress(RecursionError):
        if _plain(document, 1, max_depth):
            return None
    # Iterative, so a hostile depth cannot exhaust the interpreter's stack.
    stack: list[tuple[Any, str, int]] = [(document, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        where = f" at {path}" if path else ""
        if isinstance(value, dict | list):
            if depth > max_depth:
                return f"is nested more than {max_depth} levels deep{where}"
            if isinstance(value, dict):
                for key, item in value.items():
                    if not isinstance(key, str):
                        return f"has a key that is not a string{where}"
                    if _LONE_SURROGATE.search(key):
                        return f"has a key that is not valid Unicode text{where}"
                    stack.append((item, f"{path}.{key}" if path else key, depth + 1))
            else:
                stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str):
            if _LONE_SURROGATE.search(value):
                return f"holds text that is not valid Unicode (a lone surrogate){where}"
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if not -_INT64 <= value < _INT64:
                return f"holds an integer outside the 64-bit range{where}"
        elif isinstance(value, float):
            if not math.isfinite(value):
                return f"holds a number that is not finite{where}"
        else:
            return f"holds a {type(value).__name__}, which JSON cannot represent{where}"
    return None


def data_problem(value: Any, max_bytes: int = MAX_DATA_BYTES) -> str | None:
    """Why a caller's free-form data (a request's ``attributes``, an outcome's ``context``) is
    refused, or None: the document rules (:func:`document_problem`) and at most ``max_bytes``
    as compact UTF-8 JSON."""
    problem = document_problem(value)
    if problem is not None:
        return problem
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > max_bytes:
        return f"must be at most {max_bytes} bytes as JSON (it has {size})"
    return None


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = [
    "CONTROL_CHARACTER",
    "MAX_DATA_BYTES",
    "MAX_DOCUMENT_DEPTH",
    "MAX_FLOW_VERSION",
    "MAX_FUTURE_SKEW",
    "MAX_ID_LENGTH",
    "MAX_RANK",
    "MAX_VALUE",
    "TIME_MAX",
    "TIME_MIN",
    "data_problem",
    "document_problem",
    "epoch_problem",
    "id_problem",
    "parse_time",
    "time_problem",
    "value_problem",
]
