"""PostgreSQL store (for several server processes): psycopg 3 with a connection pool.

Pass ``schema=`` (or ``?options=-csearch_path%3D<schema>`` in the URL) to keep nextbest's tables
in their own schema, e.g. a throwaway schema in tests.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from itertools import islice
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from nextbest.store.core_sql import Cursor
from nextbest.store.errors import (
    InvalidInputError,
    SchemaNotReadyError,
    StoreBusyError,
    StoreConfigurationError,
    StoreUnavailableError,
)
from nextbest.store.interactions_sql import INTERACTION_COLUMNS
from nextbest.store.sql import SqlStore

# SQLSTATE of "sorry, too many clients already".
_TOO_MANY_CONNECTIONS = "53300"
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Arbitrary constant: the advisory lock key every nextbest process takes while migrating.
_MIGRATION_LOCK_KEY = 0x6E657874_62657374 & 0x7FFFFFFFFFFFFFFF
_ARRAY_TYPES = (
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "float8",
    "float8",
    "text",
    "text",
    "int8",
    "text",
    "float8",
)
_BULK_INSERT = (
    f"INSERT INTO interactions ({', '.join(INTERACTION_COLUMNS)}) "
    "SELECT * FROM unnest("
    + ", ".join(f"%s::{t}[]" for t in _ARRAY_TYPES)
    + ") ON CONFLICT (tenant_id, idempotency_key) DO NOTHING "
    "RETURNING interaction_id, customer_id, offer_id, outcome, classification, kind, value, "
    "occurred_at, channel"
)


# The cast to json refuses invalid text (and keeps valid text exactly as given).
_UPSERT_JSON_DOCUMENT = (
    "INSERT INTO documents (namespace, tenant_id, doc_key, document, updated_at) "
    "VALUES (%s, %s, %s, %s::json::text, %s) "
    "ON CONFLICT (namespace, tenant_id, doc_key) DO UPDATE "
    "SET document = excluded.document, updated_at = excluded.updated_at"
)


@lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    """Rewrite the shared ``?`` placeholders for psycopg (the shared SQL has no ``?``/``%``
    literals)."""
    return sql.replace("?", "%s")


class _PgCursor:
    """Adapts a psycopg cursor to the shared ``?``-placeholder SQL."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _PgCursor:
        self._cursor.execute(_pg(sql), params)
        return self

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        self._cursor.executemany(_pg(sql), params)

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()


