"""SQLite store (the embedded default): stdlib ``sqlite3``, WAL journal, one connection per thread.

Write transactions start with ``BEGIN IMMEDIATE``, which takes SQLite's single writer lock up
front (waiting up to the busy timeout), so concurrent writers queue instead of failing part-way
and reads keep going under WAL.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from nextbest.store import summaries
from nextbest.store.contacts_sql import ADD_OUTCOMES_SINCE, contact_of
from nextbest.store.core_sql import Cursor
from nextbest.store.errors import (
    InvalidInputError,
    SchemaNotReadyError,
    StoreBusyError,
    StoreConfigurationError,
)
from nextbest.store.interactions_sql import INTERACTION_COLUMNS
from nextbest.store.outcomes import CONVERSION
from nextbest.store.sql import SqlStore

MMAP_BYTES = 256 * 1024 * 1024
CACHE_KIB = 64 * 1024
_INSERT_INTERACTION = (
    f"INSERT INTO interactions ({', '.join(INTERACTION_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in INTERACTION_COLUMNS)}) "
    "ON CONFLICT (tenant_id, idempotency_key) DO NOTHING"
)


# Numbered parameters let json_valid() read the bound text without binding it twice; rows
# with invalid JSON are skipped and counted by the caller.
_UPSERT_JSON_DOCUMENT = (
    "INSERT INTO documents (namespace, tenant_id, doc_key, document, updated_at) "
    "SELECT ?1, ?2, ?3, ?4, ?5 WHERE json_valid(?4) "
    "ON CONFLICT (namespace, tenant_id, doc_key) DO UPDATE "
    "SET document = excluded.document, updated_at = excluded.updated_at"
)


def _summarise_sql(table: str, keys: dict[str, str], where: str = "") -> str:
    """INSERT ... SELECT folding the interactions with id > ? into ``table``; ``keys`` maps
    each key column to its expression. The last outcome is the one with the latest time (then
    the highest id), like the Python fold in ``summaries``."""
    names = ", ".join(keys)
    exprs = ", ".join(f"{expr} AS {name}" for name, expr in keys.items())
    response = "kind <> 'impression' AND classification"
    return (
        f"INSERT INTO {table} AS s ({', '.join(summaries.summary_columns(table))}) "
        f"SELECT tenant_id, {names}, count(*), sum(kind = 'impression'), "
        f"sum({response} = 'positive'), sum({response} = 'negative'), "
        f"sum({response} NOT IN ('positive', 'negative')), "
        f"sum(outcome = '{CONVERSION}'), total(value), min(occurred_at), max(occurred_at), "
        "max(CASE WHEN latest = 1 THEN outcome END) "
        f"FROM (SELECT tenant_id, {exprs}, kind, classification, outcome, value, occurred_at, "
        f"row_number() OVER (PARTITION BY tenant_id, {', '.join(keys.values())} "
        "ORDER BY occurred_at DESC, interaction_id DESC) AS latest "
        f"FROM interactions WHERE interaction_id > ?{where}) "
        # WHERE true: SQLite needs it to parse ON CONFLICT after a SELECT.
        f"WHERE true GROUP BY tenant_id, {names} {summaries.merge_clause(table)}"
    )


_SUMMARISE_NEW_ROWS = (
    _summarise_sql("customer_summaries", {"customer_id": "customer_id"}),
    _summarise_sql(
        "customer_offer_summaries",
        {"customer_id": "customer_id", "offer_id": "offer_id"},
        " AND offer_id IS NOT NULL",
    ),
    # date(..., 'unixepoch') is the UTC day as YYYY-MM-DD, like summaries.day_of.
    _summarise_sql(
        "customer_daily_summaries",
        {"customer_id": "customer_id", "day": "date(occurred_at, 'unixepoch')"},
    ),
)


def _schema_error(exc: sqlite3.OperationalError) -> SchemaNotReadyError | None:
    if "no such table" in str(exc):
        return SchemaNotReadyError(
            f"the database schema is missing ({exc}): run `nextbest db upgrade`"
        )
    return None


class SqliteStore(SqlStore):
    """A store in one SQLite file. Safe for many threads; several processes may share the file."""

    dialect = "sqlite"

    def __init__(
        self, path: str | Path, *, pepper: bytes | None = None, busy_timeout: float = 30.0
    ) -> None:
        path = Path(path)
        if str(path) == ":memory:":
            raise StoreConfigurationError(
                "sqlite:///:memory: is not supported (each thread would see its own empty "
                "database): use a file path, e.g. sqlite:///nextbest.db"
            )
        if not path.parent.is_dir():
            raise StoreConfigurationError(
                f"directory {path.parent} does not exist: create it or choose another path"
            )
        self.path = path
        self.url = f"sqlite:///{path}"
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._closed = False
        super().__init__(pepper)

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if conn is not None:
            return conn
        if self._closed:
            raise StoreConfigurationError(f"{self!r} is closed")
        # isolation_level=None: we issue BEGIN/COMMIT ourselves.
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout,
            isolation_level=None,
            check_same_thread=False,  # only close() touches it from another thread
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        self._use_wal(conn)
        # NORMAL is durable against application crashes under WAL; a power loss may drop the
        # last transactions but never corrupts the database.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        # Reads through the OS page cache (shared by every connection and process) and a larger
        # private cache for the pages a bulk transaction dirties; both grow only as needed.
        conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        conn.execute("PRAGMA temp_store = MEMORY")
        with self._connections_lock:
            self._connections.append(conn)
        self._local.connection = conn
        return conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL (persistent). The switch needs a moment of exclusive access and
        SQLite reports "locked" at once instead of waiting, so retry until the busy timeout."""
        deadline = time.monotonic() + self._busy_timeout
        while conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            try:
                conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    @contextmanager
    def _begin(self, mode: str) -> Iterator[Cursor]:
        try:
            conn = self._connection()  # (switching a new file to WAL may wait on a lock too)
            conn.execute(f"BEGIN {mode}")
        except sqlite3.OperationalError as exc:
            raise self._translated(exc) from exc
        try:
            yield conn.cursor()
        except sqlite3.OperationalError as exc:
            self._rollback(conn)
            raise self._translated(exc) from exc
        except (OverflowError, UnicodeEncodeError) as exc:
            # Raised by sqlite3 while binding a parameter: an int beyond 64 bits, text with a
            # lone surrogate. The store checks its arguments first; this is the last line.
            self._rollback(conn)
            raise InvalidInputError(f"SQLite cannot store a value: {exc}") from exc
        except BaseException:
            self._rollback(conn)
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            self._rollback(conn)
            raise self._translated(exc) from exc

    def _translated(self, exc: sqlite3.OperationalError) -> Exception:
        """A missing table as SchemaNotReadyError, a database that stayed locked for the whole
        busy timeout as StoreBusyError, anything else unchanged."""
        missing = _schema_error(exc)
        if missing is not None:
            return missing
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF in (
            sqlite3.SQLITE_BUSY,
            sqlite3.SQLITE_LOCKED,
        ):
            return StoreBusyError(
                f"the SQLite database stayed locked by another writer for {self._busy_timeout:g} "
                f"s ({exc}): retry later"
            )
        return exc

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:  # SQLite may already have rolled back (e.g. disk full)
            conn.execute("ROLLBACK")

    def _transaction(self) -> AbstractContextManager[Cursor]:
        return self._begin("IMMEDIATE")

    def _migration_transaction(self) -> AbstractContextManager[Cursor]:
        # The write lock of BEGIN IMMEDIATE serialises racing upgrades.
        return self._begin("IMMEDIATE")

    @contextmanager
    def _read(self) -> Iterator[Cursor]:
        # A deferred transaction gives multi-statement reads one consistent snapshot.
        with self._begin("DEFERRED") as cur:
            yield cur

    def _run_script(self, cur: Cursor, sql: str) -> None:
        # executescript() would commit the open transaction, so run statement by statement.
        statement = ""
        for line in sql.splitlines(keepends=True):
            statement += line
            if sqlite3.complete_statement(statement):
                cur.execute(statement)
                statement = ""
        if statement.strip() and not all(
            part.strip().startswith("--") or not part.strip() for part in statement.splitlines()
        ):
            raise SchemaNotReadyError(f"incomplete statement in migration: {statement!r}")

    def _lock(self, cur: Cursor, scope: str, *parts: str) -> None:
        """Nothing to take: a write transaction starts with BEGIN IMMEDIATE, which already
        holds the database's one write lock until it ends."""

    def _table_exists(self, cur: Cursor, table: str) -> bool:
        row = cur.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        return row is not None

    def _store_chunk(self, cur: Cursor, tenant_id: str, rows: list[tuple]) -> int:
        # BEGIN IMMEDIATE makes this the only writer and AUTOINCREMENT ids only grow, so the new
        # rows are exactly those above the previous maximum id. When some rows were duplicates
        # the new ones are folded in SQL; the shared test suite checks every path agrees.
        before = cur.execute("SELECT coalesce(max(interaction_id), 0) FROM interactions").fetchone()
        cur.executemany(_INSERT_INTERACTION, rows)
        row = cur.execute(
            "SELECT count(*) FROM interactions WHERE interaction_id > ?", (before[0],)
        ).fetchone()
        new = int(row[0])
        if new == len(rows) and rows:
            # Every row was new (the usual bulk import): aggregate the rows in hand with numpy,
            # several times faster than the SQL fold below.
            columns = list(zip(*rows, strict=True))
            for table, upserts in summaries.aggregate_columns(
                tenant_id, *columns[1:3], *columns[4:9]
            ).items():
                if upserts:
                    cur.executemany(summaries.upsert_sql(table), upserts)
            self._count_contacts(cur, tenant_id, map(contact_of, rows), outcomes=False)
            cur.execute(ADD_OUTCOMES_SINCE, (before[0],))
        elif new:
            for sql in _SUMMARISE_NEW_ROWS:
                cur.execute(sql, (before[0],))
            added = cur.execute(
                "SELECT customer_id, offer_id, channel, kind, outcome, occurred_at, classification "
                "FROM interactions WHERE interaction_id > ?",
                (before[0],),
            ).fetchall()
            self._count_contacts(cur, tenant_id, map(tuple, added), outcomes=False)
            cur.execute(ADD_OUTCOMES_SINCE, (before[0],))
        return new

    def _upsert_json_documents(self, cur: Cursor, rows: Iterable[Sequence[Any]]) -> int:
        cur.executemany(_UPSERT_JSON_DOCUMENT, rows)
        return cur.rowcount

    def _is_integrity_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError)

    def close(self) -> None:
        self._closed = True
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()
