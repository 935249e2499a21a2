"""The transactional outbox of the SQL store: events, their fan-out to webhook endpoints, and
the deliveries deliverers claim, complete, list and replay.

A producer writes its events with :meth:`OutboxSql.write_events` *inside its own transaction*
(the cursor of :meth:`SqlCore.write`), so the change an event reports and the event stand or
fall together; :meth:`OutboxSql.publish_events` does the same in a transaction of its own. An
event id is the producer's and deterministic: writing it again is a no-op.

Deliverers claim due rows with a lease (:meth:`OutboxSql.claim_deliveries`): on PostgreSQL the
candidate rows are locked with ``FOR UPDATE SKIP LOCKED``, so concurrent claims never take the
same row; on SQLite the claim runs under ``BEGIN IMMEDIATE``, the database's one writer. A row
whose lease ran out (its deliverer died) is claimed again. A result is recorded only by the
holder of the current lease (:meth:`OutboxSql.complete_deliveries`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from nextbest.store.base import Page, from_epoch, to_epoch
from nextbest.store.core_sql import (
    Cursor,
    SqlCore,
    batched,
    check_int,
    check_optional_id,
    check_tenant_id,
    decode_cursor,
    encode_cursor,
    json_text,
    page_limit,
    shown,
)
from nextbest.store.errors import (
    ConflictError,
    DeliveryNotFoundError,
    InvalidInputError,
    WebhookEndpointNotFoundError,
)
from nextbest.store.limits import epoch_problem
from nextbest.store.outbox_types import (
    DELIVERY_STATUSES,
    EVENT_ID,
    EVENT_ID_RULE,
    AttemptResult,
    ClaimedDelivery,
    Delivery,
    EventsWritten,
    OutboxEvent,
)
from nextbest.store.webhook_secrets import SecretUnreadableError, decrypt_secret
from nextbest.store.webhooks_sql import check_event_type

#: At most this many deliveries per claim.
MAX_CLAIM = 1000
#: The longest response excerpt kept per delivery, and the longest error text.
MAX_EXCERPT = 500
_MAX_DELIVERY_ID = 2**63 - 1
_DELIVERY_COLUMNS = (
    "d.delivery_id, d.tenant_id, d.endpoint_id, d.event_id, e.event_type, d.status, d.attempts, "
    "d.next_attempt_at, d.last_status_code, d.last_error, d.last_latency_ms, "
    "d.response_excerpt, d.created_at, d.updated_at, d.delivered_at"
)
_DELIVERY_FROM = (
    "FROM webhook_deliveries d JOIN outbox_events e "
    "ON e.tenant_id = d.tenant_id AND e.event_id = d.event_id"
)


def _time(value: float | None) -> datetime | None:
    return None if value is None else from_epoch(value)


def delivery_of(row: Sequence[Any]) -> Delivery:
    """A Delivery from a row of ``_DELIVERY_COLUMNS``."""
    return Delivery(
        delivery_id=int(row[0]),
        tenant_id=row[1],
        endpoint_id=row[2],
        event_id=row[3],
        event_type=row[4],
        status=row[5],
        attempts=int(row[6]),
        next_attempt_at=_time(row[7]),
        last_status_code=row[8],
        last_error=row[9],
        last_latency_ms=row[10],
        response_excerpt=row[11],
        created_at=from_epoch(row[12]),
        updated_at=from_epoch(row[13]),
        delivered_at=_time(row[14]),
    )


def _epoch(what: str, value: object) -> float:
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{what} must be a datetime, got {shown(value)}", field=what)
    epoch = to_epoch(value)
    problem = epoch_problem(epoch)
    if problem is not None:
        raise InvalidInputError(f"{what} {problem}", field=what)
    return epoch


def _prepared(event: OutboxEvent) -> tuple[str, str, str, float, str, str | None]:
    """An event's row values, every field checked (InvalidInputError naming it)."""
    if not isinstance(event, OutboxEvent):
        raise InvalidInputError(f"events must be OutboxEvent records, got {shown(event)}")
    check_tenant_id(event.tenant_id)
    if not isinstance(event.event_id, str) or EVENT_ID.fullmatch(event.event_id) is None:
        raise InvalidInputError(
            f"event id {shown(event.event_id)} is invalid: {EVENT_ID_RULE}", field="event id"
        )
    check_event_type("event type", event.event_type)
    if not isinstance(event.payload, dict):
        raise InvalidInputError("event payload must be a JSON object", field="payload")
    payload = json_text("event payload", event.payload, "payload")
    at = _epoch("event time", event.occurred_at)
    check_optional_id("customer id", event.customer_id)
    return event.tenant_id, event.event_id, event.event_type, at, payload, event.customer_id