def _batches(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def _redact(url: str) -> str:
    """The URL with its passwords hidden: the user info's (``user:***@host``, up to the last
    ``@`` of the authority) and a ``password`` query parameter's (``?password=***``)."""
    url = re.sub(r"^([^:/?#]+://[^:/?#@]*):[^/?#]*@", r"\1:***@", url)
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", url, flags=re.IGNORECASE)


def _connection_lost(exc: psycopg.OperationalError) -> bool:
    """Whether ``exc`` says the connection is gone: no SQLSTATE (the socket closed), a
    connection exception (class 08) or an operator intervention (57P: shutdown, restart)."""
    state = exc.sqlstate
    return state is None or state.startswith(("08", "57P"))


class PostgresStore(SqlStore):
    """A store in a PostgreSQL database (optionally confined to one schema)."""

    dialect = "postgres"
    # Concurrent claims skip each other's rows instead of waiting or taking them twice.
    _claim_lock_clause = " FOR UPDATE SKIP LOCKED"

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pepper: bytes | None = None,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 30.0,
    ) -> None:
        if schema is not None and not _SCHEMA_RE.match(schema):
            raise StoreConfigurationError(
                f"schema {schema!r} is invalid: use lower-case letters, digits and '_'"
            )
        self.url = _redact(url)
        self.schema = schema
        kwargs: dict[str, Any] = {}
        if schema is not None:
            kwargs["options"] = f"-csearch_path={schema}"
        super().__init__(pepper)
        self._dsn, self._connect_kwargs = url, kwargs
        self._pool = ConnectionPool(
            url,
            kwargs=kwargs,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            # A connection the server closed (a restart) is replaced before it is lent.
            check=ConnectionPool.check_connection,
            open=True,
        )

    def _unreachable(self) -> str | None:
        """Why a new connection cannot be opened (first line of the driver's error), or None
        when one can: tells an unreachable server from a busy pool after a pool timeout."""
        try:
            with psycopg.connect(self._dsn, connect_timeout=3, **self._connect_kwargs):
                return None
        except psycopg.OperationalError as exc:
            if exc.sqlstate == _TOO_MANY_CONNECTIONS or "too many clients" in str(exc):
                return None  # the server answers: it is busy, not unreachable
            lines = str(exc).strip().splitlines()
            return lines[0].strip() if lines else type(exc).__name__

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        # The pool commits when the block ends normally and rolls back on an exception.
        try:
            with self._pool.connection() as conn:
                yield conn
        except pg_errors.UndefinedTable as exc:
            raise SchemaNotReadyError(
                f"the database schema is missing ({exc}): run `nextbest db upgrade`"
            ) from exc
        except (pg_errors.SerializationFailure, pg_errors.DeadlockDetected) as exc:
            # The transaction was rolled back; running it again normally succeeds (_write does).
            raise StoreBusyError(
                f"the write collided with concurrent ones ({exc.sqlstate}: {exc}): retry",
                retryable=True,
            ) from exc
        except PoolTimeout as exc:
            reason = self._unreachable()
            if reason is not None:  # the server is down or the URL wrong: not busy
                raise StoreUnavailableError(
                    f"cannot connect to the database at {self.url} ({reason}): check that the "
                    "server is running and the URL (host, port, database, user) is right"
                ) from exc
            raise StoreBusyError(f"the database is busy ({exc}): retry later") from exc
        except pg_errors.LockNotAvailable as exc:
            raise StoreBusyError(f"the database is busy ({exc}): retry later") from exc
        except (psycopg.DataError, UnicodeEncodeError) as exc:
            # A value PostgreSQL cannot take (a NUL in text, a number out of its column's
            # range, text with a lone surrogate, which psycopg cannot encode). The store checks
            # its arguments first; this is the last line.
            raise InvalidInputError(f"PostgreSQL cannot store a value: {exc}") from exc
        except psycopg.OperationalError as exc:
            # The connection broke during the call (a server restart, the network): whatever
            # the call did was rolled back. The pool checks connections before lending them,
            # so the next call gets a working one once the server answers.
            if not _connection_lost(exc):
                raise
            lines = str(exc).strip().splitlines()
            raise StoreUnavailableError(
                f"the connection to the database at {self.url} was lost "
                f"({lines[0] if lines else type(exc).__name__}): nothing was changed; retry"
            ) from exc

    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        with self._connection() as conn, conn.cursor() as cur:
            yield _PgCursor(cur)

    _read = _transaction

    @contextmanager
    def _migration_transaction(self) -> Iterator[Cursor]:
        with self._connection() as conn, conn.cursor() as cur:
            # Held until commit: racing upgrades (schema creation included) run one at a time.
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_KEY,))
            if self.schema is not None:
                cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            yield _PgCursor(cur)

    def _run_script(self, cur: Cursor, sql: str) -> None:
        # Without parameters psycopg sends the text as is, several statements at once.
        assert isinstance(cur, _PgCursor)
        cur._cursor.execute(sql.encode())

    def _lock(self, cur: Cursor, scope: str, *parts: str) -> None:
        # A transaction-level advisory lock on a 64-bit hash of the names: released at commit
        # or rollback. Two names sharing a hash only wait for each other.
        digest = hashlib.blake2b("\x1f".join((scope, *parts)).encode(), digest_size=8).digest()
        cur.execute("SELECT pg_advisory_xact_lock(?)", (int.from_bytes(digest, signed=True),))

    def _table_exists(self, cur: Cursor, table: str) -> bool:
        row = cur.execute("SELECT to_regclass(?) IS NOT NULL", (table,)).fetchone()
        return bool(row[0])

    def _store_chunk(self, cur: Cursor, tenant_id: str, rows: list[tuple]) -> int:
        if not rows:
            return 0
        # One statement per chunk: the columns go as arrays and RETURNING names the new rows.
        columns = [list(col) for col in zip(*rows, strict=True)]
        assert isinstance(cur, _PgCursor)
        cur._cursor.execute(_BULK_INSERT, columns)
        inserted = sorted(cur._cursor.fetchall())  # by interaction id: recording order
        self._apply_summaries(cur, tenant_id, [tuple(r[1:8]) for r in inserted])
        # (customer, offer, channel, kind, outcome, occurred at, classification)
        self._count_contacts(
            cur, tenant_id, [(r[1], r[2], r[8], r[5], r[3], r[7], r[4]) for r in inserted]
        )
        return len(inserted)

    def _upsert_json_documents(self, cur: Cursor, rows: Iterable[Sequence[Any]]) -> int:
        assert isinstance(cur, _PgCursor)
        written = 0
        for batch in _batches(rows, 10_000):
            try:
                cur._cursor.executemany(_UPSERT_JSON_DOCUMENT, batch)
            except pg_errors.InvalidTextRepresentation as exc:
                raise InvalidInputError(
                    f"a document text is not valid JSON ({exc.diag.message_detail or exc}): "
                    "encode each document as one JSON value"
                ) from exc
            written += len(batch)
        return written

    def _is_integrity_error(self, exc: BaseException) -> bool:
        return isinstance(exc, psycopg.IntegrityError)

    def close(self) -> None:
        self._pool.close()
