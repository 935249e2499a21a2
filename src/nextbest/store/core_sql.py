"""The shared core of the SQL store, which every concern mixin builds on.

:class:`SqlCore` declares the hooks a dialect implements (connections and transactions, the
migration lock, migration scripts, constraint errors, per-key write locks), runs the migrations
and holds the helpers every concern uses (tenant checks, write transactions retried on a
deadlock or serialization failure). Next to it: the :class:`Cursor` protocol the shared SQL runs
on, the checks of ids, integers and documents every argument goes through before any SQL runs,
keyset-pagination cursors and pages, and the loading of the per-dialect migration files.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from importlib import resources
from itertools import islice
from json import encoder as json_encoder
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from nextbest.store.base import Migration, Page
from nextbest.store.errors import (
    InvalidInputError,
    StoreBusyError,
    StoreError,
    TenantNotFoundError,
)
from nextbest.store.keys import server_pepper
from nextbest.store.limits import CONTROL_CHARACTER, MAX_ID_LENGTH, document_problem, id_problem

R = TypeVar("R")

TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
TENANT_ID_RULE = "use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
_MIGRATION_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(sqlite|postgres)\.sql$")
_MAX_ID = MAX_ID_LENGTH
#: A fast test for the lone surrogates the limits refuse (a slow path then gives the reason).
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_PAGE = 1000
#: The longest cursor :func:`encode_cursor` can make: base64 of ``["<id>"]`` where each of the
#: id's characters takes at most 4 bytes of UTF-8 (or 2 when escaped). Longer text is refused
#: before it is decoded.
_MAX_CURSOR = 4 * -(-(4 * _MAX_ID + 4) // 3)
#: A write transaction that hits a deadlock or serialization failure runs at most this many
#: times in all, after random pauses of up to 10, 20, 40, 80 ms (full jitter, so colliding
#: writers do not collide again in step; each at most _RETRY_CAP): 0.15 s of pauses at worst.
_WRITE_ATTEMPTS = 5
_RETRY_BASE = 0.01
_RETRY_CAP = 0.2


class Cursor(Protocol):
    """The DB-API subset the shared code uses (``?`` placeholders)."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _make_dumps() -> Callable[[Any], str]:
    """Compact JSON text, NaN and infinity refused, non-ASCII kept.

    ``json.dumps`` with options builds a new encoder on every call, which costs more than
    encoding a small document; the C encoder is built once instead (a third of the time for a
    million plugin documents). It skips the circular-reference check: callers run
    :func:`document_problem` first, which refuses such a structure as too deep.
    """
    make_encoder = getattr(json_encoder, "c_make_encoder", None)  # None without the C module
    if make_encoder is not None:
        # Same arguments as json.JSONEncoder.iterencode passes: markers, default, string
        # encoder, indent, key and item separators, sort_keys, skipkeys, allow_nan.
        encode = make_encoder(
            None, _not_json, json_encoder.encode_basestring, None, ":", ",", False, False, False
        )

        def fast(document: Any) -> str:
            return "".join(encode(document, 0))

        return fast
    encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return encoder.encode


#: Compact JSON; NaN and infinity are refused (they are not JSON).
dumps = _make_dumps()


def shown(value: object, width: int = 40) -> str:
    """``repr(value)`` for an error message, shortened; never fails (an integer too long to
    print in decimal is described by its size)."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def check_id(what: str, value: object) -> str:
    """``value`` when it is a valid id (see :func:`id_problem`), else InvalidInputError."""
    # Fast path for the usual id (bulk records check millions): printable means no control
    # characters; anything else gets the full rule and its reason.
    if type(value) is str and 0 < len(value) <= _MAX_ID and value.isprintable():
        return value
    problem = id_problem(value)
    if problem is not None:
        raise InvalidInputError(f"{what} {problem}", field=what)
    return value  # type: ignore[return-value]  # id_problem checked it is a str


def check_optional_id(what: str, value: object) -> None:
    if value is not None:
        check_id(what, value)


def check_ids(what: str, values: Sequence[object]) -> None:
    """Check many ids at once: C-level passes over the list, the slow path names the bad one."""
    if isinstance(values, str):
        raise InvalidInputError(f"{what}s must be a list of ids, not one string", field=what)
    if not values:
        return
    if set(map(type, values)) == {str}:
        joined = "".join(values)  # type: ignore[arg-type]
        if (
            min(map(len, values)) >= 1  # type: ignore[arg-type]
            and max(map(len, values)) <= _MAX_ID  # type: ignore[arg-type]
            and CONTROL_CHARACTER.search(joined) is None
            and (joined.isascii() or LONE_SURROGATE.search(joined) is None)
        ):
            return
    for value in values:
        problem = id_problem(value)
        if problem is not None:
            raise InvalidInputError(f"{what} {shown(value)} is invalid: it {problem}", field=what)


def check_int(what: str, value: object, low: int, high: int) -> int:
    """``value`` when it is an int (not a bool) within [low, high], else InvalidInputError
    naming ``what``: checked before it reaches a driver, which would overflow or compare it
    with a column it can never match."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInputError(
            f"{what} must be an integer from {low} to {high}, got {shown(value)}", field=what
        )
    return value


