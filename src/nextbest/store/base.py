"""The storage contract: the :class:`Store` protocol and the records it reads and writes.

Both implementations (SQLite, PostgreSQL) satisfy this protocol and pass one shared test suite.
Offers, flows, settings and plugin documents are JSON documents (dicts). The store checks every
document it is given with :func:`~nextbest.store.limits.document_problem` (depth, finite numbers,
64-bit integers, valid Unicode) and every id, integer and cursor argument before any SQL runs, so
whatever it holds can be read back; an argument it refuses raises ``InvalidInputError`` naming the
field. It does not validate what a document means (the engine does, before calling the store).
Times are timezone-aware ``datetime`` objects in UTC (naive values are taken as UTC) and are
stored as epoch seconds.

Concurrent writes never fail for being concurrent: creates that race have one winner (the others
get a ``ConflictError``), saves and publishes of one flow run one at a time, and a write the
database gave up on (a deadlock, a serialization failure) is retried a few times and then raises
``StoreBusyError`` (a ``ConflictError``) with nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, Self, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

from nextbest.store.errors import InvalidInputError
from nextbest.store.keys import Role
from nextbest.store.limits import value_problem
from nextbest.store.outbox_types import (
    AttemptResult,
    ClaimedDelivery,
    Delivery,
    EventsWritten,
    OutboxEvent,
    WebhookEndpoint,
)
from nextbest.store.outcomes import (
    Classification,
    OutcomeKind,
    OutcomeType,
    outcome_value_problem,
)

if TYPE_CHECKING:
    from nextbest.experiments import LiftAggregates

T = TypeVar("T")
JSONDict = dict[str, Any]

#: The highest flow version a store holds (versions are 32-bit integer columns).


def to_epoch(value: datetime) -> float:
    """Epoch seconds of a datetime; naive datetimes are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def from_epoch(value: float) -> datetime:
    """A UTC datetime from epoch seconds."""
    return datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True, slots=True)
class Tenant:
    """A tenant: the unit of isolation. ``settings`` is a small JSON object."""

    tenant_id: str
    name: str | None
    settings: JSONDict
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key's identity (never its secret). ``revoked_at`` is None while the key is valid."""

    key_id: str
    tenant_id: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a keyset-paginated list; pass ``next_cursor`` back for the next page."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class FlowVersion:
    """One saved version of a flow document."""

    key: str
    version: int
    document: JSONDict
    created_at: datetime
    published: bool
    published_at: datetime | None


@dataclass(frozen=True, slots=True)
class FlowInfo:
    """A flow key with its latest and (if any) published version."""

    key: str
    latest_version: int
    published_version: int | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RecommendationItem:
    """One ranked offer of a recommendation (rank starts at 1) and, when plugins noted
    something about it during the decision, their ``annotations`` (a JSON object by plugin)."""

    rank: int
    offer_id: str
    score: float | None = None
    annotations: JSONDict | None = None


@dataclass(frozen=True, slots=True)
class Recommendation:
    """What a recommend call returned, kept so an outcome can cite ``recommendation_id + rank``."""

    recommendation_id: str
    tenant_id: str
    customer_id: str
    items: list[RecommendationItem]
    channel: str | None
    placement: str | None
    flow_key: str | None
    flow_version: int | None
    created_at: datetime
    #: the customer's control group (``control`` or ``treatment``), None without one
    group: str | None = None


@dataclass(frozen=True, slots=True)
class InteractionIn:
    """An outcome to record.

    ``offer_id`` may be omitted when ``recommendation_id`` and ``rank`` are given: the store then
    resolves the offer in the same transaction. ``value`` is the money involved: finite, at most
    ``MAX_VALUE`` in magnitude, >= 0 (a ``refund``'s is <= 0, see ``store.outcomes``).
    ``occurred_at`` defaults to the time of recording and must lie in the window of
    ``store.limits.time_problem`` (at most ``MAX_FUTURE_SKEW`` ahead of now). ``context`` is a
    JSON object within ``store.limits.document_problem``. ``idempotency_key`` identifies the
    event: recording the same key again for the tenant returns the original interaction.
    """

    customer_id: str
    outcome: str
    idempotency_key: str
    offer_id: str | None = None
    channel: str | None = None
    value: float = 0.0
    occurred_at: datetime | None = None
    recommendation_id: str | None = None
    rank: int | None = None
    context: JSONDict | None = None


@dataclass(frozen=True, slots=True)
class Interaction:
    """A recorded interaction. Interactions are appended; only an explicit correction
    (:meth:`Store.correct_interaction`, a bulk record with ``replace``), deletion or
    :meth:`Store.forget_customer` changes or removes one."""

    interaction_id: int
    tenant_id: str
    customer_id: str
    offer_id: str | None
    channel: str | None
    outcome: str
    classification: Classification
    kind: OutcomeKind
    value: float
    occurred_at: datetime
    idempotency_key: str
    recommendation_id: str | None
    rank: int | None
    context: JSONDict | None
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class RecordResult:
    """The stored interaction; ``created`` is False when the idempotency key was already used."""

    interaction: Interaction
    created: bool


