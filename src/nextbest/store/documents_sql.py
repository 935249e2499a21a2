"""Plugin documents and leases of the SQL store: JSON documents by namespace, tenant and key,
and the named leases (``try_lock``) that let one worker at a time run a job.

Every document is checked before it is written: :func:`~nextbest.store.limits.document_problem`
for the documents ``put_documents`` encodes; for the texts ``put_documents_json`` receives
already encoded, C-speed tests that let the usual text through (few brackets, no surrogate, no
``\\uD...`` escape, no NUL) and a full parse and check of any other, with the JSON syntax
left to the database.
"""

from __future__ import annotations

import json
import math
import uuid
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice, repeat
from types import TracebackType
from typing import Any, Self

from nextbest.store.core_sql import (
    LONE_SURROGATE,
    Cursor,
    SqlCore,
    batched,
    check_id,
    check_ids,
    check_tenant_id,
    document_field,
    json_text,
    shown,
)
from nextbest.store.errors import InvalidInputError
from nextbest.store.limits import MAX_DOCUMENT_DEPTH, document_problem

_IN_BATCH = 500
_END = object()
# Pre-encoded documents are checked this many at a time (see suspect_texts).
_CHECK_CHUNK = 4096
#: A JSON text shorter than this cannot nest deeper than MAX_DOCUMENT_DEPTH (each level takes
#: an opening and a closing bracket).
_SHALLOW_TEXT = 2 * (MAX_DOCUMENT_DEPTH + 1)
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
        expires = self._store.clock() + check_ttl(ttl_seconds)

        def renew(cur: Cursor) -> bool:
            cur.execute(
                "UPDATE locks SET expires_at = ? WHERE name = ? AND owner = ?",
                (expires, self.name, self._owner),
            )
            return cur.rowcount == 1

        self._held = self._store._write(renew)
        return self._held

    def release(self) -> None:
        if self._held:
            self._store._write(
                lambda cur: cur.execute(
                    "DELETE FROM locks WHERE name = ? AND owner = ?", (self.name, self._owner)
                )
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


def check_ttl(ttl_seconds: object) -> float:
    """A lease's time to live: a finite number of seconds >= 0, else InvalidInputError."""
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int | float):
        seconds = math.nan
    else:
        try:
            seconds = float(ttl_seconds)
        except OverflowError:  # an int beyond the float range
            seconds = math.inf
    if not (math.isfinite(seconds) and seconds >= 0):
        raise InvalidInputError(
            f"ttl_seconds must be a finite number >= 0, got {shown(ttl_seconds)}",
            field="ttl_seconds",
        )
    return seconds


def json_text_problem(text: object) -> str | None:
    """Why a pre-encoded document text cannot be stored, or None when it passes the checks
    made here (its JSON syntax is the database's to check).

    The usual text is let through by C-speed tests: at most MAX_DOCUMENT_DEPTH opening
    brackets (or too short to hold more), so it cannot nest deeper; no NUL (PostgreSQL text
    cannot hold it and JSON allows it nowhere raw); no lone surrogate and no ``\\uD...``
    escape, which could decode to one. Any other text is parsed and checked in full with
    :func:`document_problem`.
    """
    if type(text) is not str:
        return f"must be a str of JSON, not {type(text).__name__}"
    if (
        len(text) < _SHALLOW_TEXT or text.count("[") + text.count("{") <= MAX_DOCUMENT_DEPTH
    ) and "\x00" not in text:
        # (A backslash is rare and found at memchr speed; only then look for the escapes.)
        escapes = "\\" in text and ("\\ud" in text or "\\uD" in text)
        if not escapes and (text.isascii() or LONE_SURROGATE.search(text) is None):
            return None
    try:
        document = json.loads(text)
    except RecursionError:
        return f"is nested more than {MAX_DOCUMENT_DEPTH} levels deep"
    except ValueError as exc:
        return f"is not valid JSON ({exc}): encode each document as one JSON value"
    return document_problem(document)