def check_tenant_id(tenant_id: object) -> str:
    """``tenant_id`` when it is a well-formed tenant id, else InvalidInputError naming it."""
    if not valid_tenant_id(tenant_id):
        raise InvalidInputError(
            f"tenant id {shown(tenant_id)} is invalid: {TENANT_ID_RULE}", field="tenant id"
        )
    return tenant_id  # type: ignore[return-value]  # valid_tenant_id checked it is a str


def document_field(field: str, problem: str) -> str:
    """The field a :func:`document_problem` reason points at: ``field`` followed by the path
    the reason ends with (``"... at a.b[2]"`` gives ``field.a.b[2]``)."""
    # The reasons put " at <path>" last and have no " at " before it.
    _, at, path = problem.partition(" at ")
    if not at:
        return field
    return f"{field}{path}" if path.startswith("[") else f"{field}.{path}"


def check_document(what: str, document: Any, field: str) -> None:
    """InvalidInputError naming the field path when ``document`` cannot be stored (see
    :func:`document_problem`: depth, finite numbers, 64-bit integers, valid Unicode, JSON
    types only)."""
    problem = document_problem(document)
    if problem is not None:
        raise InvalidInputError(f"{what} {problem}", field=document_field(field, problem))


def json_text(what: str, document: Any, field: str | None = None) -> str:
    """A document as compact JSON text, checked first by :func:`check_document`; an
    InvalidInputError names the field path (``field`` or ``what``, then the path inside).

    Documents are stored as TEXT on both stores and ``dumps`` escapes control characters, so a
    NUL inside a string value is kept as the ASCII escape ``\\u0000`` and round-trips.
    """
    check_document(what, document, field or what)
    try:
        return dumps(document)
    except (TypeError, ValueError, RecursionError) as exc:  # checked above: defensive only
        raise InvalidInputError(
            f"{what} is not JSON-serialisable: {exc}", field=field or what
        ) from exc


def valid_tenant_id(tenant_id: object) -> bool:
    return isinstance(tenant_id, str) and TENANT_ID.fullmatch(tenant_id) is not None


def page_limit(limit: object) -> int:
    """A page size from 1 to 1000 (bools are not numbers here), else InvalidInputError."""
    return check_int("limit", limit, 1, _MAX_PAGE)


def encode_cursor(last_key: str) -> str:
    """An opaque cursor for keyset pagination after ``last_key``."""
    return base64.urlsafe_b64encode(dumps([last_key]).encode()).decode().rstrip("=")


def decode_cursor(cursor: object) -> str:
    """The key a cursor points after ("" for the first page); InvalidInputError naming
    ``cursor`` when it is not one :func:`encode_cursor` made (junk, a number, an oversized or
    deeply nested payload, a key that is no valid id)."""
    if cursor is None:
        return ""
    malformed = InvalidInputError(
        f"cursor {shown(cursor)} is malformed: pass a next_cursor", field="cursor"
    )
    if not isinstance(cursor, str) or len(cursor) > _MAX_CURSOR:
        raise malformed
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise malformed from None
    if not (
        isinstance(value, list)
        and len(value) == 1
        and isinstance(value[0], str)
        and id_problem(value[0]) is None
    ):
        raise malformed
    return value[0]


def load_migrations(dialect: str) -> list[Migration]:
    """The migrations shipped for ``dialect`` (``sqlite`` or ``postgres``), by version."""
    found = []
    for entry in (resources.files("nextbest.store") / "migrations").iterdir():
        match = _MIGRATION_RE.match(entry.name)
        if match and match.group(3) == dialect:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    # Numbers are handed to branches before they merge, so one may be missing for a while;
    # two scripts with one number are always a mistake.
    if len(set(versions)) != len(versions) or (versions and versions[0] != 1):
        raise StoreError(f"{dialect} migrations are not uniquely numbered from 1: {found}")
    return found


