"""Plugin documents and leases of the SQL store: JSON documents by namespace, tenant and key,
and the named leases (``try_lock``) that let one worker at a time run a job."""

from __future__ import annotations

import json
import uuid
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from nextbest.store.core_sql import Cursor, SqlCore, batched, check_id, check_ids, json_text
from nextbest.store.errors import InvalidInputError

_IN_BATCH = 500
_UPSERT_DOCUMENT = (
    "INSERT INTO documents (namespace, tenant_id, doc_key, document, updated_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (namespace, tenant_id, doc_key) DO UPDATE "
    "SET document = excluded.document, updated_at = excluded.updated_at"
)


class _Lease:
    """A lease row in ``locks`` held by one owner until it expires or is released."""

    def __init__(self, store: SqlCore, name: str, owner: str) -> None:
        self.name = name
        self._store = store
        self._owner = owner
        self._held = True

    def renew(self, ttl_seconds: float) -> bool:
        expires = self._store.clock() + ttl_seconds
        with self._store._transaction() as cur:
            cur.execute(
                "UPDATE locks SET expires_at = ? WHERE name = ? AND owner = ?",
                (expires, self.name, self._owner),
            )
            self._held = cur.rowcount == 1
        return self._held

    def release(self) -> None:
        if self._held:
            with self._store._transaction() as cur:
                cur.execute(
                    "DELETE FROM locks WHERE name = ? AND owner = ?", (self.name, self._owner)
                )
            self._held = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class DocumentsSql(SqlCore):
    """Plugin documents and leases."""

    # -- plugin documents -------------------------------------------------------------------
    @abstractmethod
    def _upsert_json_documents(self, cur: Cursor, rows: Iterable[Sequence[Any]]) -> int:
        """Upsert (namespace, tenant_id, doc_key, JSON text, updated_at) rows, skipping (or
        raising InvalidInputError for) text that is not JSON; return the number written."""

    def _write_documents(
        self,
        cur: Cursor,
        namespace: str,
        tenant_id: str,
        rows: Iterable[Sequence[Any]],
        written: Callable[[], int],
        contains: Callable[[str], bool],
        replace: bool,
        validate_json: bool,
    ) -> None:
        """Upsert document rows; with ``replace``, then delete the tenant's other documents of
        the namespace. Updating rows in place and deleting only the leftovers is much cheaper
        than deleting the whole namespace first when a batch rewrites the same keys (the usual
        case), and the result inside the transaction is the same."""
        if validate_json:
            valid = self._upsert_json_documents(cur, rows)
            if valid != written():
                raise InvalidInputError(
                    f"{written() - valid} of {written()} texts for {namespace!r} are not valid "
                    "JSON: encode each document as one JSON value"
                )
        else:
            cur.executemany(_UPSERT_DOCUMENT, rows)
        if not replace:
            return
        where = "WHERE namespace = ? AND tenant_id = ?"
        if written() == 0:
            cur.execute(f"DELETE FROM documents {where}", (namespace, tenant_id))
            return
        stored = cur.execute(
            f"SELECT count(*) FROM documents {where}", (namespace, tenant_id)
        ).fetchone()[0]
        if stored == written():
            return  # every stored key was just written: nothing is left over
        keys = cur.execute(f"SELECT doc_key FROM documents {where}", (namespace, tenant_id))
        stale = [key for (key,) in keys.fetchall() if not contains(key)]
        for batch in batched(stale, _IN_BATCH):
            cur.execute(
                f"DELETE FROM documents {where} AND doc_key IN ({', '.join('?' for _ in batch)})",
                (namespace, tenant_id, *batch),
            )

    def put_documents(
        self,
        namespace: str,
        tenant_id: str,
        documents: Mapping[str, Any],
        replace: bool = False,
    ) -> int:
        check_id("namespace", namespace)
        now = self.clock()
        count = 0

        def rows() -> Iterator[tuple[str, str, str, str, float]]:
            # Serialised lazily inside the transaction: a bad document aborts the whole write.
            nonlocal count
            for key, document in documents.items():
                check_id("document key", key)
                text = json_text(f"document {key!r} in {namespace!r}", document, "document")
                count += 1
                yield (namespace, tenant_id, key, text, now)

        with self._transaction() as cur:
            self._write_documents(
                cur,
                namespace,
                tenant_id,
                rows(),
                lambda: count,
                documents.__contains__,
                replace,
                validate_json=False,
            )
        return count

    def put_documents_json(
        self,
        namespace: str,
        tenant_id: str,
        keys: Sequence[str],
        json_texts: Iterable[str],
        replace: bool = False,
    ) -> int:
        check_id("namespace", namespace)
        check_ids("document key", keys)
        distinct = set(keys)
        if len(distinct) != len(keys):
            raise InvalidInputError(
                f"{len(keys) - len(distinct)} document keys are repeated: give each key once"
            )
        now = self.clock()
        # strict: a text count that differs from the key count fails the write.
        rows = (
            (namespace, tenant_id, key, text, now)
            for key, text in zip(keys, json_texts, strict=True)
        )
        try:
            with self._transaction() as cur:
                self._write_documents(
                    cur,
                    namespace,
                    tenant_id,
                    rows,
                    lambda: len(keys),
                    distinct.__contains__,
                    replace,
                    validate_json=True,
                )
        except ValueError as exc:
            if "zip()" not in str(exc):
                raise
            raise InvalidInputError(
                f"put_documents_json got {len(keys)} keys but a different number of JSON texts"
            ) from exc
        return len(keys)

    def get_document(self, namespace: str, tenant_id: str, key: str) -> Any | None:
        check_id("document key", key)
        with self._read() as cur:
            row = cur.execute(
                "SELECT document FROM documents WHERE namespace = ? AND tenant_id = ? "
                "AND doc_key = ?",
                (namespace, tenant_id, key),
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def get_documents(
        self, namespace: str, tenant_id: str, keys: Iterable[str] | None = None
    ) -> dict[str, Any]:
        base = "SELECT doc_key, document FROM documents WHERE namespace = ? AND tenant_id = ?"
        found: dict[str, Any] = {}
        with self._read() as cur:
            if keys is None:
                batches: Iterable[list[str]] = [[]]
            else:
                wanted = list(dict.fromkeys(keys))
                check_ids("document key", wanted)
                batches = batched(wanted, _IN_BATCH)
            for batch in batches:
                if keys is None:
                    rows = cur.execute(base + " ORDER BY doc_key", (namespace, tenant_id))
                else:
                    rows = cur.execute(
                        base + f" AND doc_key IN ({', '.join('?' for _ in batch)})",
                        (namespace, tenant_id, *batch),
                    )
                for key, text in rows.fetchall():
                    found[key] = json.loads(text)
        return found

    def delete_documents(
        self, namespace: str, tenant_id: str, keys: Iterable[str] | None = None
    ) -> int:
        base = "DELETE FROM documents WHERE namespace = ? AND tenant_id = ?"
        deleted = 0
        with self._transaction() as cur:
            if keys is None:
                cur.execute(base, (namespace, tenant_id))
                return cur.rowcount
            wanted = list(dict.fromkeys(keys))
            check_ids("document key", wanted)
            for batch in batched(wanted, _IN_BATCH):
                cur.execute(
                    base + f" AND doc_key IN ({', '.join('?' for _ in batch)})",
                    (namespace, tenant_id, *batch),
                )
                deleted += cur.rowcount
        return deleted

    # -- locks ------------------------------------------------------------------------------
    def try_lock(self, name: str, ttl_seconds: float = 300.0) -> _Lease | None:
        check_id("lock name", name)
        if ttl_seconds < 0:
            raise InvalidInputError("ttl_seconds must be >= 0")
        owner = uuid.uuid4().hex
        now = self.clock()
        with self._transaction() as cur:
            row = cur.execute(
                "INSERT INTO locks AS l (name, owner, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                "expires_at = excluded.expires_at WHERE l.expires_at <= ? RETURNING owner",
                (name, owner, now + ttl_seconds, now),
            ).fetchone()
        if row is None or row[0] != owner:
            return None
        return _Lease(self, name, owner)
