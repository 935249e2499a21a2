"""SQLite store (the embedded default): stdlib ``sqlite3``, WAL journal, one connection per thread.

Write transactions start with ``BEGIN IMMEDIATE``, which takes SQLite's single writer lock up
front (waiting up to the busy timeout), so concurrent writers queue instead of failing part-way
and reads keep going under WAL.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from nextbest.store import summaries
from nextbest.store.errors import SchemaNotReadyError, StoreConfigurationError
from nextbest.store.sql import INTERACTION_COLUMNS, Cursor, SqlStore

_INSERT_INTERACTION = (
    f"INSERT INTO interactions ({', '.join(INTERACTION_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in INTERACTION_COLUMNS)}) "
    "ON CONFLICT (tenant_id, idempotency_key) DO NOTHING"
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
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable against application crashes under WAL; a power loss may drop the
        # last transactions but never corrupts the database.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        with self._connections_lock:
            self._connections.append(conn)
        self._local.connection = conn
        return conn

    @contextmanager
    def _begin(self, mode: str) -> Iterator[Cursor]:
        conn = self._connection()
        conn.execute(f"BEGIN {mode}")
        try:
            yield conn.cursor()
        except sqlite3.OperationalError as exc:
            self._rollback(conn)
            missing = _schema_error(exc)
            if missing is not None:
                raise missing from exc
            raise
        except BaseException:
            self._rollback(conn)
            raise
        conn.execute("COMMIT")

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

    def _table_exists(self, cur: Cursor, table: str) -> bool:
        row = cur.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        return row is not None

    def _insert_interactions(self, cur: Cursor, rows: list[tuple]) -> list[summaries.Event]:
        # BEGIN IMMEDIATE makes this the only writer and AUTOINCREMENT ids only grow, so the new
        # rows are exactly those above the previous maximum id.
        before = cur.execute("SELECT coalesce(max(interaction_id), 0) FROM interactions").fetchone()
        cur.executemany(_INSERT_INTERACTION, rows)
        return cur.execute(
            "SELECT customer_id, offer_id, outcome, classification, kind, value, occurred_at "
            "FROM interactions WHERE interaction_id > ? ORDER BY interaction_id",
            (before[0],),
        ).fetchall()

    def _is_integrity_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError)

    def close(self) -> None:
        self._closed = True
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()
