"""Interactions and summaries of the SQL store: outcome types, recommendations, recording
interactions (one at a time and in bulk) with their summaries, and reading both back (records,
customer/offer/daily summaries, and the column arrays the models read)."""

from __future__ import annotations

import dataclasses
import json
import math
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import numpy as np

from nextbest.store import summaries
from nextbest.store.base import (
    BulkRejection,
    BulkResult,
    Correction,
    CustomerSummary,
    DailySummary,
    ForgetResult,
    Interaction,
    InteractionColumns,
    InteractionIn,
    OfferSummary,
    OutcomeParticipant,
    OutcomeTransaction,
    Recommendation,
    RecommendationItem,
    RecordResult,
    SummaryColumns,
    check_value,
    from_epoch,
    to_epoch,
)
from nextbest.store.contacts_sql import ContactsSql, contact_of
from nextbest.store.core_sql import (
    Cursor,
    batched,
    check_id,
    check_optional_id,
    json_text,
    valid_tenant_id,
)
from nextbest.store.errors import (
    InteractionNotFoundError,
    InvalidInputError,
    OutcomeTypeExistsError,
    RecommendationExistsError,
    UnknownOfferError,
    UnknownOutcomeError,
    UnknownRankError,
    UnknownRecommendationError,
)
from nextbest.store.limits import MAX_RANK, data_problem, epoch_problem, id_problem
from nextbest.store.outcomes import BUILTIN_OUTCOME_TYPES, OutcomeType, validate_custom_outcome

#: The groups a recommendation may record (see nextbest.experiments).
RECOMMENDATION_GROUPS = ("control", "treatment")
# From this many new events on, summaries are aggregated with numpy instead of a Python fold.
_VECTOR_MIN_EVENTS = 64
# Ids per IN (...) list: well within every dialect's limit on parameters.
_IN_BATCH = 500
# Reads of a key to correct or delete (PostgreSQL: a concurrent correction may replace the row
# between the read and the delete).
_TAKE_ATTEMPTS = 3
# The largest rank (and flow version) the INTEGER columns hold on PostgreSQL.

INTERACTION_COLUMNS = (
    "tenant_id",
    "customer_id",
    "offer_id",
    "channel",
    "outcome",
    "classification",
    "kind",
    "value",
    "occurred_at",
    "idempotency_key",
    "recommendation_id",
    "rank",
    "context",
    "recorded_at",
)
_SELECT_INTERACTION = (
    "SELECT interaction_id, " + ", ".join(INTERACTION_COLUMNS) + " FROM interactions"
)
_INSERT_INTERACTION = (
    f"INSERT INTO interactions ({', '.join(INTERACTION_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in INTERACTION_COLUMNS)}) "
    "ON CONFLICT (tenant_id, idempotency_key) DO NOTHING"
)
# An interaction's summary event (summaries.Event), as columns.
_EVENT_COLUMNS = (
    "customer_id",
    "offer_id",
    "outcome",
    "classification",
    "kind",
    "value",
    "occurred_at",
)
_SUMMARY_COLUMNS = (
    "interactions, impressions, positive, negative, neutral, conversions, total_value, "
    "first_at, last_at, last_outcome"
)
_SUMMARY_ROW = np.dtype(
    [
        ("customer_id", object),
        ("first_at", np.float64),
        ("last_at", np.float64),
        ("interactions", np.int64),
        ("total_value", np.float64),
        ("conversions", np.int64),
    ]
)


def insert_recommendation(
    cur: Cursor,
    tenant_id: str,
    recommendation_id: str,
    customer_id: str,
    items: Sequence[tuple[int, str, float | None] | tuple[int, str, float | None, str | None]],
    meta: tuple[str | None, str | None, str | None, int | None, float],
    group: str | None = None,
) -> None:
    """Insert a recommendation and its items inside the caller's transaction (arguments
    checked by the caller); an item is (rank, offer id, score[, annotations as JSON text]);
    ``meta`` is (channel, placement, flow key, flow version, created at); ``group`` the
    customer's control-group assignment, if any."""
    cur.execute(
        "INSERT INTO recommendations (tenant_id, recommendation_id, customer_id, "
        "channel, placement, flow_key, flow_version, created_at, assigned_group) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (tenant_id, recommendation_id, customer_id, *meta, group),
    )
    if items:
        cur.executemany(
            "INSERT INTO recommendation_items (tenant_id, recommendation_id, rank, "
            "offer_id, score, annotations) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (tenant_id, recommendation_id, *item[:4], *(None,) * (4 - len(item)))
                for item in items
            ],
        )


_RECOMMENDATION_PAGE = 500


def _annotations_text(item: RecommendationItem) -> str | None:
    """An item's annotations as JSON text (None when it has none), checked like a document."""
    if item.annotations is None or not item.annotations:
        return None
    if not isinstance(item.annotations, dict):
        raise InvalidInputError(
            f"annotations of rank {item.rank} must be a JSON object", field="annotations"
        )
    return json_text(f"annotations of rank {item.rank}", item.annotations, "annotations")


def _item(row: Sequence[Any]) -> RecommendationItem:
    """A recommendation item from (rank, offer id, score, annotations text)."""
    notes = None if row[3] is None else json.loads(row[3])
    return RecommendationItem(int(row[0]), row[1], row[2], notes)


def _event(row: Sequence[Any]) -> summaries.Event:
    """The summary event of a row in INTERACTION_COLUMNS order."""
    return (row[1], row[2], *row[4:9])


def check_rank(rank: object) -> None:
    """InvalidInputError (field ``rank``) unless ``rank`` is an int from 1 to ``MAX_RANK``."""
    _check_int("rank", rank)