@dataclass(frozen=True, slots=True)
class BulkRejection:
    """An interaction a bulk record refused: its 0-based position in the input, and why."""

    index: int
    reason: str


@dataclass(frozen=True, slots=True)
class BulkResult:
    """Counts of a bulk record: rows inserted, rows skipped as already recorded with the same
    content, transactions, the rows refused as invalid (nothing of them was written) and, with
    ``replace``, the rows that replaced an interaction recorded under their key with other
    content."""

    inserted: int
    duplicates: int
    chunks: int
    rejected: tuple[BulkRejection, ...] = ()
    replaced: int = 0


@dataclass(frozen=True, slots=True)
class Correction:
    """What :meth:`Store.correct_interaction` did: the interaction as it was (``before``) and as
    it is now (``after``). ``changed`` is False when the correction described the interaction
    as recorded (then ``after`` is ``before`` and nothing was written)."""

    before: Interaction
    after: Interaction
    changed: bool


@dataclass(frozen=True, slots=True)
class ForgetResult:
    """What :meth:`Store.forget_customer` deleted, as row counts; ``documents`` by namespace.
    ``plugin_failures`` (plugin, error): the ``customer_forgotten`` hooks that failed after
    the commit (what they keep about the customer may remain; forgetting again retries)."""

    interactions: int
    customer_summaries: int
    offer_summaries: int
    daily_summaries: int
    recommendations: int
    documents: dict[str, int] = field(default_factory=dict)
    plugin_failures: tuple[tuple[str, str], ...] = ()
    trigger_states: int = 0
    trigger_events: int = 0
    outbox_events: int = 0
    customer_attributes: int = 0

    @property
    def total(self) -> int:
        """Every row deleted."""
        return (
            self.interactions
            + self.customer_summaries
            + self.offer_summaries
            + self.daily_summaries
            + self.recommendations
            + sum(self.documents.values())
            + self.trigger_states
            + self.trigger_events
            + self.outbox_events
            + self.customer_attributes
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivitySummary:
    """Counters kept per (tenant, customer) and finer. ``interactions`` counts every outcome;
    ``impressions`` the impression-kind ones; ``positive``/``negative``/``neutral`` the responses
    by classification (so interactions = impressions + positive + negative + neutral);
    ``conversions`` the ``conversion`` outcomes; ``total_value`` sums every recorded value, so
    it is net of refunds (whose values are <= 0) and may be negative. ``last_outcome`` is the
    outcome with the latest ``occurred_at`` (back-filled older events do not replace it; on
    equal times the later recorded wins). Summaries always equal a fold of the remaining
    interactions in recording order: corrections and deletions recompute the keys they touch.
    """

    interactions: int
    impressions: int
    positive: int
    negative: int
    neutral: int
    conversions: int
    total_value: float
    first_at: datetime
    last_at: datetime
    last_outcome: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerSummary(ActivitySummary):
    """All-time summary of one customer."""

    customer_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferSummary(ActivitySummary):
    """Summary of one customer's interactions with one offer."""

    customer_id: str
    offer_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DailySummary(ActivitySummary):
    """Summary of one customer's interactions on one UTC day."""

    customer_id: str
    day: date


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferActivity:
    """A tenant's interactions of one offer (None: naming none) and channel (None: without
    one) in one UTC period starting at ``period_start``: impressions, responses, positive
    responses, conversions and the sum of values (net of refunds)."""

    period_start: datetime
    offer_id: str | None
    channel: str | None
    impressions: int
    responses: int
    positive: int
    conversions: int
    value: float


@dataclass(frozen=True, slots=True)
class OfferConsumption:
    """What positive outcomes consumed of one offer's constraints: outcome value on one UTC
    day and over the offer's life (each at most its budget), units (at most its stock)."""

    offer_id: str
    day_value: float = 0.0
    total_value: float = 0.0
    units: int = 0


@dataclass(frozen=True, slots=True)
class ContactCount:
    """A customer's interactions on one UTC day with one offer on one channel (None: the
    interactions without an offer / a channel): every one, impressions, responses (the
    other kind), conversions (outcome ``conversion``), and the interactions classified
    positive and negative."""

    day: date
    offer_id: str | None
    channel: str | None
    interactions: int
    impressions: int
    responses: int
    conversions: int
    positives: int = 0
    negatives: int = 0


@dataclass(frozen=True, slots=True)
class OfferOutcome:
    """A customer's interactions of one outcome type with one offer: the type's kind and
    classification, when the latest occurred and how many are stored (what ``cooldown`` and
    ``outcome_based`` policies read)."""

    offer_id: str
    outcome: str
    kind: str
    classification: str
    last_at: datetime
    n: int


@dataclass(frozen=True, slots=True)
class SummaryColumns:
    """All-time summaries of a tenant's customers as columns (one row per customer, by id).

    Times are epoch seconds (float64).
    """

    customer_ids: npt.NDArray[np.object_]
    first_at: npt.NDArray[np.float64]
    last_at: npt.NDArray[np.float64]
    interactions: npt.NDArray[np.int64]
    total_value: npt.NDArray[np.float64]
    conversions: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.customer_ids)


