"""From a file's fields to interactions: which column holds what, whether the first line is a
header, and each row's customer, time, value, outcome, offer, channel and idempotency key.

Every rule is the store's (``nextbest.store.limits``: ids, the time window and the future skew,
values; ``outcome_value_problem``: the sign of a refund), applied here first so a row the store
would refuse is a rejected row with its line and a reason naming the column.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from nextbest.ingest.files import Epoch, IngestError
from nextbest.store import (
    MAX_FUTURE_SKEW,
    MAX_ID_LENGTH,
    MAX_VALUE,
    REFUND,
    TIME_MAX,
    TIME_MIN,
    InteractionIn,
    Store,
    UnknownOutcomeError,
    epoch_problem,
    from_epoch,
    id_problem,
    outcome_value_problem,
)

#: A column by header name or by 1-based position.
Column = str | int
#: What a negative value on a purchase row means: a refund, or a rejected row.
NegativeValues = Literal["refund", "reject"]
NEGATIVE_VALUES: tuple[str, ...] = ("refund", "reject")
DECIMALS: tuple[str, ...] = (".", ",")

#: The columns a row may have, in the order of the ``*_col`` options.
ROLES: tuple[str, ...] = ("customer", "timestamp", "value", "outcome", "offer", "channel", "id")
_DEFAULT_NAMES = {
    "customer": "customer_id",
    "timestamp": "timestamp",
    "value": "value",
    "outcome": "outcome",
    "offer": "offer_id",
    "channel": "channel",
}
_REQUIRED = ("customer", "timestamp")

#: Every idempotency key bulk import makes starts with this; other entry points refuse it for
#: new outcomes, so an imported row's key is never taken by a caller (and replaced later).
RESERVED_KEY_PREFIX = "ingest:"
#: Idempotency keys of rows identified by an id column: ``ingest:id:<outcome>:<id>``. Keys made
#: from a row's content are ``ingest:<12 hex digits of the source>:...``, so the two never meet.
ID_KEY_PREFIX = RESERVED_KEY_PREFIX + "id:"
_SEP = "\x1f"  # joins a row's normalised fields for its content key
# Added to epoch seconds in keys so times back to year 1 stay non-negative and sort as text.
_EPOCH_OFFSET = 62_135_596_800
_TIME_CACHE_SIZE = 200_000
_SHOWN_CHARS = 40


class Reject(Exception):
    """A row-level problem; the message is the reason reported with the row's line."""


