"""Exceptions raised by the store. Every message says what to do about it."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error raised by :mod:`nextbest.store`."""


class StoreConfigurationError(StoreError):
    """The database URL or store options are unusable (unknown scheme, bad path, ...)."""


class SchemaNotReadyError(StoreError):
    """The database schema is missing or older than this version of nextbest expects."""


class StoreUnavailableError(StoreError):
    """The database cannot be reached (no connection could be opened): the server is down, or
    the URL names the wrong host, port or database. Nothing was read or written."""


class NotFoundError(StoreError):
    """Base class for a missing tenant, offer, flow, recommendation or outcome type."""


class TenantNotFoundError(NotFoundError):
    """The tenant does not exist."""


class OfferNotFoundError(NotFoundError):
    """The offer does not exist for this tenant."""


class FlowNotFoundError(NotFoundError):
    """The flow (or the requested version) does not exist for this tenant."""


class UnknownOutcomeError(NotFoundError):
    """The outcome name is neither a built-in nor one of the tenant's custom outcome types."""


class UnknownRecommendationError(NotFoundError):
    """The recommendation id is unknown for this tenant (and customer)."""


class UnknownRankError(NotFoundError):
    """The recommendation exists but has no item at the given rank."""


class UnknownOfferError(NotFoundError):
    """An outcome names an offer that is not in the tenant's catalog."""


class InteractionNotFoundError(NotFoundError):
    """No interaction is recorded under this idempotency key for the tenant."""


class WebhookEndpointNotFoundError(NotFoundError):
    """No webhook endpoint with this id in the tenant."""


class DeliveryNotFoundError(NotFoundError):
    """No webhook delivery with this id in the tenant."""


class ConflictError(StoreError):
    """Creating something that already exists, or a write that collided with concurrent ones."""


class EndpointInUseError(ConflictError):
    """A webhook endpoint that triggers name in their ``webhook`` action cannot be removed:
    their firings would go nowhere. ``triggers`` lists their keys."""

    def __init__(self, message: str, triggers: list[str]) -> None:
        super().__init__(message)
        self.triggers = triggers


class TenantExistsError(ConflictError):
    """A tenant with this id already exists."""


class OutcomeTypeExistsError(ConflictError):
    """An outcome type with this name already exists (built-in or custom)."""


class RecommendationExistsError(ConflictError):
    """A recommendation with this id was already saved for the tenant."""


class OfferExistsError(ConflictError):
    """An offer with this id already exists for the tenant (``create_offer`` only creates)."""

    def __init__(self, message: str, *, offer_id: str) -> None:
        super().__init__(message)
        self.offer_id = offer_id


class StoreBusyError(ConflictError):
    """The write collided with concurrent work and did not complete: nothing changed, and the
    same call made again later succeeds. ``retryable`` is True for the collisions the store
    retries by itself (a deadlock or serialization failure), which it raises only once its
    bounded retries are spent; False when the database stayed busy for its whole timeout (a
    SQLite write lock, an exhausted PostgreSQL connection pool)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class InvalidInputError(StoreError, ValueError):
    """An argument is malformed: bad id, role, classification, value, cursor or document.

    ``field`` names the argument at fault when one can be named (``"customer id"``,
    ``"context"``, ...), so callers such as the HTTP API can point at the input to fix.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