def suspect_texts(texts: Sequence[object]) -> Sequence[int]:
    """The positions of the ``texts`` that :func:`json_text_problem` must judge one by one:
    none when the chunk as a whole is plain (all str, ASCII, no NUL, no backslash, and no text
    can open more than MAX_DOCUMENT_DEPTH brackets), else every one. A batch of documents a
    plugin encoded (a million records) is cleared by a few C-speed passes."""
    if set(map(type, texts)) <= {str}:
        strings: Sequence[str] = texts  # type: ignore[assignment]
        joined = "".join(strings)
        if joined.isascii() and "\x00" not in joined and "\\" not in joined:
            curly = max(map(str.count, strings, repeat("{")), default=0)
            square = max(map(str.count, strings, repeat("[")), default=0)
            if curly + square <= MAX_DOCUMENT_DEPTH:
                return ()
    return range(len(texts))


def document_update_keys(keys: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (namespace, key) pairs of an update, checked, once each, in the one lock order
    every writer uses (so two updates never wait for each other in a circle)."""
    wanted = sorted(set(keys))
    for namespace, key in wanted:
        check_id("namespace", namespace)
        check_id("document key", key)
    return wanted


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
        check_tenant_id(tenant_id)
        if not isinstance(documents, Mapping):
            raise InvalidInputError(
                "documents must be a mapping of document keys to documents", field="documents"
            )
        now = self.clock()

        def write(cur: Cursor) -> int:
            count = 0

            def rows() -> Iterator[tuple[str, str, str, str, float]]:
                # Checked and serialised lazily inside the transaction: a bad document aborts
                # the whole write.
                nonlocal count
                for key, document in documents.items():
                    check_id("document key", key)
                    text = json_text(f"document {key!r} in {namespace!r}", document, "document")
                    count += 1
                    yield (namespace, tenant_id, key, text, now)

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

        return self._write(write)

    def put_documents_json(
        self,
        namespace: str,
        tenant_id: str,
        keys: Sequence[str],
        json_texts: Iterable[str],
        replace: bool = False,
    ) -> int:
        check_id("namespace", namespace)
        check_tenant_id(tenant_id)
        check_ids("document key", keys)
        distinct = set(keys)
        if len(distinct) != len(keys):
            raise InvalidInputError(
                f"{len(keys) - len(distinct)} document keys are repeated: give each key once",
                field="document key",
            )
        now = self.clock()

        def rows() -> Iterator[tuple[str, str, str, str, float]]:
            texts = iter(json_texts)
            for start in range(0, len(keys), _CHECK_CHUNK):
                chunk_keys = keys[start : start + _CHECK_CHUNK]
                chunk = list(islice(texts, len(chunk_keys)))
                if len(chunk) != len(chunk_keys):
                    raise InvalidInputError(
                        f"put_documents_json got {len(keys)} keys but a different number of "
                        f"JSON texts (only {start + len(chunk)})",
                        field="json_texts",
                    )
                for i in suspect_texts(chunk):
                    problem = json_text_problem(chunk[i])
                    if problem is not None:
                        raise InvalidInputError(
                            f"the JSON text of document {chunk_keys[i]!r} in {namespace!r} "
                            f"{problem}",
                            field=document_field("document", problem),
                        )
                pairs = zip(chunk_keys, chunk, strict=True)  # (lengths checked above)
                yield from ((namespace, tenant_id, k, t, now) for k, t in pairs)
            if next(texts, _END) is not _END:
                raise InvalidInputError(
                    f"put_documents_json got {len(keys)} keys but a different number of JSON "
                    f"texts (more than {len(keys)})",
                    field="json_texts",
                )

        def write(cur: Cursor) -> int:
            self._write_documents(
                cur,
                namespace,
                tenant_id,
                rows(),
                lambda: len(keys),
                distinct.__contains__,
                replace,
                validate_json=True,
            )
            return len(keys)

        if iter(json_texts) is json_texts:  # an iterator is read once: not run again
            return self._write(write, attempts=1)
        return self._write(write)

    def update_documents(
        self,
        tenant_id: str,
        keys: Iterable[tuple[str, str]],
        update: Callable[[dict[tuple[str, str], Any]], Mapping[tuple[str, str], Any]],
    ) -> dict[tuple[str, str], Any]:
        check_tenant_id(tenant_id)
        wanted = document_update_keys(keys)
        now = self.clock()
        return self._write(
            lambda cur: self._update_documents_in(cur, tenant_id, wanted, update, now)
        )

    def _update_documents_in(
        self,
        cur: Cursor,
        tenant_id: str,
        wanted: list[tuple[str, str]],
        update: Callable[[dict[tuple[str, str], Any]], Mapping[tuple[str, str], Any]],
        now: float,
    ) -> dict[tuple[str, str], Any]:
        """:meth:`update_documents` in the caller's transaction (``wanted``: checked keys in
        lock order, from :func:`document_update_keys`)."""
        current: dict[tuple[str, str], Any] = {}
        for namespace, key in wanted:
            self._lock(cur, "document", namespace, tenant_id, key)
        # then one read of them all (after every lock, so what it sees is what they guard)
        for batch in batched(wanted, _IN_BATCH // 2):
            pairs = " OR ".join("(namespace = ? AND doc_key = ?)" for _ in batch)
            rows = cur.execute(
                f"SELECT namespace, doc_key, document FROM documents WHERE tenant_id = ? "
                f"AND ({pairs})",
                (tenant_id, *(part for pair in batch for part in pair)),
            ).fetchall()
            for namespace, key, text in rows:
                current[(namespace, key)] = json.loads(text)
        new = dict(update(current))
        stray = sorted(set(new) - set(wanted))
        if stray:
            raise InvalidInputError(
                f"update_documents: the update returned keys it was not given: {stray[:5]}",
                field="document key",
            )
        cur.executemany(
            _UPSERT_DOCUMENT,
            [
                (ns, tenant_id, key, json_text(f"document {key!r} in {ns!r}", doc), now)
                for (ns, key), doc in new.items()
            ],
        )
        return new

    def get_document(self, namespace: str, tenant_id: str, key: str) -> Any | None:
        check_id("namespace", namespace)
        check_tenant_id(tenant_id)
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
        check_id("namespace", namespace)
        check_tenant_id(tenant_id)
        base = "SELECT doc_key, document FROM documents WHERE namespace = ? AND tenant_id = ?"
        batches: Iterable[list[str]] = [[]]
        if keys is not None:
            wanted = _wanted_keys(keys)
            batches = batched(wanted, _IN_BATCH)
        found: dict[str, Any] = {}
        with self._read() as cur:
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
        check_id("namespace", namespace)
        check_tenant_id(tenant_id)
        base = "DELETE FROM documents WHERE namespace = ? AND tenant_id = ?"
        wanted = None if keys is None else _wanted_keys(keys)

        def delete(cur: Cursor) -> int:
            if wanted is None:
                cur.execute(base, (namespace, tenant_id))
                return cur.rowcount
            deleted = 0
            for batch in batched(wanted, _IN_BATCH):
                cur.execute(
                    base + f" AND doc_key IN ({', '.join('?' for _ in batch)})",
                    (namespace, tenant_id, *batch),
                )
                deleted += cur.rowcount
            return deleted

        return self._write(delete)

    # -- locks ------------------------------------------------------------------------------
    def try_lock(self, name: str, ttl_seconds: float = 300.0) -> _Lease | None:
        check_id("lock name", name)
        ttl = check_ttl(ttl_seconds)
        owner = uuid.uuid4().hex
        now = self.clock()

        def take(cur: Cursor) -> Any:
            return cur.execute(
                "INSERT INTO locks AS l (name, owner, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                "expires_at = excluded.expires_at WHERE l.expires_at <= ? RETURNING owner",
                (name, owner, now + ttl, now),
            ).fetchone()

        row = self._write(take)
        if row is None or row[0] != owner:
            return None
        return _Lease(self, name, owner)


def _wanted_keys(keys: Iterable[str]) -> list[str]:
    """The distinct keys asked for, checked (a single string is refused, not split)."""
    if isinstance(keys, str):
        raise InvalidInputError(
            "document keys must be a list of keys, not one string", field="document key"
        )
    wanted = list(dict.fromkeys(keys))
    check_ids("document key", wanted)
    return wanted