def shown(value: object) -> str:
    """A cell as quoted in a reason: its repr, cut short when long."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else f"{text[: _SHOWN_CHARS - 5]}...{text[-2:]}"


def _option(role: str) -> str:
    return f"--{role}-col"


def resolve_columns(
    requested: Mapping[str, Column | None], header: Sequence[str] | None, width: int | None
) -> dict[str, int | None]:
    """Map each role to a 0-based field index (None when absent and optional). ``width`` is
    the number of fields without a header (the first row's), to check positions against."""
    resolved: dict[str, int | None] = {}
    for role, column in requested.items():
        if column is None:
            default = _DEFAULT_NAMES.get(role)
            if header is None or default is None:
                if role in _REQUIRED:
                    raise IngestError(
                        f"without a header, give the {role} column by position "
                        f"({_option(role)} N, 1-based)"
                    )
                resolved[role] = None
            elif default in header:
                resolved[role] = _named(role, default, header)
            elif role in _REQUIRED:
                raise IngestError(
                    f"no {default!r} column in the header {list(header)}: pass {_option(role)}"
                )
            else:
                resolved[role] = None
        elif isinstance(column, int):
            if column < 1:
                raise IngestError(f"{_option(role)} {column}: positions start at 1")
            if header is not None and column > len(header):
                raise IngestError(f"{_option(role)} {column}: the header has {len(header)} columns")
            if header is None and width is not None and column > width:
                raise IngestError(f"{_option(role)} {column}: the first row has {width} fields")
            resolved[role] = column - 1
        else:
            if header is None:
                raise IngestError(
                    f"{_option(role)} {column!r} is a name but the file has no header: "
                    "give a 1-based position"
                )
            if column not in header:
                raise IngestError(f"{_option(role)} {column!r} is not in the header {list(header)}")
            resolved[role] = _named(role, column, header)
    return resolved


def _named(role: str, name: str, header: Sequence[str]) -> int:
    places = [i for i, cell in enumerate(header) if cell == name]
    if len(places) > 1:
        raise IngestError(
            f"the header names {len(places)} columns {name!r} (fields "
            f"{', '.join(str(i + 1) for i in places)}): give {_option(role)} by position"
        )
    return places[0]


def check_time_format(fmt: str) -> None:
    """IngestError when ``fmt`` is not a format strptime can read (``%Q``, ``%s``), so a typo
    stops the import at once instead of rejecting every row."""
    try:
        datetime.strptime(datetime(2001, 2, 3, 4, 5, 6).strftime(fmt), fmt)
    except ValueError as exc:
        raise IngestError(
            f"--timestamp-format {fmt!r} cannot be read: {exc} (see Python's strptime codes, "
            "e.g. %Y-%m-%d %H:%M)"
        ) from None
    if "%" not in fmt:
        raise IngestError(f"--timestamp-format {fmt!r} holds no % code (e.g. %Y-%m-%d)")


class Times:
    """Reads a row's time: ISO-8601 or a strptime format (no zone means UTC), or epoch seconds
    from a Parquet time column; inside the store's window and at most ``MAX_FUTURE_SKEW``
    after ``now``. Results are cached by raw value (files repeat dates a lot)."""

    def __init__(self, timestamp_format: str | None, now: float) -> None:
        if timestamp_format is not None:
            check_time_format(timestamp_format)
        self._format = timestamp_format
        self._now = now
        self._cache: dict[Any, tuple[datetime, float]] = {}
        # A time inside these bounds (the window's, and the skew's) passes without a call:
        # epoch_problem judges and explains every other (the store checks again anyway).
        self._low, self._high = TIME_MIN.timestamp(), TIME_MAX.timestamp()
        self._latest = now + MAX_FUTURE_SKEW.total_seconds()

    def _problem(self, epoch: float) -> str | None:
        if self._low <= epoch < self._high and epoch <= self._latest:
            return None
        return epoch_problem(epoch, outcome=True, now=self._now)

    def parse_text(self, text: str) -> datetime | None:
        """The time written in ``text``, or None when it is not one (in the expected format)."""
        try:
            if self._format is None:
                return datetime.fromisoformat(text)
            return datetime.strptime(text, self._format)
        except ValueError:
            return None

    def read(self, raw: Any) -> tuple[datetime, float]:
        """The time and its epoch seconds, or Reject with the reason."""
        try:
            cached = self._cache.get(raw)
        except TypeError:  # unhashable, e.g. a list from a Parquet column: not a time
            expected = self._format or "ISO-8601"
            raise Reject(f"bad timestamp {shown(raw)} (expected {expected})") from None
        if cached is not None:
            return cached
        if isinstance(raw, Epoch):
            epoch = float(raw)
            problem = self._problem(epoch)
            if problem is not None:
                raise Reject(f"timestamp {problem}")
            value = from_epoch(epoch)
        else:
            if raw is None or not str(raw).strip():
                raise Reject("missing timestamp")
            text = str(raw).strip()
            parsed = self.parse_text(text)
            if parsed is None:
                raise Reject(f"bad timestamp {shown(text)} (expected {self._format or 'ISO-8601'})")
            value = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
            # Epoch seconds exist for every aware datetime, the calendar's edges included.
            epoch = value.timestamp()
            problem = self._problem(epoch)
            if problem is not None:
                raise Reject(f"timestamp {shown(text)} {problem}")
        if len(self._cache) >= _TIME_CACHE_SIZE:
            self._cache.clear()
        result = self._cache[raw] = (value, epoch)
        return result


def read_number(raw: Any, decimal: str) -> float:
    """A value cell as a float: empty is 0; text uses ``decimal`` as its decimal separator and
    no thousands separator (so a misread option cannot scale a value by 1,000 unnoticed).
    Range and sign are checked by the caller. Reject when it is not a number."""
    if raw is None:
        return 0.0
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return 0.0
        if "_" in text or (decimal == "," and "." in text):
            text = ""  # Python's digit grouping, or a '.' beside a decimal comma: not a number
        elif decimal == ",":
            text = text.replace(",", ".")
        try:
            return float(text)
        except ValueError:
            raise Reject(_not_a_number(raw, decimal)) from None
    if isinstance(raw, bool):
        raise Reject(f"value {shown(raw)} is not a number")
    if isinstance(raw, int):
        try:
            return float(raw)
        except OverflowError:  # beyond the float range: the range check refuses it
            return math.inf if raw > 0 else -math.inf
    try:  # a float, or e.g. a decimal.Decimal from Parquet
        return float(raw)
    except (TypeError, ValueError, OverflowError):
        raise Reject(f"value {shown(raw)} is not a number") from None


def _not_a_number(raw: str, decimal: str) -> str:
    reason = f"value {shown(raw)} is not a number"
    if decimal == "." and "," in raw:
        return f"{reason} (pass --decimal , for decimal commas)"
    if decimal == "," and "." in raw:
        return f"{reason} with decimal separator ',' (thousands separators are not accepted)"
    return reason


def is_number(text: str, decimal: str) -> bool:
    """Whether a cell reads as a number."""
    try:
        read_number(text, decimal)
    except Reject:
        return False
    return bool(text.strip())


def cell_text(what: str, raw: Any) -> str:
    """A text cell that a columnar file (Parquet) gave as another type: bytes are UTF-8 text
    (else Reject), a whole float is an integer id (``1001.0``: a pandas int column with gaps),
    anything else its ``str``. CSV cells are already text and never come here."""
    if isinstance(raw, bytes | bytearray | memoryview):
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Reject(f"{what} is not valid UTF-8 text (byte {exc.start + 1})") from None
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw)