def _delivery_id(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_DELIVERY_ID:
        return None
    return value


class OutboxSql(SqlCore):
    """Outbox events, their deliveries, and the deliverers' claims."""

    #: Appended to the claim's SELECT: PostgreSQL locks the rows it takes and skips the ones
    #: another claim holds; SQLite's claim already runs alone (BEGIN IMMEDIATE).
    _claim_lock_clause: str = ""

    def write(self, work: Callable[[Cursor], Any]) -> Any:
        """Run ``work(cursor)`` in one write transaction (committed when it returns, rolled
        back when it raises; run again on a deadlock or serialization failure, so ``work`` must
        be safe to repeat). Producers pass the cursor to :meth:`write_events` to write their
        state and their events atomically."""
        return self._write(work)

    # -- events ------------------------------------------------------------------------------
    def write_events(
        self, cur: Cursor, events: Sequence[OutboxEvent], *, endpoint_id: str | None = None
    ) -> EventsWritten:
        """Write ``events`` in the caller's transaction (``cur`` from :meth:`write`), with one
        pending delivery per endpoint of the event's tenant whose filter accepts its type (only
        to ``endpoint_id`` when given). An event id the tenant already has is skipped, with no
        new deliveries: producers may write the same event again safely.

        Raises:
            InvalidInputError: an event field is invalid (named); nothing is written.
            TenantNotFoundError: an event's tenant does not exist.
        """
        rows = [_prepared(event) for event in events]
        now = self.clock()
        written = deliveries = 0
        by_tenant: dict[str, list[tuple[str, str, str, float, str, str | None]]] = {}
        for row in rows:
            by_tenant.setdefault(row[0], []).append(row)
        for tenant_id, tenant_rows in by_tenant.items():
            self._require_tenant(cur, tenant_id)
            if endpoint_id is not None:  # not removed while its deliveries are written
                self._lock(cur, "webhook-endpoint", tenant_id, endpoint_id)
            found = cur.execute(
                "SELECT endpoint_id, event_types FROM webhook_endpoints WHERE tenant_id = ?",
                (tenant_id,),
            ).fetchall()
            targets = [(r[0], None if r[1] is None else frozenset(json.loads(r[1]))) for r in found]
            # Events the tenant already has are skipped with their deliveries (a producer
            # writing again); a concurrent writer of the same id is stopped by the keys.
            known: set[str] = set()
            unique = list(dict.fromkeys(r[1] for r in tenant_rows))
            for chunk in batched(unique, 500):
                marks = ", ".join("?" * len(chunk))
                known.update(
                    r[0]
                    for r in cur.execute(
                        "SELECT event_id FROM outbox_events WHERE tenant_id = ? "
                        f"AND event_id IN ({marks})",
                        (tenant_id, *chunk),
                    ).fetchall()
                )
            matching: list[tuple[str, str, str, str, float, float, float]] = []
            for _, event_id, event_type, at, payload, customer in tenant_rows:
                if event_id in known:
                    continue
                known.add(event_id)
                cur.execute(
                    "INSERT INTO outbox_events (tenant_id, event_id, event_type, occurred_at, "
                    "payload, created_at, customer_id) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (tenant_id, event_id) DO NOTHING",
                    (tenant_id, event_id, event_type, at, payload, now, customer),
                )
                if cur.rowcount != 1:  # a concurrent writer's: its deliveries are its own
                    continue
                written += 1
                matching.extend(
                    (tenant_id, endpoint, event_id, "pending", now, now, now)
                    for endpoint, types in targets
                    if (endpoint_id is None or endpoint == endpoint_id)
                    and (types is None or event_type in types)
                )
            if matching:
                cur.executemany(
                    "INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id, status, "
                    "next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    matching,
                )
                deliveries += len(matching)
        return EventsWritten(written, deliveries)

    def publish_events(
        self, events: Sequence[OutboxEvent], *, endpoint_id: str | None = None
    ) -> EventsWritten:
        """:meth:`write_events` in a transaction of its own."""
        events = list(events)
        result: EventsWritten = self._write(
            lambda cur: self.write_events(cur, events, endpoint_id=endpoint_id)
        )
        return result

    def get_event(self, tenant_id: str, event_id: str) -> OutboxEvent | None:
        """One event of the tenant, or None."""
        check_tenant_id(tenant_id)
        if not isinstance(event_id, str) or EVENT_ID.fullmatch(event_id) is None:
            return None
        with self._read() as cur:
            row = cur.execute(
                "SELECT event_type, occurred_at, payload FROM outbox_events "
                "WHERE tenant_id = ? AND event_id = ?",
                (tenant_id, event_id),
            ).fetchone()
        if row is None:
            return None
        return OutboxEvent(tenant_id, event_id, row[0], from_epoch(row[1]), json.loads(row[2]))

    # -- claims ------------------------------------------------------------------------------
    def claim_deliveries(self, limit: int, *, lease_seconds: float = 60.0) -> list[ClaimedDelivery]:
        """Take up to ``limit`` due pending deliveries (oldest due first) under a lease of
        ``lease_seconds``; each claim counts as an attempt. Rows held by another live lease
        are skipped; rows whose lease ran out are taken again."""
        check_int("limit", limit, 1, MAX_CLAIM)
        if not isinstance(lease_seconds, int | float) or not 1 <= lease_seconds <= 86400:
            raise InvalidInputError("lease_seconds must be from 1 to 86400", field="lease")
        token = secrets.token_hex(12)

        def claim(cur: Cursor) -> list[Any]:
            now = self.clock()
            ids = [
                r[0]
                for r in cur.execute(
                    "SELECT delivery_id FROM webhook_deliveries WHERE status = 'pending' "
                    "AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?) "
                    f"ORDER BY next_attempt_at, delivery_id LIMIT ?{self._claim_lock_clause}",
                    (now, now, limit),
                ).fetchall()
            ]
            if not ids:
                return []
            marks = ", ".join("?" for _ in ids)
            cur.execute(
                "UPDATE webhook_deliveries SET lease_until = ?, lease_token = ?, "
                f"attempts = attempts + 1, updated_at = ? WHERE delivery_id IN ({marks})",
                (now + lease_seconds, token, now, *ids),
            )
            return cur.execute(
                "SELECT d.delivery_id, d.tenant_id, d.endpoint_id, w.url, w.secret, "
                "w.previous_secret, w.previous_until, d.event_id, e.event_type, e.occurred_at, "
                "e.payload, d.attempts "
                "FROM webhook_deliveries d "
                "JOIN outbox_events e ON e.tenant_id = d.tenant_id AND e.event_id = d.event_id "
                "JOIN webhook_endpoints w "
                "ON w.tenant_id = d.tenant_id AND w.endpoint_id = d.endpoint_id "
                f"WHERE d.delivery_id IN ({marks}) ORDER BY d.next_attempt_at, d.delivery_id",
                ids,
            ).fetchall()

        rows = self._write(claim)
        now = self.clock()
        return [
            ClaimedDelivery(
                delivery_id=int(r[0]),
                lease_token=token,
                tenant_id=r[1],
                endpoint_id=r[2],
                url=r[3],
                secrets=self._secrets(r[1], r[2], r[4], r[5], r[6], now),
                event_id=r[7],
                event_type=r[8],
                occurred_at=from_epoch(r[9]),
                payload_json=r[10],
                attempt=int(r[11]),
            )
            for r in rows
        ]

    def _secrets(
        self,
        tenant_id: str,
        endpoint_id: str,
        current: str,
        previous: str | None,
        until: float | None,
        now: float,
    ) -> tuple[str, ...]:
        """The endpoint's signing secrets: the current one, then the previous one while its
        grace period lasts. A secret that does not decrypt (the pepper changed) is left out;
        with none left the delivery fails at the deliverer, which says why."""
        found = []
        for stored in (current, previous if until is not None and until > now else None):
            if stored is None:
                continue
            try:
                found.append(decrypt_secret(stored, self._pepper, tenant_id, endpoint_id))
            except SecretUnreadableError:
                continue
        return tuple(found)

    def complete_deliveries(self, results: Sequence[AttemptResult]) -> int:
        """Record attempts' results in one transaction: delivered, due again at ``retry_at``,
        or failed (no ``retry_at``). A result whose lease was lost (it ran out and another
        deliverer claimed the row) is ignored. Returns how many were recorded."""
        now = self.clock()
        params = []
        for result in results:
            if result.delivered:
                status, due = "delivered", None
            elif result.retry_at is not None:
                status, due = "pending", _epoch("retry_at", result.retry_at)
            else:
                status, due = "failed", None
            params.append(
                (
                    status,
                    due,
                    result.status_code,
                    None if result.error is None else result.error[:MAX_EXCERPT],
                    result.latency_ms,
                    None
                    if result.response_excerpt is None
                    else result.response_excerpt[:MAX_EXCERPT],
                    now,
                    now if result.delivered else None,
                    result.delivery_id,
                    result.lease_token,
                )
            )
        if not params:
            return 0

        def complete(cur: Cursor) -> int:
            done = 0
            for row in params:
                cur.execute(
                    "UPDATE webhook_deliveries SET status = ?, next_attempt_at = ?, "
                    "last_status_code = ?, last_error = ?, last_latency_ms = ?, "
                    "response_excerpt = ?, updated_at = ?, delivered_at = ?, lease_until = NULL, "
                    "lease_token = NULL WHERE delivery_id = ? AND lease_token = ?",
                    row,
                )
                done += cur.rowcount
            return done

        recorded: int = self._write(complete)
        return recorded

    # -- reading and replaying ---------------------------------------------------------------
    def list_deliveries(
        self,
        tenant_id: str,
        *,
        status: str | None = None,
        endpoint_id: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Delivery]:
        """The tenant's deliveries, newest first, optionally of one status and one endpoint."""
        check_tenant_id(tenant_id)
        limit = page_limit(limit)
        if status is not None and status not in DELIVERY_STATUSES:
            raise InvalidInputError(
                f"status {shown(status)} is invalid: use one of {', '.join(DELIVERY_STATUSES)}",
                field="status",
            )
        after = decode_cursor(cursor)
        before = _MAX_DELIVERY_ID
        if after:
            if not after.isdigit() or _delivery_id(int(after)) is None:
                raise InvalidInputError(
                    f"cursor {shown(cursor)} is malformed: pass a next_cursor", field="cursor"
                )
            before = int(after)
        sql = (
            f"SELECT {_DELIVERY_COLUMNS} {_DELIVERY_FROM} "
            "WHERE d.tenant_id = ? AND d.delivery_id < ?"
        )
        args: list[Any] = [tenant_id, before]
        if status is not None:
            sql += " AND d.status = ?"
            args.append(status)
        if endpoint_id is not None:
            sql += " AND d.endpoint_id = ?"
            args.append(endpoint_id if isinstance(endpoint_id, str) else "")
        sql += " ORDER BY d.delivery_id DESC LIMIT ?"
        args.append(limit + 1)
        with self._read() as cur:
            rows = cur.execute(sql, args).fetchall()
        more = len(rows) > limit
        items = [delivery_of(r) for r in rows[:limit]]
        return Page(items, encode_cursor(str(items[-1].delivery_id)) if more else None)

    def get_delivery(self, tenant_id: str, delivery_id: int) -> Delivery | None:
        """One delivery of the tenant, or None (another tenant's is None too)."""
        check_tenant_id(tenant_id)
        if _delivery_id(delivery_id) is None:
            return None
        with self._read() as cur:
            row = cur.execute(
                f"SELECT {_DELIVERY_COLUMNS} {_DELIVERY_FROM} "
                "WHERE d.tenant_id = ? AND d.delivery_id = ?",
                (tenant_id, delivery_id),
            ).fetchone()
        return None if row is None else delivery_of(row)

    def redeliver(self, tenant_id: str, delivery_id: int) -> Delivery:
        """Make a delivery pending again, due now, with a fresh attempt count (whatever its
        status: a delivered event can be sent again; receivers dedupe by its id).

        Raises:
            DeliveryNotFoundError: the tenant has no such delivery.
            ConflictError: a deliverer is sending it right now.
        """
        check_tenant_id(tenant_id)
        missing = DeliveryNotFoundError(f"delivery {shown(delivery_id)} not found")
        if _delivery_id(delivery_id) is None:
            raise missing

        def reset(cur: Cursor) -> None:
            now = self.clock()
            row = cur.execute(
                "SELECT status, lease_until FROM webhook_deliveries "
                "WHERE tenant_id = ? AND delivery_id = ?",
                (tenant_id, delivery_id),
            ).fetchone()
            if row is None:
                raise missing
            if row[0] == "pending" and row[1] is not None and row[1] > now:
                raise ConflictError(
                    f"delivery {delivery_id} is being sent right now: wait for the attempt's result"
                )
            cur.execute(
                "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, "
                "next_attempt_at = ?, lease_until = NULL, lease_token = NULL, updated_at = ?, "
                "delivered_at = NULL WHERE delivery_id = ?",
                (now, now, delivery_id),
            )

        self._write(reset)
        found = self.get_delivery(tenant_id, delivery_id)
        if found is None:  # purged or removed with its endpoint since the reset
            raise DeliveryNotFoundError(f"delivery {delivery_id} not found")
        return found

    def replay_failed(self, tenant_id: str, endpoint_id: str, since: datetime) -> int:
        """Make every failed delivery of the endpoint created at or after ``since`` pending
        again, due now, with a fresh attempt count; returns how many.

        Raises:
            WebhookEndpointNotFoundError: the tenant has no such endpoint.
        """
        check_tenant_id(tenant_id)
        after = _epoch("since", since)

        def replay(cur: Cursor) -> int:
            found = cur.execute(
                "SELECT 1 FROM webhook_endpoints WHERE tenant_id = ? AND endpoint_id = ?",
                (tenant_id, endpoint_id if isinstance(endpoint_id, str) else ""),
            ).fetchone()
            if found is None:
                raise WebhookEndpointNotFoundError(
                    f"webhook endpoint {shown(endpoint_id)} not found"
                )
            now = self.clock()
            cur.execute(
                "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, "
                "next_attempt_at = ?, lease_until = NULL, lease_token = NULL, updated_at = ? "
                "WHERE tenant_id = ? AND endpoint_id = ? AND status = 'failed' "
                "AND created_at >= ?",
                (now, now, tenant_id, endpoint_id, after),
            )
            return cur.rowcount

        replayed: int = self._write(replay)
        return replayed

    def purge_events(self, before: datetime, *, chunk: int = 5000, limit: int | None = None) -> int:
        """Delete the events written before ``before`` whose deliveries are all finished
        (delivered or failed; an event no endpoint took has none), with those deliveries,
        oldest first, ``chunk`` events per transaction, at most about ``limit`` events (None:
        all); returns how many events were deleted. An event with a pending delivery is kept
        whatever its age, also one made pending again while it is purged. Trigger firings are
        not touched (they are the triggers' history, not the outbox's)."""
        cutoff = _epoch("before", before)
        chunk = check_int("chunk", chunk, 1, 100_000)
        if limit is not None:
            limit = check_int("limit", limit, 1, 1 << 62)

        def purge(cur: Cursor) -> tuple[int, int]:
            rows = cur.execute(
                "SELECT e.tenant_id, e.event_id FROM outbox_events e WHERE e.created_at < ? "
                "AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.tenant_id = "
                "e.tenant_id AND d.event_id = e.event_id AND d.status = 'pending') "
                "ORDER BY e.created_at LIMIT ?",
                (cutoff, chunk),
            ).fetchall()
            keys = [(r[0], r[1]) for r in rows]
            gone: list[tuple[str, str]] = []
            if keys:
                # A delivery made pending since the SELECT (a redeliver on another
                # connection) is kept, and so is its event.
                cur.executemany(
                    "DELETE FROM webhook_deliveries WHERE tenant_id = ? AND event_id = ? "
                    "AND status <> 'pending'",
                    keys,
                )
                kept = {
                    (r[0], r[1])
                    for chunk in batched(keys, 500)
                    for r in cur.execute(
                        "SELECT DISTINCT tenant_id, event_id FROM webhook_deliveries WHERE "
                        + " OR ".join(["(tenant_id = ? AND event_id = ?)"] * len(chunk)),
                        [v for key in chunk for v in key],
                    ).fetchall()
                }
                gone = [key for key in keys if key not in kept]
                cur.executemany(
                    "DELETE FROM outbox_events WHERE tenant_id = ? AND event_id = ?", gone
                )
            return len(rows), len(gone)

        taken = purged = 0
        while True:
            done, deleted = self._write(purge)
            taken += done
            purged += deleted
            if done < chunk or (limit is not None and taken >= limit):
                return purged

    def delivery_counts(self, tenant_id: str | None = None) -> dict[str, int]:
        """How many deliveries are in each status (of one tenant, or of all)."""
        sql = "SELECT status, count(*) FROM webhook_deliveries"
        args: tuple[Any, ...] = ()
        if tenant_id is not None:
            check_tenant_id(tenant_id)
            sql += " WHERE tenant_id = ?"
            args = (tenant_id,)
        with self._read() as cur:
            rows = cur.execute(sql + " GROUP BY status", args).fetchall()
        counts = dict.fromkeys(DELIVERY_STATUSES, 0)
        counts.update({r[0]: int(r[1]) for r in rows})
        return counts
