"""Storage for nextbest: the :class:`Store` protocol, its records, and :func:`open_store`.

``open_store()`` picks the implementation from a URL: ``sqlite:///path.db`` (relative to the
working directory; ``sqlite:////abs/path.db`` for an absolute path) or ``postgresql://...``.
Without a URL it reads ``NEXTBEST_DATABASE_URL`` and defaults to ``sqlite:///nextbest.db``.
"""

from __future__ import annotations

import os

from nextbest.store.base import (
    ActivitySummary,
    ApiKey,
    BulkRejection,
    BulkResult,
    ContactCount,
    Correction,
    CustomerSummary,
    DailySummary,
    Firing,
    FiringParticipant,
    FiringRecommendation,
    FlowInfo,
    FlowVersion,
    ForgetResult,
    Interaction,
    InteractionColumns,
    InteractionIn,
    LockHandle,
    OfferActivity,
    OfferConsumption,
    OfferOutcome,
    OfferSummary,
    OutcomeParticipant,
    OutcomeTransaction,
    Page,
    Recommendation,
    RecommendationItem,
    RecordResult,
    SimulationRecord,
    StateChange,
    Store,
    StoredTrigger,
    SummaryColumns,
    Tenant,
    TriggerEventRecord,
    TriggerState,
    from_epoch,
    to_epoch,
)
from nextbest.store.errors import (
    ConflictError,
    DeliveryNotFoundError,
    EndpointInUseError,
    FlowNotFoundError,
    InteractionNotFoundError,
    InvalidInputError,
    NotFoundError,
    OfferExistsError,
    OfferNotFoundError,
    OutcomeTypeExistsError,
    RecommendationExistsError,
    SchemaNotReadyError,
    StoreBusyError,
    StoreConfigurationError,
    StoreError,
    StoreUnavailableError,
    TenantExistsError,
    TenantNotFoundError,
    UnknownOfferError,
    UnknownOutcomeError,
    UnknownRankError,
    UnknownRecommendationError,
    WebhookEndpointNotFoundError,
)
from nextbest.store.keys import ROLES, Role
from nextbest.store.limits import (
    MAX_DATA_BYTES,
    MAX_DOCUMENT_DEPTH,
    MAX_FLOW_VERSION,
    MAX_FUTURE_SKEW,
    MAX_ID_LENGTH,
    MAX_RANK,
    MAX_VALUE,
    TIME_MAX,
    TIME_MIN,
    data_problem,
    document_problem,
    epoch_problem,
    id_problem,
    parse_time,
    time_problem,
    value_problem,
)
from nextbest.store.outbox_types import (
    DELIVERY_STATUSES,
    AttemptResult,
    ClaimedDelivery,
    Delivery,
    DeliveryStatus,
    EventsWritten,
    OutboxEvent,
    WebhookEndpoint,
)
from nextbest.store.outcomes import (
    BUILTIN_OUTCOME_TYPES,
    CONVERSION,
    REFUND,
    OutcomeType,
    outcome_value_problem,
)
from nextbest.store.tenants_sql import (
    ACCEPT_UNKNOWN_OFFERS_SETTING,
    TENANT_SETTINGS,
    tenant_setting_problem,
)

DATABASE_URL_ENV = "NEXTBEST_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite:///nextbest.db"


def open_store(
    url: str | None = None, *, schema: str | None = None, pepper: bytes | None = None
) -> Store:
    """Open the store at ``url`` (see the module docstring). ``schema`` applies to PostgreSQL
    only; ``pepper`` overrides NEXTBEST_API_KEY_PEPPER (tests). The schema is not created:
    call ``upgrade()``."""
    url = url or os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL
    if url.startswith("sqlite:///"):
        from nextbest.store.sqlite import SqliteStore

        if schema is not None:
            raise StoreConfigurationError("schema= applies to PostgreSQL URLs only")
        path = url.removeprefix("sqlite:///")
        if not path:
            raise StoreConfigurationError(f"{url!r} has no file path: use sqlite:///nextbest.db")
        return SqliteStore(path, pepper=pepper)
    if url.startswith(("postgresql://", "postgres://")):
        from nextbest.store.postgres import PostgresStore

        return PostgresStore(url, schema=schema, pepper=pepper)
    scheme = url.split("://", 1)[0] if "://" in url else url
    raise StoreConfigurationError(
        f"unsupported database URL scheme {scheme!r}: use sqlite:///path.db or "
        "postgresql://user@host:port/database"
    )


__all__ = [
    "ACCEPT_UNKNOWN_OFFERS_SETTING",
    "BUILTIN_OUTCOME_TYPES",
    "CONVERSION",
    "DATABASE_URL_ENV",
    "DEFAULT_DATABASE_URL",
    "DELIVERY_STATUSES",
    "MAX_DATA_BYTES",
    "MAX_DOCUMENT_DEPTH",
    "MAX_FLOW_VERSION",
    "MAX_FUTURE_SKEW",
    "MAX_ID_LENGTH",
    "MAX_RANK",
    "MAX_VALUE",
    "REFUND",
    "ROLES",
    "TENANT_SETTINGS",
    "TIME_MAX",
    "TIME_MIN",
    "ActivitySummary",
    "ApiKey",
    "AttemptResult",
    "BulkRejection",
    "BulkResult",
    "ClaimedDelivery",
    "ConflictError",
    "ContactCount",
    "Correction",
    "CustomerSummary",
    "DailySummary",
    "Delivery",
    "DeliveryNotFoundError",
    "DeliveryStatus",
    "EndpointInUseError",
    "EventsWritten",
    "Firing",
    "FiringParticipant",
    "FiringRecommendation",
    "FlowInfo",
    "FlowNotFoundError",
    "FlowVersion",
    "ForgetResult",
    "Interaction",
    "InteractionColumns",
    "InteractionIn",
    "InteractionNotFoundError",
    "InvalidInputError",
    "LockHandle",
    "NotFoundError",
    "OfferActivity",
    "OfferConsumption",
    "OfferExistsError",
    "OfferNotFoundError",
    "OfferOutcome",
    "OfferSummary",
    "OutboxEvent",
    "OutcomeParticipant",
    "OutcomeTransaction",
    "OutcomeType",
    "OutcomeTypeExistsError",
    "Page",
    "Recommendation",
    "RecommendationExistsError",
    "RecommendationItem",
    "RecordResult",
    "Role",
    "SchemaNotReadyError",
    "SimulationRecord",
    "StateChange",
    "Store",
    "StoreBusyError",
    "StoreConfigurationError",
    "StoreError",
    "StoreUnavailableError",
    "StoredTrigger",
    "SummaryColumns",
    "Tenant",
    "TenantExistsError",
    "TenantNotFoundError",
    "TriggerEventRecord",
    "TriggerState",
    "UnknownOfferError",
    "UnknownOutcomeError",
    "UnknownRankError",
    "UnknownRecommendationError",
    "WebhookEndpoint",
    "WebhookEndpointNotFoundError",
    "data_problem",
    "document_problem",
    "epoch_problem",
    "from_epoch",
    "id_problem",
    "open_store",
    "outcome_value_problem",
    "parse_time",
    "tenant_setting_problem",
    "time_problem",
    "to_epoch",
    "value_problem",
]
