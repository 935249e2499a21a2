"""The catalog of the SQL store: offers and versioned flows (save, publish, list).

Concurrent writers: creating an offer is one insert that does nothing when the id is taken, so of
several racing creates exactly one wins. Saves and publishes of one flow take a per-flow lock
first (``_lock``: an advisory lock on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already runs one
writer at a time), so racing saves get consecutive versions and racing publishes leave exactly
one published version.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from nextbest.store.base import FlowInfo, FlowVersion, JSONDict, Page, from_epoch
from nextbest.store.core_sql import (
    Cursor,
    SqlCore,
    check_id,
    check_int,
    check_tenant_id,
    decode_cursor,
    json_text,
    make_page,
    page_limit,
)
from nextbest.store.errors import (
    FlowNotFoundError,
    InvalidInputError,
    OfferExistsError,
    StoreBusyError,
)
from nextbest.store.limits import MAX_FLOW_VERSION

_FLOW_COLUMNS = "flow_key, version, document, created_at, published, published_at"
_INSERT_OFFER = (
    "INSERT INTO offers (tenant_id, offer_id, document, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, offer_id) DO NOTHING"
)
#: put_offer's insert-or-update loop: a row deleted between the two statements is inserted again.
_PUT_OFFER_ATTEMPTS = 3


def _offer_text(offer: Mapping[str, Any]) -> tuple[str, str]:
    """The offer's id and its document as checked JSON text."""
    if not isinstance(offer, Mapping):
        raise InvalidInputError("an offer must be a JSON object", field="offer")
    offer_id = check_id('offer["id"]', offer.get("id"))
    return offer_id, json_text(f"offer {offer_id!r}", dict(offer), "offer")


def _check_version(version: object) -> int:
    return check_int("version", version, 1, MAX_FLOW_VERSION)


