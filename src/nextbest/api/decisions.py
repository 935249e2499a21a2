"""``POST /api/v1/recommend`` and ``POST /api/v1/respond``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import WithJsonSchema

from ..errors import FlowValidationError, UnknownFlowError
from ..ingest import RESERVED_KEY_PREFIX
from ..models.request import DecisionRequest
from ..service import ACCEPT_UNKNOWN_OFFERS, DecisionService
from ..store import (
    Interaction,
    InteractionIn,
    InvalidInputError,
    UnknownOfferError,
    UnknownOutcomeError,
    UnknownRankError,
    UnknownRecommendationError,
)
from .auth import WRITE_ROLES, AuthContext, require_role
from .errors import ApiError, field_error
from .routing import JsonRoute
from .schemas import STRIPPED_ID_SCHEMA, RecommendBody, RespondBody, check_id

router = APIRouter(prefix="/api/v1", tags=["decisions"], route_class=JsonRoute)
Writer = Annotated[AuthContext, Depends(require_role(*WRITE_ROLES))]


def get_service(request: Request) -> DecisionService:
    """The app's DecisionService (set by ``create_app``)."""
    service: DecisionService = request.app.state.service
    return service


Service = Annotated[DecisionService, Depends(get_service)]

# The store names the argument at fault; these are the respond body fields they come from.
_RESPOND_FIELDS = {
    "customer id": "body.customerId",
    "offer id": "body.offerId",
    "channel": "body.channelId",
    "idempotency key": "body.idempotencyKey",
    "recommendation id": "body.recommendationId",
    "rank": "body.rank",
    "context": "body.context",
    "value": "body.conversionValue",
    "occurred at": "body.timestamp",
    "outcome": "body.outcome",
}


@router.post("/recommend", summary="Ranked offers for one customer")
def recommend(body: RecommendBody, auth: Writer, service: Service) -> dict[str, Any]:
    """Run the tenant's published flow (``decisionFlowKey``, else the default one) for a
    customer; the result is stored so outcomes can cite ``recommendationId`` + ``rank``.
    With a control group (flow or tenant setting ``controlGroup``, docs/learning.md) the answer
    carries ``group``: ``control`` (no offer, or one at random) or ``treatment``."""
    request = DecisionRequest(
        customer_id=body.customer_id,
        channel=body.channel,
        placement=body.placement,
        limit=body.limit,
        attributes=body.attributes,
        segments=tuple(body.segments),
        decision_flow_key=body.decision_flow_key,
        explain=body.explain,
    )
    try:
        result = service.recommend(auth.tenant_id, request)
    except UnknownFlowError as exc:
        raise field_error("body.decisionFlowKey", str(exc), "unknown_flow") from None
    except FlowValidationError as exc:
        # the request is fine; the published flow or catalog stored for the tenant no longer
        # validates (written around the API, or by an older version): say what to fix
        details = [{"field": f"stored.{i.path}", "message": i.message} for i in exc.issues]
        raise ApiError(
            409,
            f"the tenant's stored flow or offers do not validate; fix and publish again: {exc}",
            code="invalid_stored_flow",
            details=details,
        ) from None
    return result.to_dict()


def interaction_json(interaction: Interaction) -> dict[str, Any]:
    """The JSON of a recorded outcome (what respond returns, the same on every retry)."""
    return {
        "interactionId": interaction.interaction_id,
        "idempotencyKey": interaction.idempotency_key,
        "customerId": interaction.customer_id,
        "offerId": interaction.offer_id,
        "outcome": interaction.outcome,
        "classification": interaction.classification,
        "kind": interaction.kind,
        "conversionValue": interaction.value,
        "timestamp": interaction.occurred_at.isoformat(),
        "recommendationId": interaction.recommendation_id,
        "rank": interaction.rank,
        "channelId": interaction.channel,
        "recordedAt": interaction.recorded_at.isoformat(),
    }


def outcome_of(body: RespondBody, key: str) -> InteractionIn:
    """The outcome a respond body (or a correction's) describes, recorded under ``key``."""
    if body.recommendation_id is not None and body.rank is None:
        raise field_error("body.rank", "required together with recommendationId")
    if body.rank is not None and body.recommendation_id is None:
        raise field_error("body.recommendationId", "required together with rank")
    if body.recommendation_id is None and body.offer_id is None:
        raise field_error("body.offerId", "give offerId, or recommendationId and rank")
    return InteractionIn(
        customer_id=body.customer_id,
        outcome=body.outcome,
        idempotency_key=key,
        offer_id=body.offer_id,
        channel=body.channel_id,
        value=body.conversion_value or 0.0,
        occurred_at=body.timestamp,
        recommendation_id=body.recommendation_id,
        rank=body.rank,
        context=body.context,
    )


