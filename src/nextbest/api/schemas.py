"""Request bodies and parameter types of the HTTP API (camelCase JSON, strict types: ``"5"`` is
not a number).

Every id, value and time is checked by :mod:`nextbest.store.limits`, the one definition of what
they may be, and the OpenAPI schema states the same constraints:

- ids (:data:`Id`, :data:`StrippedId`, path and header ids): 1-256 characters, no control
  characters, valid Unicode; ``customerId`` and ``idempotencyKey`` are stripped of surrounding
  whitespace first, so a blank one is refused like an empty one;
- times (:data:`Time`, :data:`OutcomeTime`): ISO-8601 within [1900-01-01, 2200-01-01) UTC
  (naive means UTC); an outcome's time at most 5 minutes ahead of now;
- values (``conversionValue``): finite, at most 1e12 in magnitude, not negative;
- free-form data (``attributes``, ``context``): a storable document of at most 16 KiB as JSON.

Plugins use these types (exported by :mod:`nextbest.api`) for their own parameters, so their
routes answer the same 400s.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    WithJsonSchema,
)

from ..models.flows import SLUG
from ..models.request import (
    MAX_ATTRIBUTES_BYTES,
    MAX_DECISIONS,
    MAX_SEGMENTS,
    check_data,
    check_id,
)
from ..store import (
    MAX_FLOW_VERSION,
    MAX_FUTURE_SKEW,
    MAX_ID_LENGTH,
    MAX_VALUE,
    ROLES,
    TIME_MAX,
    TIME_MIN,
    parse_time,
    time_problem,
    value_problem,
)
from ..store.outcomes import CLASSIFICATIONS, KINDS, OUTCOME_NAME_PATTERN

#: The largest encoded size of an outcome's ``context`` (compact UTF-8 JSON, in bytes).
MAX_CONTEXT_BYTES = MAX_ATTRIBUTES_BYTES

#: What an id may hold, as a JSON Schema pattern: no control characters (U+0000-U+001F,
#: U+007F-U+009F).
ID_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
#: An id that is not blank once surrounding whitespace is stripped.
STRIPPED_ID_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"  # noqa: E501

_ID_DESCRIPTION = (
    f"An id: 1-{MAX_ID_LENGTH} characters, no control characters (U+0000-U+001F, "
    "U+007F-U+009F), valid Unicode."
)
#: The JSON Schema of an id (what the validators of :data:`Id` enforce).
ID_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_ID_LENGTH,
    "pattern": ID_PATTERN,
    "description": _ID_DESCRIPTION,
}
#: The JSON Schema of an id stripped of surrounding whitespace (``customerId``, idempotency keys).
STRIPPED_ID_SCHEMA: dict[str, Any] = ID_SCHEMA | {
    "pattern": STRIPPED_ID_PATTERN,
    "description": _ID_DESCRIPTION + " Surrounding whitespace is stripped; blank is refused.",
}

#: A flow key in a flow document: an id made of letters, digits, ``_``, ``.`` and ``-``.
FLOW_KEY_SCHEMA: dict[str, Any] = ID_SCHEMA | {
    "pattern": SLUG,
    "description": f"1-{MAX_ID_LENGTH} letters, digits, '_', '.' or '-', starting with a "
    "letter or digit.",
}
#: A flow version number.
FLOW_VERSION_SCHEMA: dict[str, Any] = {
    "type": "integer",
    "minimum": 1,
    "maximum": MAX_FLOW_VERSION,
}


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


_TIME_DESCRIPTION = (
    f"An ISO-8601 time (e.g. 2026-01-31T12:00:00Z; without an offset it is UTC) from "
    f"{_iso(TIME_MIN)} up to, not including, {_iso(TIME_MAX)}."
)
_TIME_SCHEMA: dict[str, Any] = {
    "type": "string",
    "format": "date-time",
    "description": _TIME_DESCRIPTION,
}
_OUTCOME_TIME_SCHEMA = _TIME_SCHEMA | {
    "description": _TIME_DESCRIPTION
    + f" At most {int(MAX_FUTURE_SKEW.total_seconds() // 60)} minutes after now.",
}


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be an ISO-8601 time string")
    return parse_time(value)


def _check_outcome_time(value: datetime) -> datetime:
    problem = time_problem(value, outcome=True)
    if problem is not None:
        raise ValueError(problem)
    return value


def _check_value(value: float) -> float:
    problem = value_problem(value, allow_negative=True)  # the sign: per outcome, in the store
    if problem is not None:
        raise ValueError(problem)
    return float(value)


#: An id as the store takes it.
Id = Annotated[
    StrictStr,
    StringConstraints(min_length=1, max_length=MAX_ID_LENGTH),
    AfterValidator(check_id),
    WithJsonSchema(ID_SCHEMA),
]
#: An id stripped of surrounding whitespace before it is checked (blank means missing).
StrippedId = Annotated[
    StrictStr,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID_LENGTH),
    AfterValidator(check_id),
    WithJsonSchema(STRIPPED_ID_SCHEMA),
]
#: A time (``asOf``): an aware UTC datetime within the window (:func:`nextbest.store.parse_time`).
Time = Annotated[datetime, BeforeValidator(_parse_time), WithJsonSchema(_TIME_SCHEMA)]
#: The time an outcome happened: a :data:`Time` at most 5 minutes ahead of now.
OutcomeTime = Annotated[
    datetime,
    BeforeValidator(_parse_time),
    AfterValidator(_check_outcome_time),
    WithJsonSchema(_OUTCOME_TIME_SCHEMA),
]
#: An outcome's value (:func:`nextbest.store.value_problem`): finite, at most 1e12 in magnitude;
#: >= 0, except a ``refund``'s, which is <= 0 (:func:`nextbest.store.outcome_value_problem`).
Value = Annotated[
    StrictFloat,
    AfterValidator(_check_value),
    WithJsonSchema(
        {
            "type": "number",
            "minimum": -MAX_VALUE,
            "maximum": MAX_VALUE,
            "description": "The outcome's value: >= 0, except for a refund (the amount "
            "returned, <= 0).",
        }
    ),
]
#: Free-form data (``attributes``, ``context``): a storable document of at most 16 KiB.
Data = Annotated[
    dict[str, Any],
    AfterValidator(check_data),
    WithJsonSchema(
        {
            "type": "object",
            "additionalProperties": True,
            "description": f"Free-form JSON, at most {MAX_ATTRIBUTES_BYTES} bytes encoded.",
        }
    ),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class RecommendBody(_Body):
    """``POST /api/v1/recommend``."""

    customer_id: StrippedId = Field(alias="customerId")
    channel: Id | None = None
    placement: Id | None = None
    limit: StrictInt = Field(5, ge=1, le=MAX_DECISIONS)
    attributes: Data = Field(default_factory=dict)
    segments: list[Id] = Field(default_factory=list, max_length=MAX_SEGMENTS)
    decision_flow_key: Id | None = Field(None, alias="decisionFlowKey")
    explain: StrictBool = False


class RespondBody(_Body):
    """``POST /api/v1/respond``: one outcome of one offer for one customer.

    Name the offer with ``recommendationId`` + ``rank`` (as returned by recommend) or with
    ``offerId``. ``idempotencyKey`` may come from the ``Idempotency-Key`` header instead.
    """

    customer_id: StrippedId = Field(alias="customerId")
    outcome: Id
    idempotency_key: StrippedId | None = Field(None, alias="idempotencyKey")
    recommendation_id: Id | None = Field(None, alias="recommendationId")
    rank: StrictInt | None = Field(None, ge=1, le=MAX_DECISIONS)
    offer_id: Id | None = Field(None, alias="offerId")
    # The sign rule depends on the outcome (a refund's value is <= 0): the store applies it.
    conversion_value: Value | None = Field(None, alias="conversionValue")
    timestamp: OutcomeTime | None = None
    channel_id: Id | None = Field(None, alias="channelId")
    context: Data | None = None


def _one_of(values: tuple[str, ...]) -> WithJsonSchema:
    """The schema of a string the store checks against ``values`` (the store names the rule)."""
    return WithJsonSchema({"type": "string", "enum": list(values)})


class OutcomeTypeBody(_Body):
    """``POST /api/v1/outcome-types``: a custom outcome type of the tenant."""

    name: Annotated[
        StrictStr,
        # The store checks the rule (naming the field); the schema states it.
        Field(
            description="1-64 lower-case letters, digits or '_', starting with a letter.",
            json_schema_extra={"pattern": OUTCOME_NAME_PATTERN, "minLength": 1, "maxLength": 64},
        ),
    ]
    classification: Annotated[StrictStr, _one_of(CLASSIFICATIONS)]
    kind: Annotated[StrictStr, _one_of(KINDS)] = "response"


class KeyBody(_Body):
    """``POST /api/v1/keys``: a new key of the caller's tenant."""

    role: Annotated[StrictStr, _one_of(ROLES)]


__all__ = [
    "ID_PATTERN",
    "ID_SCHEMA",
    "MAX_CONTEXT_BYTES",
    "STRIPPED_ID_SCHEMA",
    "Data",
    "Id",
    "KeyBody",
    "OutcomeTime",
    "OutcomeTypeBody",
    "RecommendBody",
    "RespondBody",
    "StrippedId",
    "Time",
    "Value",
    "check_id",
]
