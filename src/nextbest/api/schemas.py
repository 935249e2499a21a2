"""Request bodies of the HTTP API (camelCase JSON, strict types: ``"5"`` is not a number).

Ids follow the store's rules (:func:`nextbest.store.id_problem`): 1-256 characters, no control
characters. ``customerId`` and ``idempotencyKey`` are stripped of surrounding whitespace first,
so a blank one is refused like an empty one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    field_validator,
)

from ..store import MAX_ID_LENGTH, id_problem

#: How far in the future an outcome's timestamp may lie (clock skew between systems).
MAX_FUTURE_SKEW = timedelta(minutes=5)

_MAX_ID = MAX_ID_LENGTH


def check_id(value: str) -> str:
    """``value`` if it is a valid id, else ValueError with the reason (for pydantic)."""
    problem = id_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


#: An id as the store takes it.
Id = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=_MAX_ID), AfterValidator(check_id)
]
#: An id stripped of surrounding whitespace before it is checked (blank means missing).
StrippedId = Annotated[
    StrictStr,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=_MAX_ID),
    AfterValidator(check_id),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class RecommendBody(_Body):
    """``POST /api/v1/recommend``."""

    customer_id: StrippedId = Field(alias="customerId")
    channel: Id | None = None
    placement: Id | None = None
    limit: StrictInt = Field(5, ge=1, le=50)
    attributes: dict[str, Any] = Field(default_factory=dict)
    segments: list[StrictStr] = Field(default_factory=list)
    decision_flow_key: Id | None = Field(None, alias="decisionFlowKey")
    explain: StrictBool = False


def parse_timestamp(value: str, now: datetime | None = None) -> datetime:
    """An ISO-8601 time as an aware UTC datetime (naive means UTC); at most 5 minutes ahead."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an ISO-8601 time; use e.g. 2026-01-31T12:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    now = now or datetime.now(UTC)
    if parsed > now + MAX_FUTURE_SKEW:
        raise ValueError(
            f"{value!r} is more than {int(MAX_FUTURE_SKEW.total_seconds() // 60)} minutes in "
            "the future; send the time the outcome happened"
        )
    return parsed


class RespondBody(_Body):
    """``POST /api/v1/respond``: one outcome of one offer for one customer.

    Name the offer with ``recommendationId`` + ``rank`` (as returned by recommend) or with
    ``offerId``. ``idempotencyKey`` may come from the ``Idempotency-Key`` header instead.
    """

    customer_id: StrippedId = Field(alias="customerId")
    outcome: StrictStr = Field(min_length=1, max_length=64)
    idempotency_key: StrippedId | None = Field(None, alias="idempotencyKey")
    recommendation_id: Id | None = Field(None, alias="recommendationId")
    rank: StrictInt | None = Field(None, ge=1)
    offer_id: Id | None = Field(None, alias="offerId")
    # The sign rule depends on the outcome (a refund's value is <= 0): the store applies it.
    conversion_value: float | None = Field(
        None, alias="conversionValue", allow_inf_nan=False, strict=True
    )
    timestamp: datetime | None = None
    channel_id: Id | None = Field(None, alias="channelId")
    context: dict[str, Any] | None = None

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("must be an ISO-8601 time string")
        return parse_timestamp(value)


class OutcomeTypeBody(_Body):
    """``POST /api/v1/outcome-types``: a custom outcome type of the tenant."""

    name: StrictStr
    classification: StrictStr
    kind: StrictStr = "response"


class KeyBody(_Body):
    """``POST /api/v1/keys``: a new key of the caller's tenant."""

    role: StrictStr


__all__ = [
    "MAX_FUTURE_SKEW",
    "Id",
    "KeyBody",
    "OutcomeTypeBody",
    "RecommendBody",
    "RespondBody",
    "StrippedId",
    "check_id",
    "parse_timestamp",
]