#: The store errors :func:`outcome_error` answers.
OUTCOME_ERRORS = (
    InvalidInputError,
    UnknownOfferError,
    UnknownOutcomeError,
    UnknownRecommendationError,
    UnknownRankError,
)


def outcome_error(exc: Exception) -> ApiError:
    """The answer to a store error met while recording or correcting an outcome: 404
    ``unknown_offer`` for an offer outside the catalog, else a 400 naming the body field."""
    if isinstance(exc, UnknownOfferError):
        message = (
            f"{exc}; create the offer first, cite recommendationId + rank, or set the tenant "
            f"setting {ACCEPT_UNKNOWN_OFFERS}: true to record outcomes of offers managed elsewhere"
        )
        return ApiError(
            404,
            message,
            code="unknown_offer",
            details=[{"field": "body.offerId", "message": message}],
        )
    if isinstance(exc, UnknownOutcomeError):
        return field_error("body.outcome", str(exc), "unknown_outcome")
    if isinstance(exc, UnknownRecommendationError):
        return field_error("body.recommendationId", str(exc), "unknown_recommendation")
    if isinstance(exc, UnknownRankError):
        return field_error("body.rank", str(exc), "unknown_rank")
    if isinstance(exc, InvalidInputError):
        return field_error(_RESPOND_FIELDS.get(exc.field or "", "body"), str(exc))
    raise exc


IdempotencyHeader = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="The idempotency key, if not in the body."),
    WithJsonSchema(STRIPPED_ID_SCHEMA),
]


@router.post(
    "/respond",
    summary="Record an outcome (idempotent)",
    responses={
        404: {"description": "The offerId is not in the tenant's catalog (unknown_offer)."},
        409: {"description": "The idempotency key was used for another outcome."},
    },
)
def respond(
    body: RespondBody,
    auth: Writer,
    service: Service,
    response: Response,
    idempotency_header: IdempotencyHeader = None,
) -> dict[str, Any]:
    """Record what a customer did with an offer. The same idempotency key sent again returns
    the original result (header ``Idempotent-Replayed: true``) and is counted once."""
    header_key = None if idempotency_header is None else idempotency_header.strip()
    if header_key is not None:
        if not header_key:
            raise field_error("header.Idempotency-Key", "must not be blank")
        try:
            check_id(header_key)
        except ValueError as exc:
            raise field_error("header.Idempotency-Key", str(exc)) from None
    key = body.idempotency_key
    if key is not None and header_key is not None and key != header_key:
        raise field_error("body.idempotencyKey", "differs from the Idempotency-Key header")
    key = key or header_key
    if not key:
        raise field_error(
            "body.idempotencyKey", "required (in the body or the Idempotency-Key header)"
        )
    if key.startswith(RESERVED_KEY_PREFIX):
        field = "body.idempotencyKey" if body.idempotency_key else "header.Idempotency-Key"
        raise field_error(
            field,
            f"must not start with {RESERVED_KEY_PREFIX!r}: keys with that prefix are made by "
            "bulk import (correct an imported outcome with PUT /api/v1/interactions/{key})",
        )
    interaction = outcome_of(body, key)
    try:
        result = service.record_outcome(auth.tenant_id, interaction)
    except OUTCOME_ERRORS as exc:
        raise outcome_error(exc) from None
    original = result.interaction
    differences = [] if result.created else _differences(original, body)
    if differences:
        message = (
            f"idempotency key {key!r} was already used for another outcome "
            f"({original.outcome!r} of customer {original.customer_id!r}; different "
            f"{', '.join(differences)}); use a new key"
        )
        raise ApiError(
            409,
            message,
            code="idempotency_conflict",
            details=[{"field": "body.idempotencyKey", "message": message}],
        )
    response.headers["Idempotent-Replayed"] = "false" if result.created else "true"
    return interaction_json(original)


def _differences(original: Interaction, body: RespondBody) -> list[str]:
    """The fields in which a retry differs from the outcome first recorded under its key.

    Compared: customer, outcome, the offer as named (``offerId``, or ``recommendationId`` +
    ``rank``), ``conversionValue``, and ``channelId`` when the retry gives one. ``timestamp``
    and ``context`` are not compared (a retry without a timestamp means "now" again).
    """
    found = []
    if original.customer_id != body.customer_id:
        found.append("customerId")
    if original.outcome != body.outcome:
        found.append("outcome")
    if body.offer_id is not None and original.offer_id != body.offer_id:
        found.append("offerId")
    if original.recommendation_id != body.recommendation_id:
        found.append("recommendationId")
    if original.rank != body.rank:
        found.append("rank")
    if original.value != (body.conversion_value or 0.0):
        found.append("conversionValue")
    if body.channel_id is not None and original.channel != body.channel_id:
        found.append("channelId")
    return found


__all__ = [
    "OUTCOME_ERRORS",
    "get_service",
    "interaction_json",
    "outcome_error",
    "outcome_of",
    "router",
]
