"""The shared core of the SQL store, which every concern mixin builds on.

:class:`SqlCore` declares the hooks a dialect implements (connections and transactions, the
migration lock, migration scripts, constraint errors), runs the migrations and holds the helpers
every concern uses (tenant checks, retry on a concurrent insert). Next to it: the :class:`Cursor`
protocol the shared SQL runs on, id and JSON checks, keyset-pagination cursors and pages, and the
loading of the per-dialect migration files.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from importlib import resources
from itertools import islice
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from nextbest.store.base import Migration, Page
from nextbest.store.errors import InvalidInputError, StoreError, TenantNotFoundError
from nextbest.store.limits import CONTROL_CHARACTER, MAX_ID_LENGTH, id_problem

R = TypeVar("R")

TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MIGRATION_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(sqlite|postgres)\.sql$")
_MAX_ID = MAX_ID_LENGTH
_MAX_PAGE = 1000


class Cursor(Protocol):
    """The DB-API subset the shared code uses (``?`` placeholders)."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


def dumps(document: Any) -> str:
    """Compact JSON; NaN and infinity are refused (they are not JSON)."""
    return json.dumps(document, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


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
    if values and (
        set(map(type, values)) != {str}
        or min(map(len, values)) < 1  # type: ignore[arg-type]
        or max(map(len, values)) > _MAX_ID  # type: ignore[arg-type]
        or CONTROL_CHARACTER.search("".join(values))  # type: ignore[arg-type]
    ):
        for value in values:
            problem = id_problem(value)
            if problem is not None:
                shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
                raise InvalidInputError(f"{what} {shown} is invalid: it {problem}", field=what)


def json_text(what: str, document: Any, field: str | None = None) -> str:
    """A document as compact JSON text; InvalidInputError naming it if it is not JSON.

    Documents are stored as TEXT on both stores and ``dumps`` escapes control characters, so a
    NUL inside a string value is kept as the ASCII escape ``\\u0000`` and round-trips.
    """
    try:
        return dumps(document)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"{what} is not JSON-serialisable: {exc}", field=field or what
        ) from exc


def valid_tenant_id(tenant_id: object) -> bool:
    return isinstance(tenant_id, str) and TENANT_ID.match(tenant_id) is not None


def page_limit(limit: int) -> int:
    if not isinstance(limit, int) or not 1 <= limit <= _MAX_PAGE:
        raise InvalidInputError(f"limit must be an integer from 1 to {_MAX_PAGE}, got {limit!r}")
    return limit


def encode_cursor(last_key: str) -> str:
    """An opaque cursor for keyset pagination after ``last_key``."""
    return base64.urlsafe_b64encode(dumps([last_key]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str:
    """The key a cursor points after ("" for the first page); InvalidInputError if malformed."""
    if cursor is None:
        return ""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cursor {cursor!r} is malformed: pass a next_cursor") from exc
    if not (isinstance(value, list) and len(value) == 1 and isinstance(value[0], str)):
        raise InvalidInputError(f"cursor {cursor!r} is malformed: pass a next_cursor")
    return value[0]


def load_migrations(dialect: str) -> list[Migration]:
    """The migrations shipped for ``dialect`` (``sqlite`` or ``postgres``), by version."""
    found = []
    for entry in (resources.files("nextbest.store") / "migrations").iterdir():
        match = _MIGRATION_RE.match(entry.name)
        if match and match.group(3) == dialect:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise StoreError(f"{dialect} migrations are not numbered 1..n: {found}")
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
        # None until API keys are first used (TenantsSql._pepper): then read from the environment
        # (with the development-pepper warning), so commands that never touch keys never warn
        self._pepper_value: bytes | None = pepper
        self._migrations = load_migrations(self.dialect)

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
    def _require_tenant(self, cur: Cursor, tenant_id: str) -> None:
        if (
            not valid_tenant_id(tenant_id)
            or cur.execute("SELECT 1 FROM tenants WHERE tenant_id = ?", (tenant_id,)).fetchone()
            is None
        ):
            raise TenantNotFoundError(
                f"tenant {tenant_id!r} does not exist: create it with `nextbest tenants create`"
            )

    def _retry_on_conflict(self, action: Callable[[], R], attempts: int = 5) -> R:
        """Run ``action`` again when a concurrent writer made it hit a unique constraint."""
        for attempt in range(attempts):
            try:
                return action()
            except Exception as exc:
                if attempt == attempts - 1 or not self._is_integrity_error(exc):
                    raise
        raise AssertionError("unreachable")
