"""The catalog of the SQL store: offers and versioned flows (save, publish, list)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from nextbest.store.base import FlowInfo, FlowVersion, JSONDict, Page, from_epoch
from nextbest.store.core_sql import (
    SqlCore,
    check_id,
    decode_cursor,
    json_text,
    make_page,
    page_limit,
)
from nextbest.store.errors import FlowNotFoundError, InvalidInputError


class CatalogSql(SqlCore):
    """Offers and flows."""

    # -- offers -----------------------------------------------------------------------------
    def put_offer(self, tenant_id: str, offer: Mapping[str, Any]) -> bool:
        if not isinstance(offer, Mapping):
            raise InvalidInputError("an offer must be a JSON object")
        offer_id = check_id('offer["id"]', offer.get("id"))
        document = json_text(f"offer {offer_id!r}", dict(offer), "offer")
        now = self.clock()
        with self._transaction() as cur:
            self._require_tenant(cur, tenant_id)
            existed = cur.execute(
                "SELECT 1 FROM offers WHERE tenant_id = ? AND offer_id = ?", (tenant_id, offer_id)
            ).fetchone()
            cur.execute(
                "INSERT INTO offers (tenant_id, offer_id, document, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, offer_id) DO UPDATE SET "
                "document = excluded.document, updated_at = excluded.updated_at",
                (tenant_id, offer_id, document, now, now),
            )
        return existed is None

    def get_offer(self, tenant_id: str, offer_id: str) -> JSONDict | None:
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
        check_id("offer id", offer_id)
        with self._transaction() as cur:
            cur.execute(
                "DELETE FROM offers WHERE tenant_id = ? AND offer_id = ?", (tenant_id, offer_id)
            )
            return cur.rowcount == 1

    # -- flows ------------------------------------------------------------------------------
    def save_flow(self, tenant_id: str, key: str, document: Mapping[str, Any]) -> int:
        check_id("flow key", key)
        text = json_text(f"flow {key!r}", dict(document), "flow")

        def save() -> int:
            with self._transaction() as cur:
                self._require_tenant(cur, tenant_id)
                row = cur.execute(
                    "SELECT max(version) FROM flows WHERE tenant_id = ? AND flow_key = ?",
                    (tenant_id, key),
                ).fetchone()
                version = int(row[0] or 0) + 1
                cur.execute(
                    "INSERT INTO flows (tenant_id, flow_key, version, document, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (tenant_id, key, version, text, self.clock()),
                )
            return version

        return self._retry_on_conflict(save)

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
        check_id("flow key", key)
        sql = (
            "SELECT flow_key, version, document, created_at, published, published_at FROM flows "
            "WHERE tenant_id = ? AND flow_key = ?"
        )
        params: list[Any] = [tenant_id, key]
        if version is not None:
            sql += " AND version = ?"
            params.append(version)
        if published_only:
            sql += " AND published = 1"
        sql += " ORDER BY version DESC LIMIT 1"
        with self._read() as cur:
            row = cur.execute(sql, params).fetchone()
        return None if row is None else self._flow(row)

    def publish_flow(self, tenant_id: str, key: str, version: int) -> FlowVersion:
        check_id("flow key", key)

        def publish() -> None:
            with self._transaction() as cur:
                found = cur.execute(
                    "SELECT published FROM flows WHERE tenant_id = ? AND flow_key = ? "
                    "AND version = ?",
                    (tenant_id, key, version),
                ).fetchone()
                if found is None:
                    raise FlowNotFoundError(f"flow {key!r} has no version {version}")
                if found[0]:
                    return
                cur.execute(
                    "UPDATE flows SET published = 0, published_at = NULL "
                    "WHERE tenant_id = ? AND flow_key = ? AND published = 1",
                    (tenant_id, key),
                )
                cur.execute(
                    "UPDATE flows SET published = 1, published_at = ? "
                    "WHERE tenant_id = ? AND flow_key = ? AND version = ?",
                    (self.clock(), tenant_id, key, version),
                )

        self._retry_on_conflict(publish)
        flow = self.get_flow(tenant_id, key, version)
        if flow is None:  # deleted concurrently: flows are never deleted, so this is a bug
            raise FlowNotFoundError(f"flow {key!r} has no version {version}")
        return flow

    def list_flows(
        self, tenant_id: str, cursor: str | None = None, limit: int = 50
    ) -> Page[FlowInfo]:
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