@dataclass(frozen=True, slots=True)
class InteractionColumns:
    """Interactions as columns, ordered by customer then time; timestamps in epoch seconds."""

    customer_ids: npt.NDArray[np.object_]
    timestamps: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.customer_ids)


@dataclass(slots=True)
class Migration:
    """A versioned schema change read from ``migrations/<version>_<name>.<dialect>.sql``."""

    version: int
    name: str
    sql: str = field(repr=False)


def check_value(value: float | None, outcome: str | None = None) -> float:
    """An outcome's value as a finite float within the business range (None is 0.0): >= 0,
    or <= 0 for a refund (``outcome_value_problem``); InvalidInputError naming ``value``."""
    if value is None:
        return 0.0
    problem = value_problem(value) if outcome is None else outcome_value_problem(outcome, value)
    if problem is not None:
        raise InvalidInputError(f"value {value!r} {problem}", field="value")
    return float(value)


class LockHandle(Protocol):
    """A held lock. Release it (or leave the ``with`` block) when the job is done."""

    name: str

    def renew(self, ttl_seconds: float) -> bool:
        """Extend the lease; False when the lease was lost (expired and taken by another)."""
        ...

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class StoredTrigger:
    """A trigger document as stored: ``uid`` is the trigger's incarnation (kept across updates,
    new after a delete); ``status`` is ``active`` or ``paused``."""

    key: str
    uid: str
    status: str
    document: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TriggerState:
    """One customer's crossing state for one trigger. No stored state means armed, generation
    0. ``generation`` counts the customer's firings; ``crossed`` holds the values of the last
    firing (or of the last state change)."""

    customer_id: str
    armed: bool
    generation: int
    last_fired_at: float | None
    crossed: dict[str, Any] | None
    #: The time the values behind the last change hold for (its evaluation's asOf).
    values_at: float | None = None


@dataclass(frozen=True, slots=True)
class FiringRecommendation:
    """The recommendation a firing stores (the flow's ranked offers), so a later outcome can
    cite its id and ranks."""

    recommendation_id: str
    items: Sequence[tuple[int, str, float | None]]
    flow_key: str
    flow_version: int
    #: the customer's control group when the flow or tenant has one (stored with it)
    group: str | None = None


@dataclass(frozen=True, slots=True)
class Firing:
    """One firing to commit: the event row and, when the trigger runs a flow, its
    recommendation."""

    event_id: str
    customer_id: str
    generation: int
    fired_at: float
    payload: dict[str, Any]
    recommendation: FiringRecommendation | None = None


@dataclass(frozen=True, slots=True)
class StateChange:
    """A state transition to commit. ``basis`` is the (armed, generation) the evaluator saw
    (None: no stored state); the change is applied only if the stored state still has it, so
    two evaluators of one crossing commit it once. ``crossed`` None keeps the stored values.
    ``firing`` goes with the change. ``as_of`` is the time the evaluated values hold for: a
    change older than the values behind the stored state is not applied (an evaluation that
    read its values before a newer one committed cannot undo it, nor fire on stale values)."""

    customer_id: str
    basis: tuple[bool, int] | None
    armed: bool
    generation: int
    last_fired_at: float | None
    crossed: dict[str, Any] | None
    firing: Firing | None = None
    as_of: float | None = None


@dataclass(frozen=True, slots=True)
class TriggerEventRecord:
    """A stored firing."""

    event_id: str
    trigger_key: str
    customer_id: str
    generation: int
    fired_at: float
    payload: dict[str, Any]


#: A transaction participant: called inside the transaction that commits trigger firings, with
#: the transaction's cursor, the tenant and the firings committed there (never empty). Whatever
#: it writes commits or rolls back with them; a raise rolls everything back.
FiringParticipant = Callable[[Any, str, Sequence[Firing]], None]


class OutcomeTransaction(Protocol):
    """What a participant in the transaction that records an outcome may read and write (see
    :data:`OutcomeParticipant`): only through this object, never through the store, whose
    other calls would need a transaction of their own."""

    tenant_id: str

    def tenant_settings(self) -> dict[str, Any]:
        """The tenant's settings as the transaction sees them."""
        ...

    def get_recommendation(
        self, recommendation_id: str, rank: int | None = None
    ) -> Recommendation | None:
        """A stored recommendation of the tenant, as :meth:`Store.get_recommendation`; with
        ``rank`` its ``items`` hold only that rank's item (none when it has no such rank): one
        read instead of every item's."""
        ...

    def update_documents(
        self,
        keys: Iterable[tuple[str, str]],
        update: Callable[[dict[tuple[str, str], Any]], Mapping[tuple[str, str], Any]],
    ) -> dict[tuple[str, str], Any]:
        """:meth:`Store.update_documents` inside the outcome's transaction (the same locks:
        concurrent updates of a document run one after the other)."""
        ...


#: A participant in recording an outcome: called inside the transaction that inserts a *new*
#: outcome (never for an idempotent retry), after its summaries, with the transaction and the
#: outcome as it will be stored. What it writes commits or rolls back with the outcome; a
#: raise rolls everything back (the caller sees the error).
OutcomeParticipant = Callable[[OutcomeTransaction, Interaction], None]