def _check_int(what: str, value: object) -> None:
    """InvalidInputError naming ``what`` unless ``value`` is an int from 1 to ``MAX_RANK``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RANK:
        raise InvalidInputError(
            f"{what} must be an integer from 1 to {MAX_RANK}, got {value!r}", field=what
        )


def _content(row: Sequence[Any]) -> tuple[Any, ...]:
    """What a row (INTERACTION_COLUMNS order) says happened: everything from the customer to
    the context, its key included; not the tenant, nor when it was recorded."""
    return tuple(row[1:13])


class InteractionsSql(ContactsSql):
    """Outcome types, recommendations, interactions and summaries."""

    # -- dialect hook -----------------------------------------------------------------------
    @abstractmethod
    def _store_chunk(self, cur: Cursor, tenant_id: str, rows: list[tuple]) -> int:
        """Insert rows (INTERACTION_COLUMNS order), skipping idempotency keys already used, and
        fold the new ones into the summaries exactly as :meth:`_apply_summaries` would; return
        how many were new."""

    @abstractmethod
    def _outcome_transaction(self, cur: Cursor, tenant_id: str) -> OutcomeTransaction:
        """What an outcome's participants may do in its transaction ``cur`` (``sql.py``)."""

    # -- outcome types ----------------------------------------------------------------------
    def create_outcome_type(
        self, tenant_id: str, name: str, classification: str, kind: str = "response"
    ) -> OutcomeType:
        outcome = validate_custom_outcome(name, classification, kind)
        if name in BUILTIN_OUTCOME_TYPES:
            raise OutcomeTypeExistsError(f"{name!r} is a built-in outcome type")
        try:
            with self._transaction() as cur:
                self._require_tenant(cur, tenant_id)
                cur.execute(
                    "INSERT INTO outcome_types (tenant_id, name, classification, kind, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (tenant_id, name, classification, kind, self.clock()),
                )
        except Exception as exc:
            if self._is_integrity_error(exc):
                raise OutcomeTypeExistsError(f"outcome type {name!r} already exists") from exc
            raise
        return outcome

    def list_outcome_types(self, tenant_id: str) -> list[OutcomeType]:
        if not valid_tenant_id(tenant_id):  # no such tenant: the built-ins only
            return list(BUILTIN_OUTCOME_TYPES.values())
        with self._read() as cur:
            rows = cur.execute(
                "SELECT name, classification, kind FROM outcome_types WHERE tenant_id = ? "
                "ORDER BY name",
                (tenant_id,),
            ).fetchall()
        # A custom type named like a later built-in (``refund``) is shadowed by the built-in.
        custom = (OutcomeType(r[0], r[1], r[2]) for r in rows if r[0] not in BUILTIN_OUTCOME_TYPES)
        return [*BUILTIN_OUTCOME_TYPES.values(), *custom]

    def _outcome(self, cur: Cursor, tenant_id: str, name: str) -> OutcomeType:
        builtin = BUILTIN_OUTCOME_TYPES.get(name)
        if builtin is not None:
            return builtin
        row = None
        # A name no type can have (or a tenant id no tenant can have) is not looked up.
        if id_problem(name) is None and valid_tenant_id(tenant_id):
            row = cur.execute(
                "SELECT name, classification, kind FROM outcome_types "
                "WHERE tenant_id = ? AND name = ?",
                (tenant_id, name),
            ).fetchone()
        if row is None:
            raise UnknownOutcomeError(
                f"unknown outcome {name!r}: use a built-in ({', '.join(BUILTIN_OUTCOME_TYPES)}) "
                "or create a custom outcome type first"
            )
        return OutcomeType(row[0], row[1], row[2])

    def resolve_outcome_type(self, tenant_id: str, name: str) -> OutcomeType:
        with self._read() as cur:
            return self._outcome(cur, tenant_id, name)

    # -- recommendations --------------------------------------------------------------------
    def save_recommendation(
        self,
        tenant_id: str,
        recommendation_id: str,
        customer_id: str,
        items: Sequence[RecommendationItem | tuple[int, str, float | None]],
        *,
        channel: str | None = None,
        placement: str | None = None,
        flow_key: str | None = None,
        flow_version: int | None = None,
        created_at: datetime | None = None,
        group: str | None = None,
    ) -> Recommendation:
        check_id("recommendation id", recommendation_id)
        if group is not None and group not in RECOMMENDATION_GROUPS:
            raise InvalidInputError(
                f"group must be one of {', '.join(RECOMMENDATION_GROUPS)} or None, got {group!r}",
                field="group",
            )
        check_id("customer id", customer_id)
        check_optional_id("channel", channel)
        check_optional_id("placement", placement)
        parsed = [i if isinstance(i, RecommendationItem) else RecommendationItem(*i) for i in items]
        notes: list[str | None] = []
        for item in parsed:
            _check_int("rank", item.rank)
            check_id("offer id", item.offer_id)
            notes.append(_annotations_text(item))
        ranks = [i.rank for i in parsed]
        if len(set(ranks)) != len(ranks):
            raise InvalidInputError(f"ranks must be distinct, got {ranks}", field="rank")
        if flow_version is not None:
            _check_int("flow version", flow_version)
        check_optional_id("flow key", flow_key)
        created = self.clock()
        if created_at is not None:
            created = to_epoch(created_at)
            problem = epoch_problem(created)
            if problem is not None:
                raise InvalidInputError(f"created_at {problem}", field="created at")
        try:
            with self._transaction() as cur:
                self._require_tenant(cur, tenant_id)
                insert_recommendation(
                    cur,
                    tenant_id,
                    recommendation_id,
                    customer_id,
                    [
                        (i.rank, i.offer_id, i.score, note)
                        for i, note in zip(parsed, notes, strict=True)
                    ],
                    (channel, placement, flow_key, flow_version, created),
                    group,
                )
        except Exception as exc:
            if self._is_integrity_error(exc):
                raise RecommendationExistsError(
                    f"recommendation {recommendation_id!r} was already saved"
                ) from exc
            raise
        return Recommendation(
            recommendation_id,
            tenant_id,
            customer_id,
            sorted(parsed, key=lambda i: i.rank),
            channel,
            placement,
            flow_key,
            flow_version,
            from_epoch(created),
            group,
        )

    def get_recommendation(self, tenant_id: str, recommendation_id: str) -> Recommendation | None:
        check_id("recommendation id", recommendation_id)
        if not valid_tenant_id(tenant_id):
            return None
        with self._read() as cur:
            return self._recommendation_in(cur, tenant_id, recommendation_id)

    def _recommendation_in(
        self, cur: Cursor, tenant_id: str, recommendation_id: str, rank: int | None = None
    ) -> Recommendation | None:
        """A stored recommendation, read in the caller's transaction; with ``rank`` only that
        item is read (``items`` holds it alone, or nothing when it has no such rank)."""
        if rank is not None:
            rows = cur.execute(
                "SELECT r.customer_id, r.channel, r.placement, r.flow_key, r.flow_version, "
                "r.created_at, r.assigned_group, i.rank, i.offer_id, i.score, i.annotations "
                "FROM recommendations r LEFT JOIN recommendation_items i "
                "ON i.tenant_id = r.tenant_id AND i.recommendation_id = r.recommendation_id "
                "AND i.rank = ? WHERE r.tenant_id = ? AND r.recommendation_id = ?",
                (rank, tenant_id, recommendation_id),
            ).fetchone()
            if rows is None:
                return None
            items = [] if rows[7] is None else [_item(rows[7:11])]
            return Recommendation(
                recommendation_id,
                tenant_id,
                rows[0],
                items,
                rows[1],
                rows[2],
                rows[3],
                rows[4],
                from_epoch(rows[5]),
                rows[6],
            )
        row = cur.execute(
            "SELECT customer_id, channel, placement, flow_key, flow_version, created_at, "
            "assigned_group FROM recommendations WHERE tenant_id = ? AND recommendation_id = ?",
            (tenant_id, recommendation_id),
        ).fetchone()
        if row is None:
            return None
        items = cur.execute(
            "SELECT rank, offer_id, score, annotations FROM recommendation_items "
            "WHERE tenant_id = ? AND recommendation_id = ? ORDER BY rank",
            (tenant_id, recommendation_id),
        ).fetchall()
        return Recommendation(
            recommendation_id,
            tenant_id,
            row[0],
            [_item(r) for r in items],
            row[1],
            row[2],
            row[3],
            row[4],
            from_epoch(row[5]),
            row[6],
        )

    def iter_recommendations(
        self, tenant_id: str, since: datetime | None = None, flow_key: str | None = None
    ) -> Iterator[Recommendation]:
        check_optional_id("flow key", flow_key)
        start = -math.inf
        if since is not None:
            start = to_epoch(since)
            problem = epoch_problem(start)
            if problem is not None:
                raise InvalidInputError(f"since {problem}", field="since")
        if not valid_tenant_id(tenant_id):
            return
        where = "tenant_id = ? AND created_at >= ?"
        args: tuple[Any, ...] = (tenant_id, start)
        if flow_key is not None:
            where += " AND flow_key = ?"
            args += (flow_key,)
        after: tuple[float, str] = (-math.inf, "")
        while True:
            with self._read() as cur:
                heads = cur.execute(
                    "SELECT recommendation_id, customer_id, channel, placement, flow_key, "
                    f"flow_version, created_at, assigned_group FROM recommendations WHERE {where} "
                    "AND (created_at > ? OR (created_at = ? AND recommendation_id > ?)) "
                    "ORDER BY created_at, recommendation_id LIMIT ?",
                    (*args, after[0], after[0], after[1], _RECOMMENDATION_PAGE),
                ).fetchall()
                if not heads:
                    return
                items: dict[str, list[RecommendationItem]] = {h[0]: [] for h in heads}
                marks = ", ".join("?" for _ in heads)
                for r in cur.execute(
                    "SELECT recommendation_id, rank, offer_id, score, annotations "
                    "FROM recommendation_items WHERE tenant_id = ? "
                    f"AND recommendation_id IN ({marks}) ORDER BY recommendation_id, rank",
                    (tenant_id, *items),
                ).fetchall():
                    items[r[0]].append(_item(r[1:]))
            for h in heads:
                yield Recommendation(
                    h[0], tenant_id, h[1], items[h[0]], h[2], h[3], h[4], h[5], from_epoch(h[6]),
                    h[7],
                )  # fmt: skip
            if len(heads) < _RECOMMENDATION_PAGE:
                return
            after = (heads[-1][6], heads[-1][0])

    def _resolve(
        self,
        cur: Cursor,
        tenant_id: str,
        recommendation_id: str,
        rank: int,
        customer_id: str | None = None,
    ) -> str:
        return self._resolve_item(cur, tenant_id, recommendation_id, rank, customer_id)[0]

    def _resolve_item(
        self,
        cur: Cursor,
        tenant_id: str,
        recommendation_id: str,
        rank: int,
        customer_id: str | None = None,
    ) -> tuple[str, str | None]:
        """The offer at ``rank`` of a stored recommendation and the recommendation's channel."""
        _check_int("rank", rank)
        if not valid_tenant_id(tenant_id):
            raise UnknownRecommendationError(f"unknown recommendation {recommendation_id!r}")
        head = cur.execute(
            "SELECT customer_id, channel FROM recommendations "
            "WHERE tenant_id = ? AND recommendation_id = ?",
            (tenant_id, recommendation_id),
        ).fetchone()
        if head is None or (customer_id is not None and head[0] != customer_id):
            raise UnknownRecommendationError(
                f"unknown recommendation {recommendation_id!r}"
                + ("" if customer_id is None else f" for customer {customer_id!r}")
            )
        row = cur.execute(
            "SELECT offer_id FROM recommendation_items "
            "WHERE tenant_id = ? AND recommendation_id = ? AND rank = ?",
            (tenant_id, recommendation_id, rank),
        ).fetchone()
        if row is None:
            raise UnknownRankError(f"recommendation {recommendation_id!r} has no rank {rank}")
        return str(row[0]), head[1]

    def resolve_recommendation(self, tenant_id: str, recommendation_id: str, rank: int) -> str:
        check_id("recommendation id", recommendation_id)
        with self._read() as cur:
            return self._resolve(cur, tenant_id, recommendation_id, rank)

    # -- interactions -----------------------------------------------------------------------
    def _interaction(self, row: Sequence[Any]) -> Interaction:
        return Interaction(
            interaction_id=int(row[0]),
            tenant_id=row[1],
            customer_id=row[2],
            offer_id=row[3],
            channel=row[4],
            outcome=row[5],
            classification=row[6],
            kind=row[7],
            value=float(row[8]),
            occurred_at=from_epoch(row[9]),
            idempotency_key=row[10],
            recommendation_id=row[11],
            rank=None if row[12] is None else int(row[12]),
            context=None if row[13] is None else json.loads(row[13]),
            recorded_at=from_epoch(row[14]),
        )

    def _prepare(
        self, tenant_id: str, item: InteractionIn, outcome: OutcomeType, now: float
    ) -> tuple:
        """Validate an interaction and return its row in INTERACTION_COLUMNS order: every
        entry point's rules (``store.limits``) for ids, the value (refunds <= 0), the time
        (the window, at most the skew ahead of ``now``) and the context."""
        check_id("customer id", item.customer_id)
        check_id("idempotency key", item.idempotency_key)
        check_optional_id("offer id", item.offer_id)
        check_optional_id("channel", item.channel)
        check_optional_id("recommendation id", item.recommendation_id)
        if (item.recommendation_id is None) != (item.rank is None):
            raise InvalidInputError(
                "recommendation_id and rank must be given together", field="recommendation id"
            )
        if item.rank is not None:
            _check_int("rank", item.rank)
        context = None
        if item.context is not None:
            problem = data_problem(item.context)
            if problem is not None:
                raise InvalidInputError(f"context {problem}", field="context")
            context = json_text("context", item.context)
        if item.occurred_at is None:
            occurred = now
        else:
            # Epoch seconds exist for every aware datetime, the calendar's edges included.
            occurred = to_epoch(item.occurred_at)
            problem = epoch_problem(occurred, outcome=True, now=now)
            if problem is not None:
                raise InvalidInputError(f"occurred_at {problem}", field="occurred at")
        return (
            tenant_id,
            item.customer_id,
            item.offer_id,
            item.channel,
            outcome.name,
            outcome.classification,
            outcome.kind,
            check_value(item.value, outcome.name),
            occurred,
            item.idempotency_key,
            item.recommendation_id,
            item.rank,
            context,
            now,
        )

    @contextmanager
    def _writing(self) -> Iterator[Cursor]:
        """A write transaction in which a summary total that would leave the float range is an
        InvalidInputError (the transaction rolled back). The merge's finite guard
        (``summaries.merge_clause``) fails such a write with a NOT NULL violation on
        ``total_value``, the one constraint these writes can violate."""
        try:
            with self._transaction() as cur:
                yield cur
        except Exception as exc:
            if self._is_integrity_error(exc) and "total_value" in str(exc):
                raise InvalidInputError(summaries.NON_FINITE_TOTAL, field="value") from exc
            raise

    def _apply_summaries(self, cur: Cursor, tenant_id: str, events: list[summaries.Event]) -> None:
        """Merge new interactions into the three summary tables (inside the caller's
        transaction)."""
        if len(events) >= _VECTOR_MIN_EVENTS:
            aggregated = summaries.aggregate_columns(tenant_id, *zip(*events, strict=True))
        else:
            aggregated = summaries.aggregate(tenant_id, events)
        for table, rows in aggregated.items():
            if rows:
                cur.executemany(summaries.upsert_sql(table), rows)

    def _resolve_offer(
        self, cur: Cursor, tenant_id: str, item: InteractionIn, row: list[Any]
    ) -> None:
        """Set the row's offer from ``recommendation_id + rank``, checked against the customer
        and any ``offer_id`` given, and its channel, when omitted, from the recommendation's,
        in the caller's transaction."""
        if item.recommendation_id is not None and item.rank is not None:
            offer_id, channel = self._resolve_item(
                cur, tenant_id, item.recommendation_id, item.rank, item.customer_id
            )
            if row[3] is None:  # the outcome happened where the offer was shown
                row[3] = channel
            if item.offer_id not in (None, offer_id):
                raise InvalidInputError(
                    f"offer {item.offer_id!r} is not rank {item.rank} of "
                    f"recommendation {item.recommendation_id!r}",
                    field="offer id",
                )
            row[2] = offer_id

    def _check_known_offer(self, cur: Cursor, tenant_id: str, item: InteractionIn) -> None:
        """UnknownOfferError when ``offer_id`` names an offer outside the tenant's catalog
        (checked in the caller's transaction; an offer cited by recommendation and rank is
        taken as recorded when it was recommended)."""
        if item.recommendation_id is None and item.offer_id is not None:
            known = cur.execute(
                "SELECT 1 FROM offers WHERE tenant_id = ? AND offer_id = ?",
                (tenant_id, item.offer_id),
            ).fetchone()
            if known is None:
                raise UnknownOfferError(
                    f"unknown offer {item.offer_id!r}: it is not in the tenant's catalog"
                )

    def record_interaction(
        self,
        tenant_id: str,
        interaction: InteractionIn,
        *,
        require_known_offer: bool = False,
        participants: Sequence[OutcomeParticipant] = (),
    ) -> RecordResult:
        now = self.clock()
        with self._writing() as cur:
            self._require_tenant(cur, tenant_id)
            outcome = self._outcome(cur, tenant_id, interaction.outcome)
            row = list(self._prepare(tenant_id, interaction, outcome, now))
            self._resolve_offer(cur, tenant_id, interaction, row)
            inserted = cur.execute(
                f"{_INSERT_INTERACTION} RETURNING interaction_id", row
            ).fetchone()
            if inserted is None:  # a retry: the original answers (the caller compares them)
                original = cur.execute(
                    _SELECT_INTERACTION + " WHERE tenant_id = ? AND idempotency_key = ?",
                    (tenant_id, interaction.idempotency_key),
                ).fetchone()
                return RecordResult(self._interaction(original), created=False)
            if require_known_offer:  # raising rolls the insert back
                self._check_known_offer(cur, tenant_id, interaction)
            self._apply_summaries(cur, tenant_id, [_event(row)])
            self._count_contacts(cur, tenant_id, [contact_of(row)])
            if row[5] == "positive" and row[2] is not None:  # classification, offer id
                self._consume(cur, tenant_id, row, inserted[0], now)
            recorded = self._interaction((inserted[0], *row))
            if participants:
                transaction = self._outcome_transaction(cur, tenant_id)
                for participant in participants:
                    participant(transaction, recorded)
        return RecordResult(recorded, created=True)

    def record_interactions_bulk(
        self,
        tenant_id: str,
        interactions: Iterable[InteractionIn],
        chunk_size: int = 50_000,
        *,
        replace: bool = False,
    ) -> BulkResult:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise InvalidInputError("chunk_size must be an integer >= 1", field="chunk size")
        with self._read() as cur:
            self._require_tenant(cur, tenant_id)
        # An outcome name maps to its type, or to the reason it is unknown.
        outcomes: dict[str, OutcomeType | str] = {}
        rejected: list[BulkRejection] = []
        inserted = duplicates = replaced = chunks = 0
        position = 0
        for chunk in batched(interactions, chunk_size):
            now = self.clock()
            rows = []
            # Every row is validated before the chunk is written: a bad row is set aside with
            # its reason instead of failing the chunk's valid rows.
            for index, item in enumerate(chunk, position):
                try:
                    rows.append(self._prepare_bulk(tenant_id, item, outcomes, now))
                except InvalidInputError as exc:
                    rejected.append(BulkRejection(index, str(exc)))
            position += len(chunk)
            if not rows:
                continue
            if replace:
                with self._writing() as cur:
                    counts = self._store_replacing(cur, tenant_id, rows)
                inserted += counts[0]
                duplicates += counts[1]
                replaced += counts[2]
            else:
                with self._writing() as cur:
                    new = self._store_chunk(cur, tenant_id, rows)
                inserted += new
                duplicates += len(rows) - new
            chunks += 1
        return BulkResult(inserted, duplicates, chunks, tuple(rejected), replaced)

    def _prepare_bulk(
        self,
        tenant_id: str,
        item: InteractionIn,
        outcomes: dict[str, OutcomeType | str],
        now: float,
    ) -> tuple:
        outcome = outcomes.get(item.outcome)
        if outcome is None:
            try:
                outcome = self.resolve_outcome_type(tenant_id, item.outcome)
            except UnknownOutcomeError as exc:
                outcome = str(exc)
            outcomes[item.outcome] = outcome
        if isinstance(outcome, str):
            raise InvalidInputError(outcome, field="outcome")
        if item.recommendation_id is not None and item.offer_id is None:
            raise InvalidInputError(
                "bulk recording needs offer_id; resolve recommendation ranks first",
                field="offer id",
            )
        return self._prepare(tenant_id, item, outcome, now)

    def _store_replacing(
        self, cur: Cursor, tenant_id: str, rows: list[tuple]
    ) -> tuple[int, int, int]:
        """Store a chunk with ``replace``: rows apply in order, a key's last row wins; a stored
        interaction whose content differs from its key's last row is removed (its summaries
        recomputed) and the row recorded anew. Return (inserted, duplicates, replaced)."""
        self._lock_customers(cur, tenant_id, {row[1] for row in rows})
        stored = self._stored_by_key(cur, tenant_id, [row[9] for row in rows])
        state = {key: _content(row[1:]) for key, row in stored.items()}
        last: dict[str, tuple] = {}
        inserted = duplicates = replaced = 0
        for row in rows:
            key, content = row[9], _content(row)
            before = state.get(key)
            if before is None:
                inserted += 1
            elif before == content:
                duplicates += 1
            else:
                replaced += 1
            state[key] = content
            last.pop(key, None)  # keep the rows in the order of each key's last occurrence
            last[key] = row
        removed = [old for key, old in stored.items() if _content(old[1:]) != _content(last[key])]
        self._lock_customers(cur, tenant_id, {old[2] for old in removed})
        self._remove(cur, tenant_id, removed)
        gone = {old[10] for old in removed}
        fresh = [row for key, row in last.items() if key not in stored or key in gone]
        if fresh:
            # Another writer may have recorded one of the keys since the lookup: it then keeps
            # its content and the row counts as a duplicate.
            missed = len(fresh) - self._store_chunk(cur, tenant_id, fresh)
            inserted -= missed
            duplicates += missed
        return inserted, duplicates, replaced

    def _stored_by_key(self, cur: Cursor, tenant_id: str, keys: Sequence[str]) -> dict[str, tuple]:
        """The stored rows (``_SELECT_INTERACTION`` order) of these idempotency keys."""
        found: dict[str, tuple] = {}
        for batch in batched(sorted(set(keys)), _IN_BATCH):
            marks = ", ".join("?" for _ in batch)
            for row in cur.execute(
                f"{_SELECT_INTERACTION} WHERE tenant_id = ? AND idempotency_key IN ({marks})",
                (tenant_id, *batch),
            ).fetchall():
                found[row[10]] = tuple(row)
        return found

    def _lock_customers(self, cur: Cursor, tenant_id: str, customer_ids: Iterable[str]) -> None:
        """Lock the customers' summary rows until the transaction ends, in key order (the order
        every writer merges them in), before reading their interactions to recompute them: a
        concurrent writer of these customers then waits, so no recomputed row overwrites a
        merge it did not see. SQLite needs nothing: its write transactions run one at a time."""
        if self.dialect != "postgres":
            return
        for batch in batched(sorted(set(customer_ids)), _IN_BATCH):
            marks = ", ".join("?" for _ in batch)
            cur.execute(
                "SELECT customer_id FROM customer_summaries WHERE tenant_id = ? AND "
                f"customer_id IN ({marks}) ORDER BY customer_id FOR UPDATE",
                (tenant_id, *batch),
            ).fetchall()

    def _remove(self, cur: Cursor, tenant_id: str, removed: Sequence[Sequence[Any]]) -> None:
        """Delete stored interactions (rows in ``_SELECT_INTERACTION`` order, their customers
        locked) and recompute the summaries they counted in, in the caller's transaction."""
        if removed:
            cur.executemany(
                "DELETE FROM interactions WHERE tenant_id = ? AND interaction_id = ?",
                [(tenant_id, old[0]) for old in removed],
            )
            self._recompute_removed(cur, tenant_id, removed)

    def _recompute_removed(
        self, cur: Cursor, tenant_id: str, removed: Sequence[Sequence[Any]]
    ) -> None:
        """Fold the summary keys the removed interactions counted in again from their
        customers' remaining interactions (``summaries.rebuild``) and write them over the stored
        rows, or delete the rows of keys nothing is left for."""
        keys = summaries.keys_of(_event(old[1:]) for old in removed)
        customers = sorted({key[0] for key in keys["customer_summaries"]})
        writes, deletes = summaries.rebuild(
            tenant_id, keys, self._customer_events(cur, tenant_id, customers)
        )
        for table in summaries.TABLES:
            if deletes[table]:
                cur.executemany(summaries.delete_sql(table), deletes[table])
            if writes[table]:
                cur.executemany(summaries.replace_sql(table), writes[table])
        self._count_contacts(cur, tenant_id, [contact_of(old[1:]) for old in removed], -1)
        self._give_back(cur, tenant_id, [old[0] for old in removed])

    def _customer_events(
        self, cur: Cursor, tenant_id: str, customer_ids: Sequence[str]
    ) -> Iterator[summaries.Event]:
        """The customers' interactions as summary events, each customer's in recording order
        (read through the index on (tenant, customer))."""
        for batch in batched(customer_ids, _IN_BATCH):
            marks = ", ".join("?" for _ in batch)
            rows = cur.execute(
                f"SELECT {', '.join(_EVENT_COLUMNS)} FROM interactions WHERE tenant_id = ? "
                f"AND customer_id IN ({marks}) ORDER BY interaction_id",
                (tenant_id, *batch),
            ).fetchall()
            yield from (tuple(row) for row in rows)

    def _take(self, cur: Cursor, tenant_id: str, idempotency_key: str, *customers: str) -> tuple:
        """Remove the interaction recorded under the key (InteractionNotFoundError if none),
        with its summaries recomputed; lock ``customers`` too (the customer of a correction).
        Return its stored row."""
        for _ in range(_TAKE_ATTEMPTS):
            old = cur.execute(
                _SELECT_INTERACTION + " WHERE tenant_id = ? AND idempotency_key = ?",
                (tenant_id, idempotency_key),
            ).fetchone()
            if old is None:
                break
            self._lock_customers(cur, tenant_id, {old[2], *customers})
            cur.execute(
                "DELETE FROM interactions WHERE tenant_id = ? AND interaction_id = ?",
                (tenant_id, old[0]),
            )
            if cur.rowcount == 1:
                self._recompute_removed(cur, tenant_id, [tuple(old)])
                return tuple(old)
            # PostgreSQL only: a concurrent correction of this key committed between the read
            # and the delete; read the key again.
        raise InteractionNotFoundError(
            f"no interaction is recorded under idempotency key {idempotency_key!r}"
        )

    def get_interaction(self, tenant_id: str, idempotency_key: str) -> Interaction | None:
        check_id("idempotency key", idempotency_key)
        if not valid_tenant_id(tenant_id):
            return None
        with self._read() as cur:
            row = cur.execute(
                _SELECT_INTERACTION + " WHERE tenant_id = ? AND idempotency_key = ?",
                (tenant_id, idempotency_key),
            ).fetchone()
        return None if row is None else self._interaction(row)

    def delete_interaction(self, tenant_id: str, idempotency_key: str) -> Interaction:
        check_id("idempotency key", idempotency_key)
        with self._writing() as cur:
            self._require_tenant(cur, tenant_id)
            old = self._take(cur, tenant_id, idempotency_key)
        return self._interaction(old)

    def correct_interaction(
        self,
        tenant_id: str,
        idempotency_key: str,
        interaction: InteractionIn,
        *,
        require_known_offer: bool = False,
    ) -> Correction:
        check_id("idempotency key", idempotency_key)
        if interaction.idempotency_key != idempotency_key:
            raise InvalidInputError(
                f"the correction's idempotency key {interaction.idempotency_key!r} differs "
                f"from the key of the interaction to correct ({idempotency_key!r})",
                field="idempotency key",
            )
        now = self.clock()
        with self._writing() as cur:
            self._require_tenant(cur, tenant_id)
            current = cur.execute(
                _SELECT_INTERACTION + " WHERE tenant_id = ? AND idempotency_key = ?",
                (tenant_id, idempotency_key),
            ).fetchone()
            if current is None:
                raise InteractionNotFoundError(
                    f"no interaction is recorded under idempotency key {idempotency_key!r}"
                )
            if interaction.occurred_at is None:  # a correction keeps the time unless given
                interaction = dataclasses.replace(interaction, occurred_at=from_epoch(current[9]))
            outcome = self._outcome(cur, tenant_id, interaction.outcome)
            row = list(self._prepare(tenant_id, interaction, outcome, now))
            self._resolve_offer(cur, tenant_id, interaction, row)
            if _content(current[1:]) == _content(row):
                before = self._interaction(current)
                return Correction(before, before, changed=False)
            if require_known_offer and row[2] != current[3]:  # the offer it had may stay
                self._check_known_offer(cur, tenant_id, interaction)
            old = self._take(cur, tenant_id, idempotency_key, interaction.customer_id)
            new_id = cur.execute(f"{_INSERT_INTERACTION} RETURNING interaction_id", row).fetchone()
            self._apply_summaries(cur, tenant_id, [_event(row)])
            self._count_contacts(cur, tenant_id, [contact_of(row)])
            # the old outcome gave its consumption back (``_take``); the corrected one consumes
            # as a new response would, today
            if row[5] == "positive" and row[2] is not None:
                self._consume(cur, tenant_id, row, new_id[0], now)
        return Correction(
            self._interaction(old), self._interaction((new_id[0], *row)), changed=True
        )

    def forget_customer(
        self, tenant_id: str, customer_id: str, document_namespaces: Iterable[str] = ()
    ) -> ForgetResult:
        check_id("customer id", customer_id)
        namespaces = sorted(set(document_namespaces))
        for namespace in namespaces:
            check_id("document namespace", namespace)
        with self._transaction() as cur:
            self._require_tenant(cur, tenant_id)
            self._lock_customers(cur, tenant_id, [customer_id])
            deleted: dict[str, int] = {}
            # the consumption of the customer's outcomes stays (erasing a customer does not
            # undo what was given out); the per-outcome record of it names them, so it goes
            for table in (
                "interactions",
                *summaries.TABLES,
                "customer_contact_counts",
                "customer_offer_outcomes",
                "outcome_consumption",
                "customer_attributes",
            ):
                cur.execute(
                    f"DELETE FROM {table} WHERE tenant_id = ? AND customer_id = ?",
                    (tenant_id, customer_id),
                )
                deleted[table] = cur.rowcount
            cur.execute(
                "DELETE FROM recommendation_items WHERE tenant_id = ? AND recommendation_id IN "
                "(SELECT recommendation_id FROM recommendations "
                "WHERE tenant_id = ? AND customer_id = ?)",
                (tenant_id, tenant_id, customer_id),
            )
            cur.execute(
                "DELETE FROM recommendations WHERE tenant_id = ? AND customer_id = ?",
                (tenant_id, customer_id),
            )
            recommendations = cur.rowcount
            for table in ("trigger_states", "trigger_events"):
                cur.execute(
                    f"DELETE FROM {table} WHERE tenant_id = ? AND customer_id = ?",
                    (tenant_id, customer_id),
                )
                deleted[table] = cur.rowcount
            # Events about the customer (a trigger's firing names them), sent or not.
            cur.execute(
                "DELETE FROM webhook_deliveries WHERE tenant_id = ? AND event_id IN "
                "(SELECT event_id FROM outbox_events WHERE tenant_id = ? AND customer_id = ?)",
                (tenant_id, tenant_id, customer_id),
            )
            cur.execute(
                "DELETE FROM outbox_events WHERE tenant_id = ? AND customer_id = ?",
                (tenant_id, customer_id),
            )
            deleted["outbox_events"] = cur.rowcount
            documents: dict[str, int] = {}
            for namespace in namespaces:
                cur.execute(
                    "DELETE FROM documents WHERE namespace = ? AND tenant_id = ? AND doc_key = ?",
                    (namespace, tenant_id, customer_id),
                )
                documents[namespace] = cur.rowcount
        return ForgetResult(
            interactions=deleted["interactions"],
            customer_summaries=deleted["customer_summaries"],
            offer_summaries=deleted["customer_offer_summaries"],
            daily_summaries=deleted["customer_daily_summaries"],
            recommendations=recommendations,
            documents=documents,
            trigger_states=deleted["trigger_states"],
            trigger_events=deleted["trigger_events"],
            outbox_events=deleted["outbox_events"],
            customer_attributes=deleted["customer_attributes"],
        )

    def iter_interactions(
        self, tenant_id: str, customer_id: str | None = None
    ) -> Iterator[Interaction]:
        sql = _SELECT_INTERACTION + " WHERE tenant_id = ?"
        params: list[Any] = [tenant_id]
        if customer_id is not None:
            check_id("customer id", customer_id)
            sql += " AND customer_id = ?"
            params.append(customer_id)
        if not valid_tenant_id(tenant_id):
            return iter(())
        with self._read() as cur:
            rows = cur.execute(sql + " ORDER BY interaction_id", params).fetchall()
        return (self._interaction(r) for r in rows)

    # -- summaries --------------------------------------------------------------------------
    @staticmethod
    def _counts(row: Sequence[Any]) -> dict[str, Any]:
        return {
            "interactions": int(row[0]),
            "impressions": int(row[1]),
            "positive": int(row[2]),
            "negative": int(row[3]),
            "neutral": int(row[4]),
            "conversions": int(row[5]),
            "total_value": float(row[6]),
            "first_at": from_epoch(row[7]),
            "last_at": from_epoch(row[8]),
            "last_outcome": row[9],
        }

    def get_customer_summary(self, tenant_id: str, customer_id: str) -> CustomerSummary | None:
        check_id("customer id", customer_id)
        if not valid_tenant_id(tenant_id):
            return None
        with self._read() as cur:
            row = cur.execute(
                f"SELECT {_SUMMARY_COLUMNS} FROM customer_summaries "
                "WHERE tenant_id = ? AND customer_id = ?",
                (tenant_id, customer_id),
            ).fetchone()
        return (
            None if row is None else CustomerSummary(customer_id=customer_id, **self._counts(row))
        )

    def get_offer_summaries(self, tenant_id: str, customer_id: str) -> dict[str, OfferSummary]:
        check_id("customer id", customer_id)
        if not valid_tenant_id(tenant_id):
            return {}
        with self._read() as cur:
            rows = cur.execute(
                f"SELECT {_SUMMARY_COLUMNS}, offer_id FROM customer_offer_summaries "
                "WHERE tenant_id = ? AND customer_id = ? ORDER BY offer_id",
                (tenant_id, customer_id),
            ).fetchall()
        return {
            r[10]: OfferSummary(customer_id=customer_id, offer_id=r[10], **self._counts(r))
            for r in rows
        }

    def get_daily_summaries(
        self,
        tenant_id: str,
        customer_id: str,
        start: date | None = None,
        end: date | None = None,
    ) -> list[DailySummary]:
        check_id("customer id", customer_id)
        if not valid_tenant_id(tenant_id):
            return []
        with self._read() as cur:
            rows = cur.execute(
                f"SELECT {_SUMMARY_COLUMNS}, day FROM customer_daily_summaries "
                "WHERE tenant_id = ? AND customer_id = ? AND day >= ? AND day <= ? ORDER BY day",
                (
                    tenant_id,
                    customer_id,
                    (start or date.min).isoformat(),
                    (end or date.max).isoformat(),
                ),
            ).fetchall()
        return [
            DailySummary(customer_id=customer_id, day=date.fromisoformat(r[10]), **self._counts(r))
            for r in rows
        ]

    def customer_summaries(self, tenant_id: str) -> dict[str, CustomerSummary]:
        if not valid_tenant_id(tenant_id):
            return {}
        with self._read() as cur:
            rows = cur.execute(
                f"SELECT {_SUMMARY_COLUMNS}, customer_id FROM customer_summaries "
                "WHERE tenant_id = ? ORDER BY customer_id",
                (tenant_id,),
            ).fetchall()
        return {r[10]: CustomerSummary(customer_id=r[10], **self._counts(r)) for r in rows}

    def tenant_offer_summaries(self, tenant_id: str) -> dict[str, dict[str, OfferSummary]]:
        if not valid_tenant_id(tenant_id):
            return {}
        with self._read() as cur:
            rows = cur.execute(
                f"SELECT {_SUMMARY_COLUMNS}, customer_id, offer_id FROM customer_offer_summaries "
                "WHERE tenant_id = ? ORDER BY customer_id, offer_id",
                (tenant_id,),
            ).fetchall()
        out: dict[str, dict[str, OfferSummary]] = {}
        for r in rows:
            out.setdefault(r[10], {})[r[11]] = OfferSummary(
                customer_id=r[10], offer_id=r[11], **self._counts(r)
            )
        return out

    def tenant_daily_summaries(
        self, tenant_id: str, start: date, end: date
    ) -> dict[str, list[DailySummary]]:
        if not valid_tenant_id(tenant_id):
            return {}
        with self._read() as cur:
            rows = cur.execute(
                f"SELECT {_SUMMARY_COLUMNS}, customer_id, day FROM customer_daily_summaries "
                "WHERE tenant_id = ? AND day >= ? AND day <= ? ORDER BY customer_id, day",
                (tenant_id, start.isoformat(), end.isoformat()),
            ).fetchall()
        out: dict[str, list[DailySummary]] = {}
        for r in rows:
            out.setdefault(r[10], []).append(
                DailySummary(customer_id=r[10], day=date.fromisoformat(r[11]), **self._counts(r))
            )
        return out

    def customer_summary_columns(self, tenant_id: str) -> SummaryColumns:
        rows = []
        if valid_tenant_id(tenant_id):  # else no such tenant: no rows
            with self._read() as cur:
                rows = cur.execute(
                    "SELECT customer_id, first_at, last_at, interactions, total_value, "
                    "conversions FROM customer_summaries WHERE tenant_id = ? ORDER BY customer_id",
                    (tenant_id,),
                ).fetchall()
        # One structured conversion of the row tuples (in C), then contiguous columns: faster
        # than transposing a million tuples in Python.
        table = np.array(rows, dtype=_SUMMARY_ROW)
        return SummaryColumns(
            customer_ids=np.ascontiguousarray(table["customer_id"]),
            first_at=np.ascontiguousarray(table["first_at"]),
            last_at=np.ascontiguousarray(table["last_at"]),
            interactions=np.ascontiguousarray(table["interactions"]),
            total_value=np.ascontiguousarray(table["total_value"]),
            conversions=np.ascontiguousarray(table["conversions"]),
        )

    def interaction_columns(
        self,
        tenant_id: str,
        outcomes: Sequence[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> InteractionColumns:
        empty = InteractionColumns(
            np.array([], dtype=object), np.array([], np.float64), np.array([], np.float64)
        )
        if not valid_tenant_id(tenant_id):
            return empty
        sql = "SELECT customer_id, occurred_at, value FROM interactions WHERE tenant_id = ?"
        params: list[Any] = [tenant_id]
        if outcomes is not None:
            # A name no outcome type can have matches nothing (and is not sent to the database).
            names = [name for name in outcomes if id_problem(name) is None]
            if not names:
                return empty
            sql += f" AND outcome IN ({', '.join('?' for _ in names)})"
            params += names
        if start is not None:
            sql += " AND occurred_at >= ?"
            params.append(to_epoch(start))
        if end is not None:
            sql += " AND occurred_at < ?"
            params.append(to_epoch(end))
        with self._read() as cur:
            rows = cur.execute(
                sql + " ORDER BY customer_id, occurred_at, interaction_id", params
            ).fetchall()
        cols: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [()] * 3
        return InteractionColumns(
            customer_ids=np.array(cols[0], dtype=object),
            timestamps=np.array(cols[1], dtype=np.float64),
            values=np.array(cols[2], dtype=np.float64),
        )