def batched(items: Iterable[R], size: int) -> Iterator[list[R]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def make_page(rows: Sequence[Any], limit: int, item: Callable[[Any], R]) -> Page[R]:
    """A keyset page from ``limit + 1`` rows ordered by their first column (the cursor key)."""
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([item(r) for r in rows], encode_cursor(rows[-1][0]) if more else None)


class SqlCore(ABC):
    """The base of every SQL store concern: dialect hooks, migrations and shared helpers."""

    dialect: str
    url: str
    #: Clock for leases and default times; tests may replace it.
    clock: Callable[[], float] = staticmethod(time.time)

    def __init__(self, pepper: bytes | None = None) -> None:
        # None until API keys are first used (SqlCore._pepper): then read from the environment
        # (with the development-pepper warning), so commands that never touch keys never warn
        self._pepper_value: bytes | None = pepper
        self._migrations = load_migrations(self.dialect)

    @property
    def _pepper(self) -> bytes:
        """The server's pepper (API key hashes, webhook secrets' encryption key)."""
        if self._pepper_value is None:
            self._pepper_value = server_pepper()
        return self._pepper_value

    # -- dialect hooks ----------------------------------------------------------------------
    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Cursor]:
        """A write transaction: committed on success, rolled back on any exception."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Cursor]:
        """A cursor for reads."""

    @abstractmethod
    def _migration_transaction(self) -> AbstractContextManager[Cursor]:
        """A transaction holding the database-wide migration lock."""

    @abstractmethod
    def _run_script(self, cur: Cursor, sql: str) -> None:
        """Execute a migration script of several statements."""

    @abstractmethod
    def _table_exists(self, cur: Cursor, table: str) -> bool:
        """Whether ``table`` exists (in the current schema)."""

    @abstractmethod
    def _is_integrity_error(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a constraint violation."""

    @abstractmethod
    def close(self) -> None:
        """Close every connection."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- migrations -------------------------------------------------------------------------
    def upgrade(self) -> list[int]:
        applied_now: list[int] = []
        with self._migration_transaction() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            done = {
                row[0] for row in cur.execute("SELECT version FROM schema_migrations").fetchall()
            }
            for migration in self._migrations:
                if migration.version in done:
                    continue
                self._run_script(cur, migration.sql)
                cur.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, self.clock()),
                )
                applied_now.append(migration.version)
        return applied_now

    def schema_version(self) -> int:
        with self._read() as cur:
            if not self._table_exists(cur, "schema_migrations"):
                return 0
            row = cur.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def latest_schema_version(self) -> int:
        return self._migrations[-1].version

    # -- helpers ----------------------------------------------------------------------------
    @abstractmethod
    def _lock(self, cur: Cursor, scope: str, *parts: str) -> None:
        """Hold a lock on ``(scope, *parts)`` until the transaction ends, so that writers of
        the same thing (a tenant's flow key, say) run one at a time."""

    def _require_tenant(self, cur: Cursor, tenant_id: str) -> None:
        check_tenant_id(tenant_id)
        if (
            cur.execute("SELECT 1 FROM tenants WHERE tenant_id = ?", (tenant_id,)).fetchone()
            is None
        ):
            raise TenantNotFoundError(
                f"tenant {tenant_id!r} does not exist: create it with `nextbest tenants create`"
            )

    def _write(self, work: Callable[[Cursor], R], attempts: int = _WRITE_ATTEMPTS) -> R:
        """Run ``work`` in a write transaction; run it again (after a jittered pause) when the
        database gave up on it because of concurrent writers (a deadlock or serialization
        failure: the dialect raises StoreBusyError with ``retryable``), at most ``attempts``
        times in all. ``work`` must be safe to run again: every attempt starts afresh.

        Raises:
            StoreBusyError: the collisions went on for every attempt, or the database stayed
                busy (not retried: the dialect already waited its whole timeout).
        """
        pause = _RETRY_BASE
        for attempt in range(1, attempts + 1):
            try:
                with self._transaction() as cur:
                    return work(cur)
            except StoreBusyError as exc:
                if not exc.retryable:
                    raise
                if attempt == attempts:
                    raise StoreBusyError(
                        f"{exc} (tried {attempts} times)", retryable=True
                    ) from exc.__cause__
            time.sleep(random.uniform(0, pause))
            pause = min(pause * 2, _RETRY_CAP)
        raise AssertionError("unreachable")