@dataclass(frozen=True, slots=True)
class SimulationRecord:
    """A stored population simulation: its inputs, status (queued, running, done, failed),
    progress (``done`` of ``total`` customers), times (epoch seconds; ``updated_at`` is the
    running process's heartbeat) and its result (when done; left out of listings) or error."""

    simulation_id: str
    status: str
    inputs: dict[str, Any]
    created_at: float
    updated_at: float
    finished_at: float | None = None
    done: int = 0
    total: int | None = None
    error: str | None = None
    result: dict[str, Any] | None = None


@runtime_checkable
class Store(Protocol):
    """Storage for tenants, keys, offers, flows, outcomes, summaries and plugin documents.

    Every method that takes a ``tenant_id`` only ever sees that tenant's data. Methods are safe
    to call from several threads at once. Writes are atomic: a method either fully applies or
    changes nothing.
    """

    url: str

    # -- lifecycle --------------------------------------------------------------------------
    def upgrade(self) -> list[int]:
        """Apply pending migrations (idempotent; safe when processes race). Return versions
        applied now."""
        ...

    def schema_version(self) -> int:
        """The latest applied migration version (0 for an empty database)."""
        ...

    def latest_schema_version(self) -> int:
        """The latest migration version this code ships."""
        ...

    def close(self) -> None:
        """Close every connection."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    # -- tenants ----------------------------------------------------------------------------
    def create_tenant(
        self, tenant_id: str, name: str | None = None, settings: Mapping[str, Any] | None = None
    ) -> Tenant:
        """Create a tenant; TenantExistsError if the id is taken."""
        ...

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        """The tenant, or None."""
        ...

    def list_tenants(self) -> list[Tenant]:
        """All tenants, by id."""
        ...

    def update_tenant_settings(self, tenant_id: str, changes: Mapping[str, Any]) -> JSONDict:
        """Merge ``changes`` into the settings (a None value removes the key); return them."""
        ...

    def set_default_flow(self, tenant_id: str, flow_key: str | None) -> None:
        """Set (or clear with None) the tenant's default flow key setting."""
        ...

    def default_flow_key(self, tenant_id: str) -> str | None:
        """The default flow setting, else the most recently published flow's key, else None."""
        ...

    # -- API keys ---------------------------------------------------------------------------
    def create_api_key(self, tenant_id: str, role: str) -> tuple[str, str]:
        """Create a key; return ``(key_id, plaintext)``. The plaintext is not stored."""
        ...

    def authenticate_api_key(self, plaintext: str) -> ApiKey | None:
        """The valid (not revoked) key matching ``plaintext``, else None. Constant-time."""
        ...

    def list_api_keys(self, tenant_id: str) -> list[ApiKey]:
        """The tenant's keys, revoked ones included."""
        ...

    def revoke_api_key(self, tenant_id: str, key_id: str) -> bool:
        """Revoke a key of the tenant; False if no such valid key."""
        ...

    # -- offers -----------------------------------------------------------------------------
    def create_offer(self, tenant_id: str, offer: Mapping[str, Any]) -> None:
        """Create the offer keyed by ``offer["id"]``; OfferExistsError (nothing changed) when
        the tenant already has an offer with that id. Of several concurrent creates of one id,
        exactly one succeeds."""
        ...

    def put_offer(self, tenant_id: str, offer: Mapping[str, Any]) -> bool:
        """Create or replace the offer keyed by ``offer["id"]``; True when created (of several
        concurrent puts of a new id, exactly one reports it created)."""
        ...

    def get_offer(self, tenant_id: str, offer_id: str) -> JSONDict | None:
        """The offer document, or None."""
        ...

    def list_offers(
        self, tenant_id: str, cursor: str | None = None, limit: int = 50
    ) -> Page[JSONDict]:
        """Offers ordered by id, ``limit`` (1-1000) at a time."""
        ...

    def delete_offer(self, tenant_id: str, offer_id: str) -> bool:
        """Delete an offer; False if it did not exist."""
        ...

    # -- flows ------------------------------------------------------------------------------
    def save_flow(self, tenant_id: str, key: str, document: Mapping[str, Any]) -> int:
        """Save a new (unpublished) version of the flow; return its version number (1, 2, ...).
        Concurrent saves of one flow get consecutive versions."""
        ...

    def get_flow(
        self,
        tenant_id: str,
        key: str,
        version: int | None = None,
        published_only: bool = False,
    ) -> FlowVersion | None:
        """A version of the flow: ``version`` (1 to :data:`MAX_FLOW_VERSION`), or the
        published one when ``published_only``, or the latest. None if absent (or if
        ``published_only`` and that version is not published)."""
        ...

    def publish_flow(self, tenant_id: str, key: str, version: int) -> FlowVersion:
        """Make ``version`` the one published version of the flow (FlowNotFoundError if absent)
        and return it as published. Of concurrent publishes of one flow the last one wins;
        exactly one version is published afterwards."""
        ...

    def list_flows(
        self, tenant_id: str, cursor: str | None = None, limit: int = 50
    ) -> Page[FlowInfo]:
        """Flow keys ordered by key."""
        ...

    # -- outcome types ----------------------------------------------------------------------
    def create_outcome_type(
        self, tenant_id: str, name: str, classification: str, kind: str = "response"
    ) -> OutcomeType:
        """Add a custom outcome type; OutcomeTypeExistsError if the name is taken."""
        ...

    def list_outcome_types(self, tenant_id: str) -> list[OutcomeType]:
        """Built-ins followed by the tenant's custom types."""
        ...

    def resolve_outcome_type(self, tenant_id: str, name: str) -> OutcomeType:
        """The outcome type called ``name``, or UnknownOutcomeError."""
        ...

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
        """Store what a recommend call returned; ``group`` is the customer's control group
        (``control`` / ``treatment``) when the flow or tenant has one."""
        ...

    def get_recommendation(self, tenant_id: str, recommendation_id: str) -> Recommendation | None:
        """A stored recommendation, or None."""
        ...

    def iter_recommendations(
        self, tenant_id: str, since: datetime | None = None, flow_key: str | None = None
    ) -> Iterator[Recommendation]:
        """A tenant's stored recommendations (made at or after ``since``; of the flow
        ``flow_key``), oldest first, with their items; read in pages."""
        ...

    def resolve_recommendation(self, tenant_id: str, recommendation_id: str, rank: int) -> str:
        """The offer id at ``rank``; UnknownRecommendationError or UnknownRankError."""
        ...

    def lift_aggregates(
        self, tenant_id: str, flow_key: str, since: datetime, until: datetime
    ) -> LiftAggregates:
        """A flow's customers per control group in [since, until) with their successes and
        values, overall and per offer, summed in SQL (the rule: ``store/lift_sql.py`` and
        docs/learning.md). InvalidInputError (field ``since``/``until``/``flow key``) for a
        window outside the store's or an empty one."""
        ...

    def customer_recommendations(
        self, tenant_id: str, customer_id: str, limit: int = 10
    ) -> list[Recommendation]:
        """The customer's ``limit`` (1-100) latest recommendations, newest first, with their
        items (one read by the customer index)."""
        ...

    def offer_activity(
        self, tenant_id: str, since: datetime, until: datetime, period: str = "day"
    ) -> list[OfferActivity]:
        """Per UTC period (``day`` or ISO ``week``), offer and channel: the impressions,
        responses, positive responses, conversions and value of the tenant's interactions
        that occurred in [since, until), summed in one SQL statement, ordered by period,
        offer and channel. InvalidInputError (field ``since``/``until``/``period``) for a
        window outside the store's, an empty one or one over ``MAX_ACTIVITY_DAYS``."""
        ...

    # -- interactions -----------------------------------------------------------------------
    def record_interaction(
        self,
        tenant_id: str,
        interaction: InteractionIn,
        *,
        require_known_offer: bool = False,
        participants: Sequence[OutcomeParticipant] = (),
    ) -> RecordResult:
        """Record one outcome and update the summaries in the same transaction; idempotent by
        ``(tenant_id, idempotency_key)``. A new outcome's ``participants`` write in that
        transaction too (:data:`OutcomeParticipant`); a retry calls none.

        With ``require_known_offer`` an ``offer_id`` given without a recommendation must be in
        the tenant's catalog, checked in the same transaction (UnknownOfferError otherwise); an
        offer resolved from ``recommendation_id + rank`` is taken as recorded then.
        InvalidInputError (nothing written) for a bad id, value, time or context, or a write
        that would make a summary non-finite."""
        ...

    def record_interactions_bulk(
        self,
        tenant_id: str,
        interactions: Iterable[InteractionIn],
        chunk_size: int = 50_000,
        *,
        replace: bool = False,
    ) -> BulkResult:
        """Record many outcomes, one transaction per chunk (each chunk all-or-nothing), with the
        same idempotency and summaries as :meth:`record_interaction`.

        Every row is validated before its chunk is written. A row that is invalid (bad id,
        value, time or context, unknown outcome, an unresolved ``recommendation_id``) is not
        written and is listed in ``BulkResult.rejected`` with its position and reason; the valid
        rows around it are stored. TenantNotFoundError for an unknown tenant (nothing written).

        A row whose key is already recorded with the same content is a duplicate (nothing
        written). With the same key and other content it is a duplicate too, unless
        ``replace``: then it replaces the recorded interaction as :meth:`correct_interaction`
        would (rows are applied in order, so the last row of a key wins) and is counted in
        ``BulkResult.replaced``."""
        ...

    def get_interaction(self, tenant_id: str, idempotency_key: str) -> Interaction | None:
        """The interaction recorded under this idempotency key, or None."""
        ...

    def delete_interaction(self, tenant_id: str, idempotency_key: str) -> Interaction:
        """Delete the interaction recorded under this key and recompute the customer, offer and
        daily summaries it counted in, in one transaction; return what was deleted.
        InteractionNotFoundError when no interaction has the key."""
        ...

    def correct_interaction(
        self,
        tenant_id: str,
        idempotency_key: str,
        interaction: InteractionIn,
        *,
        require_known_offer: bool = False,
    ) -> Correction:
        """Replace the interaction recorded under ``idempotency_key`` by ``interaction`` (whose
        ``idempotency_key`` must be the same; ``occurred_at`` None keeps the recorded time) and
        recompute the summaries of both, in one transaction. The corrected interaction is
        recorded anew (new ``interaction_id`` and ``recorded_at``). Validated like
        :meth:`record_interaction` (``require_known_offer`` applies to an offer other than
        the one recorded); InteractionNotFoundError when no interaction has the key. A
        correction equal to the recorded interaction changes nothing."""
        ...

    def forget_customer(
        self, tenant_id: str, customer_id: str, document_namespaces: Iterable[str] = ()
    ) -> ForgetResult:
        """Delete everything stored about a customer in one transaction: interactions, customer,
        offer and daily summaries, recommendations (with their items) and the plugin documents
        keyed by the customer id in ``document_namespaces``, the customer's trigger
        states and firings, and their attributes. Other tenants' data (the same
        customer id included) is untouched. Forgetting an unknown customer deletes nothing.
        TenantNotFoundError for an unknown tenant."""
        ...

    # -- triggers ---------------------------------------------------------------------------
    def put_trigger(
        self, tenant_id: str, key: str, document: Mapping[str, Any], status: str
    ) -> tuple[StoredTrigger, bool]:
        """Create or replace the trigger ``key`` (its uid is kept on replace); returns the
        stored trigger and whether it was created. Its states and events stay.
        WebhookEndpointNotFoundError when ``actions.webhook`` names an endpoint the tenant does
        not have (checked under the lock its removal takes)."""
        ...

    def get_trigger(self, tenant_id: str, key: str) -> StoredTrigger | None:
        """The stored trigger, or None."""
        ...

    def list_triggers(
        self, tenant_id: str, cursor: str | None = None, limit: int = 50
    ) -> Page[StoredTrigger]:
        """The tenant's triggers by key (keyset pages)."""
        ...

    def active_triggers(self, tenant_id: str) -> list[StoredTrigger]:
        """The tenant's active triggers, by key (one read)."""
        ...

    def delete_trigger(self, tenant_id: str, key: str) -> bool:
        """Delete the trigger with its states and events in one transaction; False when
        there was none."""
        ...

    def trigger_states(
        self,
        tenant_id: str,
        key: str,
        customer_ids: Sequence[str] | None = None,
        *,
        with_values: bool = True,
    ) -> dict[str, TriggerState]:
        """The stored states of the trigger, by customer id: of ``customer_ids`` (chunked
        reads), or all of them (one read). Customers without a row are absent. Without
        ``with_values`` the ``crossed`` values are not read (None), for bulk reads."""
        ...

    def disarmed_customers(self, tenant_id: str, key: str) -> frozenset[str]:
        """The customers whose state for the trigger is disarmed (fired, not re-armed): one
        query returning ids only, for a batch that reads full states of its candidates."""
        ...

    def commit_trigger_changes(
        self,
        tenant_id: str,
        key: str,
        changes: Sequence[StateChange],
        participants: Sequence[FiringParticipant] = (),
    ) -> list[Firing]:
        """Apply the state changes whose ``basis`` still holds, with their firings (event
        rows, recommendations) and the ``participants``' writes, in ONE transaction; returns
        the firings committed. A raise anywhere leaves nothing written."""
        ...

    def trigger_events(
        self, tenant_id: str, key: str, cursor: str | None = None, limit: int = 50
    ) -> Page[TriggerEventRecord]:
        """The trigger's firings, newest first (keyset pages)."""
        ...

    def iter_interactions(
        self, tenant_id: str, customer_id: str | None = None
    ) -> Iterator[Interaction]:
        """Interactions in recording order (optionally of one customer)."""
        ...

    # -- summaries and columnar reads -------------------------------------------------------
    def get_customer_summary(self, tenant_id: str, customer_id: str) -> CustomerSummary | None:
        """All-time summary of a customer, or None if the customer has no interactions."""
        ...

    def get_offer_summaries(self, tenant_id: str, customer_id: str) -> dict[str, OfferSummary]:
        """Per-offer summaries of a customer, by offer id."""
        ...

    def offer_consumption(self, tenant_id: str, day: date) -> dict[str, OfferConsumption]:
        """What positive outcomes consumed of the tenant's constrained offers: value on the UTC
        ``day`` and over all time, units against the stock, by offer id (offers without
        consumption are absent)."""
        ...

    def get_contact_counts(
        self, tenant_id: str, customer_id: str, start: date | None = None
    ) -> list[ContactCount]:
        """A customer's contacts per UTC day, offer and channel from ``start`` on (every day
        when None), by day; read by contact policies scoped to an offer, category or
        channel."""
        ...

    def tenant_contact_counts(
        self, tenant_id: str, start: date | None = None
    ) -> dict[str, list[ContactCount]]:
        """Every customer's contact counts from ``start`` on (every day when None), by customer
        id (one read; population simulations)."""
        ...

    def get_offer_outcomes(self, tenant_id: str, customer_id: str) -> list[OfferOutcome]:
        """A customer's interactions per (offer, outcome type): last time and count, by offer
        then outcome; read by ``cooldown`` and ``outcome_based`` policies."""
        ...

    def tenant_offer_outcomes(self, tenant_id: str) -> dict[str, list[OfferOutcome]]:
        """Every customer's offer outcomes by customer id (one read; population simulations)."""
        ...

    def get_daily_summaries(
        self,
        tenant_id: str,
        customer_id: str,
        start: date | None = None,
        end: date | None = None,
    ) -> list[DailySummary]:
        """Per-day summaries of a customer in ``[start, end]`` (inclusive), by day."""
        ...

    def customer_summaries(self, tenant_id: str) -> dict[str, CustomerSummary]:
        """Every customer's all-time summary, by customer id (one read for a whole tenant)."""
        ...

    def tenant_offer_summaries(self, tenant_id: str) -> dict[str, dict[str, OfferSummary]]:
        """Every customer's per-offer summaries (customer id -> offer id -> summary), one read."""
        ...

    def tenant_daily_summaries(
        self, tenant_id: str, start: date, end: date
    ) -> dict[str, list[DailySummary]]:
        """Every customer's daily summaries of the days in [start, end], oldest first, by
        customer id (one read)."""
        ...

    def customer_summary_columns(self, tenant_id: str) -> SummaryColumns:
        """Every customer's all-time summary as columns, in one query."""
        ...

    def interaction_columns(
        self,
        tenant_id: str,
        outcomes: Sequence[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> InteractionColumns:
        """Interactions (optionally only these outcomes, ``start <= occurred_at < end``) as
        columns ordered by customer and time."""
        ...

    # -- customer attributes ----------------------------------------------------------------
    def put_customer_attributes(
        self,
        tenant_id: str,
        attributes: Mapping[str, Mapping[str, Any]],
        *,
        merge: bool = False,
    ) -> int:
        """Write the attributes of many customers (customer id -> flat object of strings,
        finite numbers, booleans, nulls) in one transaction; returns how many customers.
        Replaces what each had, or with ``merge`` updates only the names given (a null removes
        one); nulls are never stored. InvalidInputError naming the customer for a bad object,
        TenantNotFoundError for an unknown tenant."""
        ...

    def get_customer_attributes(
        self, tenant_id: str, customer_ids: Iterable[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """The stored attributes of these customers (every customer of the tenant when None),
        read in chunks; customers without attributes are absent."""
        ...

    def customer_attributes_updated_at(self, tenant_id: str, customer_id: str) -> float | None:
        """When the customer's attributes were last written (epoch seconds), or None."""
        ...

    def delete_customer_attributes(self, tenant_id: str, customer_ids: Iterable[str]) -> int:
        """Delete these customers' attributes; returns how many customers had some."""
        ...

    # -- population simulations -----------------------------------------------------------
    def create_simulation(
        self, tenant_id: str, simulation_id: str, inputs: dict[str, Any]
    ) -> SimulationRecord:
        """Store a new run, ``queued``, with its ``inputs`` (a JSON document)."""
        ...

    def update_simulation(
        self,
        tenant_id: str,
        simulation_id: str,
        *,
        status: str | None = None,
        done: int | None = None,
        total: int | None = None,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """Record a run's progress, status, result or error and beat its heartbeat
        (``updated_at``); False when the run is unknown or already finished (done, failed)."""
        ...

    def get_simulation(self, tenant_id: str, simulation_id: str) -> SimulationRecord | None:
        """A run of the tenant with its result, or None (another tenant's run is None)."""
        ...

    def list_simulations(
        self, tenant_id: str, cursor: str | None = None, limit: int = 50
    ) -> Page[SimulationRecord]:
        """The tenant's runs, newest first, without their results."""
        ...

    def fail_stale_simulations(self, stale_before: float, error: str) -> int:
        """Mark failed (with ``error``) every queued or running run whose heartbeat is older
        than ``stale_before`` (epoch seconds): its process died. Returns how many."""
        ...

    # -- plugin documents -------------------------------------------------------------------
    def put_documents(
        self,
        namespace: str,
        tenant_id: str,
        documents: Mapping[str, Any],
        replace: bool = False,
    ) -> int:
        """Write JSON documents by key in one transaction; with ``replace`` the namespace's
        documents for the tenant become exactly ``documents``. On any failure (for instance a
        document that ``document_problem`` refuses: InvalidInputError naming the key and the
        path inside it) nothing changes. Return the count written."""
        ...

    def put_documents_json(
        self,
        namespace: str,
        tenant_id: str,
        keys: Sequence[str],
        json_texts: Iterable[str],
        replace: bool = False,
    ) -> int:
        """Like :meth:`put_documents` for documents the caller has already encoded: ``keys``
        (each once) and, in the same order, one JSON text per key (consumed lazily inside the
        transaction, so a generator may report progress). The texts are checked to be JSON,
        nested at most ``MAX_DOCUMENT_DEPTH`` levels and valid Unicode (no lone surrogate, raw
        or as a ``\\u`` escape), and stored as given; ``get_document`` returns them decoded.
        Numbers are not range-checked on this path (that would parse every text): encode only
        finite numbers and 64-bit integers. InvalidInputError (and nothing changes) for an
        invalid or repeated key, a text that is refused, or a text count that differs from the
        key count. Return the count written."""
        ...

    def update_documents(
        self,
        tenant_id: str,
        keys: Iterable[tuple[str, str]],
        update: Callable[[dict[tuple[str, str], Any]], Mapping[tuple[str, str], Any]],
    ) -> dict[tuple[str, str], Any]:
        """Read-modify-write plugin documents atomically: in one write transaction, holding a
        lock on each ``(namespace, key)`` (taken in sorted order), ``update(current)``
        receives the current documents of ``keys`` (absent ones left out) and returns the
        documents to write (by ``(namespace, key)``, among ``keys``). Concurrent updates of a
        document run one after the other, in every process (counters stay exact). ``update``
        may run again when the database retries the transaction, so it must only compute
        from its argument. Returns what was written."""
        ...

    def get_document(self, namespace: str, tenant_id: str, key: str) -> Any | None:
        """One document, or None."""
        ...

    def get_documents(
        self, namespace: str, tenant_id: str, keys: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """Documents by key (all of the namespace when ``keys`` is None)."""
        ...

    def delete_documents(
        self, namespace: str, tenant_id: str, keys: Iterable[str] | None = None
    ) -> int:
        """Delete documents (all of the namespace when ``keys`` is None); return the count."""
        ...

    # -- locks ------------------------------------------------------------------------------
    def try_lock(self, name: str, ttl_seconds: float = 300.0) -> LockHandle | None:
        """Take a named lease shared by every process on this database, or None if another
        holder's lease has not expired. Renew long jobs with ``handle.renew``. ``ttl_seconds``
        is a finite number >= 0."""
        ...

    # -- webhook endpoints (webhooks_sql) ---------------------------------------------------
    def create_webhook_endpoint(
        self,
        tenant_id: str,
        url: str,
        *,
        description: str | None = None,
        event_types: Sequence[str] | None = None,
    ) -> tuple[WebhookEndpoint, str]:
        """Add an endpoint; returns it with its signing secret (the only time it is given)."""
        ...

    def list_webhook_endpoints(self, tenant_id: str) -> list[WebhookEndpoint]:
        """The tenant's endpoints, oldest first (never their secrets)."""
        ...

    def get_webhook_endpoint(self, tenant_id: str, endpoint_id: str) -> WebhookEndpoint | None:
        """One endpoint of the tenant, or None."""
        ...

    def delete_webhook_endpoint(self, tenant_id: str, endpoint_id: str) -> bool:
        """Remove an endpoint and its deliveries; False when the tenant has no such endpoint."""
        ...

    def rotate_webhook_secret(
        self, tenant_id: str, endpoint_id: str, *, grace_seconds: int = 86400
    ) -> tuple[WebhookEndpoint, str]:
        """A new signing secret (returned once); the old one signs alongside for the grace."""
        ...

    # -- the outbox (outbox_sql) ------------------------------------------------------------
    def write(self, work: Callable[[Any], T]) -> T:
        """Run ``work(cursor)`` in one write transaction (retried on collisions)."""
        ...

    def write_events(
        self, cur: Any, events: Sequence[OutboxEvent], *, endpoint_id: str | None = None
    ) -> EventsWritten:
        """Write events and their deliveries inside the caller's transaction (``write``)."""
        ...

    def publish_events(
        self, events: Sequence[OutboxEvent], *, endpoint_id: str | None = None
    ) -> EventsWritten:
        """``write_events`` in a transaction of its own."""
        ...

    def get_event(self, tenant_id: str, event_id: str) -> OutboxEvent | None:
        """One outbox event of the tenant, or None."""
        ...

    def claim_deliveries(self, limit: int, *, lease_seconds: float = 60.0) -> list[ClaimedDelivery]:
        """Take due pending deliveries under a lease (see ``outbox_sql``)."""
        ...

    def complete_deliveries(self, results: Sequence[AttemptResult]) -> int:
        """Record attempts' results (only while their lease holds); returns how many."""
        ...

    def list_deliveries(
        self,
        tenant_id: str,
        *,
        status: str | None = None,
        endpoint_id: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Delivery]:
        """The tenant's deliveries, newest first."""
        ...

    def get_delivery(self, tenant_id: str, delivery_id: int) -> Delivery | None:
        """One delivery of the tenant, or None."""
        ...

    def redeliver(self, tenant_id: str, delivery_id: int) -> Delivery:
        """Make a delivery pending again, due now."""
        ...

    def replay_failed(self, tenant_id: str, endpoint_id: str, since: datetime) -> int:
        """Make the endpoint's failed deliveries since ``since`` pending again."""
        ...

    def purge_events(self, before: datetime, *, chunk: int = 5000, limit: int | None = None) -> int:
        """Delete events written before ``before`` whose deliveries are all finished, with
        their deliveries; returns how many events."""
        ...

    def delivery_counts(self, tenant_id: str | None = None) -> dict[str, int]:
        """How many deliveries are in each status."""
        ...
