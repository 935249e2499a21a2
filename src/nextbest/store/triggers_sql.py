"""Triggers in the SQL store: documents per tenant, crossing states, firings (events).

A state's ``updated_at`` is the time the values behind its last change hold for (the
evaluation's asOf): a change evaluated on older values is not applied over it.
A customer's state row exists only once something happened to it (a firing, a suppressed
crossing); no row means armed at generation 0, so a batch over a million customers reads the
few rows there are in one query and writes only the transitions. Firings are committed by
:meth:`TriggersSql.commit_trigger_changes`: state changes (compare-and-set on the state the
evaluator saw), event rows, recommendations and the transaction participants' writes in ONE
transaction, under a per-trigger lock.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from nextbest.store.base import (
    Firing,
    FiringParticipant,
    Page,
    StateChange,
    StoredTrigger,
    TriggerEventRecord,
    TriggerState,
    from_epoch,
)
from nextbest.store.core_sql import (
    Cursor,
    SqlCore,
    batched,
    check_id,
    check_ids,
    check_tenant_id,
    decode_cursor,
    encode_cursor,
    json_text,
    page_limit,
)
from nextbest.store.errors import InvalidInputError, WebhookEndpointNotFoundError
from nextbest.store.interactions_sql import insert_recommendation

__all__ = ["TRIGGER_STATUSES", "TriggersSql"]

#: The statuses a trigger may have.
TRIGGER_STATUSES = ("active", "paused")
_CHUNK = 500
_TRIGGER_COLUMNS = "trigger_key, uid, status, document, created_at, updated_at"


def _trigger(row: Sequence[Any]) -> StoredTrigger:
    return StoredTrigger(
        row[0], row[1], row[2], json.loads(row[3]), from_epoch(row[4]), from_epoch(row[5])
    )


def _state(row: Sequence[Any]) -> TriggerState:
    crossed = json.loads(row[4]) if row[4] is not None else None
    return TriggerState(row[0], bool(row[1]), int(row[2]), row[3], crossed, row[5])


def _event_cursor(fired_at: float, event_id: str) -> str:
    return encode_cursor(f"{fired_at!r}/{event_id}")


def _decode_event_cursor(cursor: str | None) -> tuple[float, str] | None:
    key = decode_cursor(cursor)
    if not key:
        return None
    when, _, event_id = key.partition("/")
    try:
        return float(when), event_id
    except ValueError:
        raise InvalidInputError(
            f"cursor {cursor!r} is malformed: pass a nextCursor", field="cursor"
        ) from None


class TriggersSql(SqlCore):
    """Trigger documents, states and firings (see the module doc)."""

    def put_trigger(
        self, tenant_id: str, key: str, document: Mapping[str, Any], status: str
    ) -> tuple[StoredTrigger, bool]:
        check_tenant_id(tenant_id)
        check_id("trigger key", key)
        if status not in TRIGGER_STATUSES:
            raise InvalidInputError(
                f"status must be one of {', '.join(TRIGGER_STATUSES)}", field="status"
            )
        text = json_text("trigger document", dict(document), "document")
        now = self.clock()

        endpoint = (document.get("actions") or {}).get("webhook")

        def put(cur: Cursor) -> tuple[StoredTrigger, bool]:
            self._require_tenant(cur, tenant_id)
            self._lock(cur, "trigger", tenant_id, key)
            if isinstance(endpoint, str):
                # Checked under the lock the endpoint's removal takes (see
                # delete_webhook_endpoint): the endpoint exists when the trigger is saved.
                self._lock(cur, "webhook-endpoint", tenant_id, endpoint)
                found = cur.execute(
                    "SELECT 1 FROM webhook_endpoints WHERE tenant_id = ? AND endpoint_id = ?",
                    (tenant_id, endpoint),
                ).fetchone()
                if found is None:
                    raise WebhookEndpointNotFoundError(
                        f"the tenant has no webhook endpoint {endpoint!r}"
                    )
            row = cur.execute(
                "SELECT uid, created_at FROM triggers WHERE tenant_id = ? AND trigger_key = ?",
                (tenant_id, key),
            ).fetchone()
            if row is None:
                uid, created = uuid.uuid4().hex, now
                cur.execute(
                    f"INSERT INTO triggers (tenant_id, {_TRIGGER_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (tenant_id, key, uid, status, text, now, now),
                )
            else:
                uid, created = row[0], row[1]
                cur.execute(
                    "UPDATE triggers SET status = ?, document = ?, updated_at = ? "
                    "WHERE tenant_id = ? AND trigger_key = ?",
                    (status, text, now, tenant_id, key),
                )
            stored = StoredTrigger(
                key, uid, status, json.loads(text), from_epoch(created), from_epoch(now)
            )
            return stored, row is None

        return self._write(put)

    def get_trigger(self, tenant_id: str, key: str) -> StoredTrigger | None:
        check_tenant_id(tenant_id)
        check_id("trigger key", key)
        with self._read() as cur:
            row = cur.execute(
                f"SELECT {_TRIGGER_COLUMNS} FROM triggers WHERE tenant_id = ? AND trigger_key = ?",
                (tenant_id, key),
            ).fetchone()
        return None if row is None else _trigger(row)

    def list_triggers(
        self, tenant_id: str, cursor: str | None = None, limit: int = 50
    ) -> Page[StoredTrigger]:
        check_tenant_id(tenant_id)
        limit = page_limit(limit)
        after = decode_cursor(cursor)
        with self._read() as cur:
            rows = cur.execute(
                f"SELECT {_TRIGGER_COLUMNS} FROM triggers WHERE tenant_id = ? AND trigger_key > ? "
                "ORDER BY trigger_key LIMIT ?",
                (tenant_id, after, limit + 1),
            ).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return Page([_trigger(r) for r in rows], encode_cursor(rows[-1][0]) if more else None)

    def active_triggers(self, tenant_id: str) -> list[StoredTrigger]:
        check_tenant_id(tenant_id)
        with self._read() as cur:
            rows = cur.execute(
                f"SELECT {_TRIGGER_COLUMNS} FROM triggers WHERE tenant_id = ? AND status = ? "
                "ORDER BY trigger_key",
                (tenant_id, "active"),
            ).fetchall()
        return [_trigger(r) for r in rows]

    def delete_trigger(self, tenant_id: str, key: str) -> bool:
        check_tenant_id(tenant_id)
        check_id("trigger key", key)

        def delete(cur: Cursor) -> bool:
            self._lock(cur, "trigger", tenant_id, key)
            for table in ("trigger_states", "trigger_events"):
                cur.execute(
                    f"DELETE FROM {table} WHERE tenant_id = ? AND trigger_key = ?",
                    (tenant_id, key),
                )
            cur.execute(
                "DELETE FROM triggers WHERE tenant_id = ? AND trigger_key = ?", (tenant_id, key)
            )
            return cur.rowcount == 1

        return self._write(delete)

    # -- states -------------------------------------------------------------------------------
    def trigger_states(
        self,
        tenant_id: str,
        key: str,
        customer_ids: Sequence[str] | None = None,
        *,
        with_values: bool = True,
    ) -> dict[str, TriggerState]:
        check_tenant_id(tenant_id)
        check_id("trigger key", key)
        with self._read() as cur:
            return self._states(cur, tenant_id, key, customer_ids, with_values)

    def disarmed_customers(self, tenant_id: str, key: str) -> frozenset[str]:
        check_tenant_id(tenant_id)
        check_id("trigger key", key)
        with self._read() as cur:
            rows = cur.execute(
                "SELECT customer_id FROM trigger_states WHERE tenant_id = ? AND trigger_key = ? "
                "AND armed = 0",
                (tenant_id, key),
            ).fetchall()
        return frozenset(r[0] for r in rows)

    def _states(
        self,
        cur: Cursor,
        tenant_id: str,
        key: str,
        customer_ids: Sequence[str] | None,
        with_values: bool = False,
    ) -> dict[str, TriggerState]:
        crossed = "crossed" if with_values else "NULL"
        columns = f"customer_id, armed, generation, last_fired_at, {crossed}, updated_at"
        where = f"SELECT {columns} FROM trigger_states WHERE tenant_id = ? AND trigger_key = ?"
        if customer_ids is None:
            rows = cur.execute(where, (tenant_id, key)).fetchall()
        else:
            check_ids("customer id", list(customer_ids))
            rows = []
            for chunk in batched(sorted(set(customer_ids)), _CHUNK):
                marks = ", ".join("?" * len(chunk))
                rows.extend(
                    cur.execute(
                        f"{where} AND customer_id IN ({marks})", (tenant_id, key, *chunk)
                    ).fetchall()
                )
        return {row[0]: _state(row) for row in rows}

    def commit_trigger_changes(
        self,
        tenant_id: str,
        key: str,
        changes: Sequence[StateChange],
        participants: Sequence[FiringParticipant] = (),
    ) -> list[Firing]:
        check_tenant_id(tenant_id)
        check_id("trigger key", key)
        if not changes:
            return []
        check_ids("customer id", [c.customer_id for c in changes])
        now = self.clock()
        rows = [
            (
                tenant_id,
                key,
                c.customer_id,
                int(c.armed),
                c.generation,
                c.last_fired_at,
                None if c.crossed is None else json_text("crossed values", c.crossed),
                # (never ahead of this clock: a batch as of a few minutes ahead must not
                # shut out the responds of those minutes)
                now if c.as_of is None else min(c.as_of, now),
            )
            for c in changes
        ]
        events = {
            c.customer_id: json_text("firing payload", c.firing.payload)
            for c in changes
            if c.firing is not None
        }

        def commit(cur: Cursor) -> list[Firing]:
            self._lock(cur, "trigger", tenant_id, key)
            current = self._states(cur, tenant_id, key, [c.customer_id for c in changes])
            kept: list[int] = []
            for i, change in enumerate(changes):
                state = current.get(change.customer_id)
                seen = None if state is None else (state.armed, state.generation)
                stale = (
                    state is not None
                    and change.as_of is not None
                    and state.values_at is not None
                    and change.as_of < state.values_at
                )
                if seen == change.basis and not stale:
                    kept.append(i)
            if not kept:
                return []
            cur.executemany(
                "INSERT INTO trigger_states (tenant_id, trigger_key, customer_id, armed, "
                "generation, last_fired_at, crossed, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (tenant_id, trigger_key, customer_id) DO UPDATE SET "
                "armed = excluded.armed, generation = excluded.generation, "
                "last_fired_at = excluded.last_fired_at, "
                "crossed = COALESCE(excluded.crossed, trigger_states.crossed), "
                "updated_at = excluded.updated_at",
                [rows[i] for i in kept],
            )
            firings = [f for i in kept if (f := changes[i].firing) is not None]
            if not firings:
                return []
            cur.executemany(
                "INSERT INTO trigger_events (tenant_id, event_id, trigger_key, customer_id, "
                "generation, fired_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        tenant_id,
                        f.event_id,
                        key,
                        f.customer_id,
                        f.generation,
                        f.fired_at,
                        events[f.customer_id],
                    )
                    for f in firings
                ],
            )
            for f in firings:
                rec = f.recommendation
                if rec is not None:
                    insert_recommendation(
                        cur,
                        tenant_id,
                        rec.recommendation_id,
                        f.customer_id,
                        list(rec.items),
                        (None, None, rec.flow_key, rec.flow_version, f.fired_at),
                        rec.group,
                    )
            for participant in participants:
                participant(cur, tenant_id, firings)
            return firings

        return self._write(commit)

    # -- events -------------------------------------------------------------------------------
    def trigger_events(
        self, tenant_id: str, key: str, cursor: str | None = None, limit: int = 50
    ) -> Page[TriggerEventRecord]:
        check_tenant_id(tenant_id)
        check_id("trigger key", key)
        limit = page_limit(limit)
        after = _decode_event_cursor(cursor)
        sql = (
            "SELECT event_id, trigger_key, customer_id, generation, fired_at, payload "
            "FROM trigger_events WHERE tenant_id = ? AND trigger_key = ?"
        )
        params: tuple[Any, ...] = (tenant_id, key)
        if after is not None:
            sql += " AND (fired_at < ? OR (fired_at = ? AND event_id < ?))"
            params += (after[0], after[0], after[1])
        sql += " ORDER BY fired_at DESC, event_id DESC LIMIT ?"
        with self._read() as cur:
            rows = cur.execute(sql, (*params, limit + 1)).fetchall()
        more = len(rows) > limit
        items = [
            TriggerEventRecord(r[0], r[1], r[2], int(r[3]), r[4], json.loads(r[5]))
            for r in rows[:limit]
        ]
        last = items[-1] if more else None
        return Page(items, None if last is None else _event_cursor(last.fired_at, last.event_id))