def _check_id(what: str, text: str) -> None:
    # isprintable() (C speed) is False for every control character, so the full rule runs
    # only for the rare id that might break it.
    if len(text) > MAX_ID_LENGTH or not text.isprintable():
        problem = id_problem(text)
        if problem is not None:
            raise Reject(f"{what} {problem}")


def optional_id(what: str, raw: Any) -> str | None:
    """An optional id cell: empty means none; otherwise the store's id rules apply."""
    if raw is None:
        return None
    text = (raw if type(raw) is str else cell_text(what, raw)).strip()
    if not text:
        return None
    _check_id(what, text)
    return text


class ContentKeys:
    """Keys made of the source name, the event time, a digest of the row's normalised content
    and its occurrence number among identical rows of the file (no line number, no file hash):
    re-importing an edited file adds only the rows it added or changed. The time leads the key
    so the keys of a time-ordered file grow in order and the store's unique index is appended
    to, not rewritten at random places."""

    def __init__(self, source: str) -> None:
        self._prefix = RESERVED_KEY_PREFIX + hashlib.sha256(source.encode()).hexdigest()[:12] + ":"
        self._occurrences: dict[bytes, int] = {}

    def __call__(self, epoch: float, content: str) -> str:
        # 64 bits suffice: only rows of the same source and the same second could collide.
        digest = hashlib.blake2b(content.encode(), digest_size=8).digest()
        seen = self._occurrences.get(digest, 0)
        self._occurrences[digest] = seen + 1
        return f"{self._prefix}{int(epoch) + _EPOCH_OFFSET:012d}:{digest.hex()}:{seen}"


def id_key(label: str, raw: Any, outcome: str) -> str:
    """The key of a row identified by its id cell (``label`` names the column): the same id
    and outcome in any file is the same event, so a corrected export replaces it."""
    ident = "" if raw is None else (raw if type(raw) is str else cell_text(label, raw)).strip()
    if not ident:
        raise Reject(f"missing {label}")
    _check_id(label, ident)
    key = f"{ID_KEY_PREFIX}{outcome}:{ident}"
    if len(key) > MAX_ID_LENGTH:
        room = MAX_ID_LENGTH - len(key) + len(ident)
        raise Reject(
            f"{label} {shown(ident)} is too long to identify a row: at most {room} characters "
            f"with outcome {outcome!r}"
        )
    return key