class CatalogSql(SqlCore):
    """Offers and flows."""

    # -- offers -----------------------------------------------------------------------------
    def create_offer(self, tenant_id: str, offer: Mapping[str, Any]) -> None:
        check_tenant_id(tenant_id)
        offer_id, document = _offer_text(offer)
        now = self.clock()

        def create(cur: Cursor) -> bool:
            self._require_tenant(cur, tenant_id)
            cur.execute(_INSERT_OFFER, (tenant_id, offer_id, document, now, now))
            return cur.rowcount == 1

        if not self._write(create):
            raise OfferExistsError(
                f"offer {offer_id!r} already exists: replace it with PUT (put_offer)",
                offer_id=offer_id,
            )

    def put_offer(self, tenant_id: str, offer: Mapping[str, Any]) -> bool:
        check_tenant_id(tenant_id)
        offer_id, document = _offer_text(offer)
        now = self.clock()

        def put(cur: Cursor) -> bool:
            self._require_tenant(cur, tenant_id)
            # Insert, else update: each statement sees the rows other writers committed, so
            # of several racing puts of a new id exactly one reports it created.
            for _ in range(_PUT_OFFER_ATTEMPTS):
                cur.execute(_INSERT_OFFER, (tenant_id, offer_id, document, now, now))
                if cur.rowcount == 1:
                    return True
                cur.execute(
                    "UPDATE offers SET document = ?, updated_at = ? "
                    "WHERE tenant_id = ? AND offer_id = ?",
                    (document, now, tenant_id, offer_id),
                )
                if cur.rowcount == 1:
                    return False
            raise StoreBusyError(
                f"offer {offer_id!r} was created and deleted concurrently "
                f"{_PUT_OFFER_ATTEMPTS} times while it was being stored: retry"
            )

        return self._write(put)

    def get_offer(self, tenant_id: str, offer_id: str) -> JSONDict | None:
        check_tenant_id(tenant_id)
        check_id("offer id", offer_id)
        with self._read() as cur:
            row = cur.execute(
                "SELECT document FROM offers WHERE tenant_id = ? AND offer_id = ?",
                (tenant_id, offer_id),
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def list_offers(
        self, tenant_id: str, cursor: str | None = None, limit: int = 50
    ) -> Page[JSONDict]:
        check_tenant_id(tenant_id)
        limit = page_limit(limit)
        after = decode_cursor(cursor)
        with self._read() as cur:
            rows = cur.execute(
                "SELECT offer_id, document FROM offers WHERE tenant_id = ? AND offer_id > ? "
                "ORDER BY offer_id LIMIT ?",
                (tenant_id, after, limit + 1),
            ).fetchall()
        return make_page(rows, limit, lambda r: json.loads(r[1]))

    def delete_offer(self, tenant_id: str, offer_id: str) -> bool:
        check_tenant_id(tenant_id)
        check_id("offer id", offer_id)

        def delete(cur: Cursor) -> bool:
            cur.execute(
                "DELETE FROM offers WHERE tenant_id = ? AND offer_id = ?", (tenant_id, offer_id)
            )
            return cur.rowcount == 1

        return self._write(delete)

    # -- flows ------------------------------------------------------------------------------
    def _lock_flow(self, cur: Cursor, tenant_id: str, key: str) -> None:
        self._lock(cur, "flow", tenant_id, key)

    def save_flow(self, tenant_id: str, key: str, document: Mapping[str, Any]) -> int:
        check_tenant_id(tenant_id)
        check_id("flow key", key)
        if not isinstance(document, Mapping):
            raise InvalidInputError(f"flow {key!r} must be a JSON object", field="flow")
        text = json_text(f"flow {key!r}", dict(document), "flow")

        def save(cur: Cursor) -> int:
            self._lock_flow(cur, tenant_id, key)
            self._require_tenant(cur, tenant_id)
            row = cur.execute(
                "SELECT max(version) FROM flows WHERE tenant_id = ? AND flow_key = ?",
                (tenant_id, key),
            ).fetchone()
            version = int(row[0] or 0) + 1
            if version > MAX_FLOW_VERSION:
                raise InvalidInputError(
                    f"flow {key!r} has {MAX_FLOW_VERSION} versions, the most it can have: "
                    "save it under a new key",
                    field="flow key",
                )
            cur.execute(
                "INSERT INTO flows (tenant_id, flow_key, version, document, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (tenant_id, key, version, text, self.clock()),
            )
            return version

        return self._write(save)

    @staticmethod
    def _flow(row: Sequence[Any]) -> FlowVersion:
        return FlowVersion(
            key=row[0],
            version=int(row[1]),
            document=json.loads(row[2]),
            created_at=from_epoch(row[3]),
            published=bool(row[4]),
            published_at=None if row[5] is None else from_epoch(row[5]),
        )

    def get_flow(
        self,
        tenant_id: str,
        key: str,
        version: int | None = None,
        published_only: bool = False,
    ) -> FlowVersion | None:
        check_tenant_id(tenant_id)
        check_id("flow key", key)
        sql = f"SELECT {_FLOW_COLUMNS} FROM flows WHERE tenant_id = ? AND flow_key = ?"
        params: list[Any] = [tenant_id, key]
        if version is not None:
            sql += " AND version = ?"
            params.append(_check_version(version))
        if published_only:
            sql += " AND published = 1"
        sql += " ORDER BY version DESC LIMIT 1"
        with self._read() as cur:
            row = cur.execute(sql, params).fetchone()
        return None if row is None else self._flow(row)

    def publish_flow(self, tenant_id: str, key: str, version: int) -> FlowVersion:
        check_tenant_id(tenant_id)
        check_id("flow key", key)
        _check_version(version)
        where = "WHERE tenant_id = ? AND flow_key = ? AND version = ?"

        def publish(cur: Cursor) -> FlowVersion:
            self._lock_flow(cur, tenant_id, key)
            found = cur.execute(
                f"SELECT published FROM flows {where}", (tenant_id, key, version)
            ).fetchone()
            if found is None:
                raise FlowNotFoundError(f"flow {key!r} has no version {version}")
            if not found[0]:
                cur.execute(
                    "UPDATE flows SET published = 0, published_at = NULL "
                    "WHERE tenant_id = ? AND flow_key = ? AND published = 1",
                    (tenant_id, key),
                )
                cur.execute(
                    f"UPDATE flows SET published = 1, published_at = ? {where}",
                    (self.clock(), tenant_id, key, version),
                )
            # Read inside the transaction: a publish right after ours cannot change the answer.
            row = cur.execute(
                f"SELECT {_FLOW_COLUMNS} FROM flows {where}", (tenant_id, key, version)
            ).fetchone()
            return self._flow(row)

        return self._write(publish)

    def list_flows(
        self, tenant_id: str, cursor: str | None = None, limit: int = 50
    ) -> Page[FlowInfo]:
        check_tenant_id(tenant_id)
        limit = page_limit(limit)
        after = decode_cursor(cursor)
        with self._read() as cur:
            rows = cur.execute(
                "SELECT flow_key, max(version), max(CASE WHEN published = 1 THEN version END), "
                "max(created_at), max(published_at) FROM flows "
                "WHERE tenant_id = ? AND flow_key > ? GROUP BY flow_key ORDER BY flow_key LIMIT ?",
                (tenant_id, after, limit + 1),
            ).fetchall()
        return make_page(
            rows,
            limit,
            lambda r: FlowInfo(
                key=r[0],
                latest_version=int(r[1]),
                published_version=None if r[2] is None else int(r[2]),
                updated_at=from_epoch(max(r[3], r[4] or r[3])),
            ),
        )
