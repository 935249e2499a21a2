"""Request bodies of the HTTP API (camelCase JSON, strict types: ``"5"`` is not a number)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

#: How far in the future an outcome's timestamp may lie (clock skew between systems).
MAX_FUTURE_SKEW = timedelta(minutes=5)

_MAX_ID = 256


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class RecommendBody(_Body):
    """``POST /api/v1/recommend``."""

    customer_id: StrictStr = Field(alias="customerId", min_length=1, max_length=200)
    channel: StrictStr | None = None
    placement: StrictStr | None = None
    limit: StrictInt = Field(5, ge=1, le=50)
    attributes: dict[str, Any] = Field(default_factory=dict)
    segments: list[StrictStr] = Field(default_factory=list)
    decision_flow_key: StrictStr | None = Field(None, alias="decisionFlowKey", min_length=1)
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

    customer_id: StrictStr = Field(alias="customerId", min_length=1, max_length=_MAX_ID)
    outcome: StrictStr = Field(min_length=1, max_length=64)
    idempotency_key: StrictStr | None = Field(
        None, alias="idempotencyKey", min_length=1, max_length=_MAX_ID
    )
    recommendation_id: StrictStr | None = Field(
        None, alias="recommendationId", min_length=1, max_length=_MAX_ID
    )
    rank: StrictInt | None = Field(None, ge=1)
    offer_id: StrictStr | None = Field(None, alias="offerId", min_length=1, max_length=_MAX_ID)
    conversion_value: float | None = Field(
        None, alias="conversionValue", ge=0, allow_inf_nan=False, strict=True
    )
    timestamp: datetime | None = None
    channel_id: StrictStr | None = Field(None, alias="channelId", max_length=256)
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
    "KeyBody",
    "OutcomeTypeBody",
    "RecommendBody",
    "RespondBody",
    "parse_timestamp",
]