class RowParser:
    """Turns a row's fields into an InteractionIn, raising Reject with the reason.

    ``expected``: the number of fields every row must have (text formats: the header's, or
    the first row's without one; None for Parquet) and ``reference`` what set it. A negative
    value on a row of ``purchase`` (the default outcome) becomes a ``refund`` when
    ``negative_refunds``. With ``id_label`` the key comes from the id column; otherwise from
    ``content_keys``.
    """

    def __init__(
        self,
        store: Store,
        tenant_id: str,
        columns: Mapping[str, int | None],
        times: Times,
        *,
        decimal: str,
        purchase: str,
        negative_refunds: bool,
        expected: int | None,
        reference: str,
        content_keys: Callable[[float, str], str],
        id_label: str,
    ) -> None:
        self._store = store
        self._tenant = tenant_id
        self._times = times
        self._decimal = decimal
        self._purchase = purchase
        self._negative_refunds = negative_refunds
        self._expected = expected
        self._reference = reference
        self._content_keys = content_keys
        self._id_label = id_label
        self._outcomes: dict[str, str | None] = {}  # name -> None when valid, else reason
        customer, timestamp = columns["customer"], columns["timestamp"]
        assert customer is not None and timestamp is not None  # required roles
        self._customer, self._timestamp = customer, timestamp
        self._value = columns.get("value")
        self._outcome = columns.get("outcome")
        self._offer = columns.get("offer")
        self._channel = columns.get("channel")
        self._id = columns.get("id")
        self.width = max(i for i in columns.values() if i is not None) + 1

    @property
    def by_id(self) -> bool:
        """Whether rows are identified by an id column (their keys may repeat in a file)."""
        return self._id is not None

    def outcome(self, raw: Any) -> str:
        text = "" if raw is None else raw if type(raw) is str else cell_text("outcome", raw)
        name = text.strip() or self._purchase
        if name not in self._outcomes:
            try:
                self._store.resolve_outcome_type(self._tenant, name)
                self._outcomes[name] = None
            except UnknownOutcomeError:
                self._outcomes[name] = f"unknown outcome {shown(name)}"
        problem = self._outcomes[name]
        if problem is not None:
            raise Reject(problem)
        return name

    def _count_problem(self, found: int) -> str:
        hint = ""
        if found > (self._expected or 0):
            hint = " (a decimal comma or a delimiter inside an unquoted value?)"
        return f"has {found} fields, {self._reference} has {self._expected}{hint}"

    def parse(self, fields: Sequence[Any]) -> InteractionIn:
        """The row as an interaction (Reject with the reason when it cannot be one)."""
        if self._expected is not None and len(fields) != self._expected:
            raise Reject(self._count_problem(len(fields)))
        if len(fields) < self.width:
            raise Reject(f"has {len(fields)} fields, expected at least {self.width}")
        customer = fields[self._customer]
        if type(customer) is not str:
            customer = "" if customer is None else cell_text("customer id", customer)
        customer = customer.strip()
        if not customer:
            raise Reject("missing customer id")
        if len(customer) > MAX_ID_LENGTH or not customer.isprintable():
            _check_id("customer id", customer)
        occurred, epoch = self._times.read(fields[self._timestamp])
        raw_value = None if self._value is None else fields[self._value]
        value = read_number(raw_value, self._decimal)
        outcome = self.outcome(None if self._outcome is None else fields[self._outcome])
        if value < 0 and self._negative_refunds and outcome == self._purchase:
            outcome = REFUND
        # A purchase's value in the business range passes without a call (the common row).
        problem = (
            None
            if 0.0 <= value <= MAX_VALUE and outcome != REFUND
            else outcome_value_problem(outcome, value)
        )
        if problem is not None:
            if value < 0 and outcome == self._purchase:
                problem += " (to record negative amounts as refunds, pass --negative-values refund)"
            raise Reject(f"value {shown(raw_value)} {problem}")
        offer = None if self._offer is None else optional_id("offer id", fields[self._offer])
        channel = None if self._channel is None else optional_id("channel", fields[self._channel])
        if self._id is None:
            # What identifies the event, independent of formatting ("10.50" = "10.5").
            content = _SEP.join(
                (customer, repr(epoch), repr(value), outcome, offer or "", channel or "")
            )
            key = self._content_keys(epoch, content)
        else:
            key = id_key(self._id_label, fields[self._id], outcome)
        return InteractionIn(
            customer_id=customer,
            outcome=outcome,
            idempotency_key=key,
            offer_id=offer,
            channel=channel,
            value=value,
            occurred_at=occurred,
        )


def looks_like_data(cells: Sequence[Any], columns: Mapping[str, int | None], times: Times,
                    decimal: str) -> str | None:  # fmt: skip
    """Why a first line read as a header looks like a row of data (its time cell holds a
    time, or its value cell a number), or None."""
    for role in ("timestamp", "value"):
        index = columns.get(role)
        if index is None or index >= len(cells):
            continue
        cell = str(cells[index]).strip()
        if role == "timestamp" and cell and times.parse_text(cell) is not None:
            return f"its field {index + 1} ({shown(cell)}) is a time"
        if role == "value" and is_number(cell, decimal):
            return f"its field {index + 1} ({shown(cell)}) is a number"
    return None


def first_time_cell(cells: Sequence[Any], times: Times) -> str | None:
    """Why a line whose cells name no expected column looks like data (a cell holds a time),
    or None."""
    for index, cell in enumerate(cells):
        text = str(cell).strip()
        if text and times.parse_text(text) is not None:
            return f"its field {index + 1} ({shown(text)}) is a time"
    return None


def looks_like_header(
    first: Sequence[Any], second: Sequence[Any], columns: Mapping[str, int | None], times: Times,
    decimal: str,
) -> bool:  # fmt: skip
    """Whether the first row of a file read without a header is clearly one: its time cell is
    not a time (nor its value cell a number) while the next row's time cell is."""
    index = columns["timestamp"]
    assert index is not None
    if index >= len(first) or index >= len(second):
        return False
    if times.parse_text(str(first[index]).strip()) is not None:
        return False
    if times.parse_text(str(second[index]).strip()) is None:
        return False
    value = columns.get("value")
    return value is None or value >= len(first) or not is_number(str(first[value]), decimal)


__all__ = [
    "DECIMALS",
    "ID_KEY_PREFIX",
    "NEGATIVE_VALUES",
    "ROLES",
    "Column",
    "ContentKeys",
    "NegativeValues",
    "Reject",
    "RowParser",
    "Times",
    "first_time_cell",
    "id_key",
    "is_number",
    "looks_like_data",
    "looks_like_header",
    "optional_id",
    "read_number",
    "resolve_columns",
    "shown",
]
