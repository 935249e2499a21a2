"""A customer's recorded data: read, correct and delete one outcome by its idempotency key
(``/api/v1/interactions/{idempotencyKey}``), and forget a customer
(``DELETE /api/v1/customers/{customerId}``).

Idempotency keys may contain ``/`` (send it as ``%2F`` or as is): the key takes the rest of the
path. A customer id is one path segment, as in every route under ``/api/v1/customers/{id}``
(plugins add routes below it, which a rest-of-path id would swallow); a
customer whose id holds ``/`` is forgotten with ``nextbest customers forget``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from ..store import ForgetResult, InteractionNotFoundError, Store
from .auth import ADMIN_ROLES, READ_ROLES, WRITE_ROLES, AuthContext, get_store, require_role
from .decisions import OUTCOME_ERRORS, Service, interaction_json, outcome_error, outcome_of
from .errors import ApiError, field_error
from .routing import JsonRoute
from .schemas import Id, RespondBody

router = APIRouter(prefix="/api/v1", tags=["customer data"], route_class=JsonRoute)
Reader = Annotated[AuthContext, Depends(require_role(*READ_ROLES))]
Writer = Annotated[AuthContext, Depends(require_role(*WRITE_ROLES))]
Admin = Annotated[AuthContext, Depends(require_role(*ADMIN_ROLES))]
StoreDep = Annotated[Store, Depends(get_store)]

IdempotencyKey = Annotated[Id, Path(alias="idempotencyKey")]
CustomerId = Annotated[Id, Path(alias="customerId")]


def _not_found(key: str) -> ApiError:
    return ApiError(
        404,
        f"no interaction is recorded under idempotency key {key!r}",
        code="interaction_not_found",
    )


def forget_json(customer_id: str, result: ForgetResult) -> dict[str, Any]:
    """The JSON of what forgetting a customer deleted (row counts)."""
    return {
        "customerId": customer_id,
        "deleted": {
            "interactions": result.interactions,
            "customerSummaries": result.customer_summaries,
            "offerSummaries": result.offer_summaries,
            "dailySummaries": result.daily_summaries,
            "recommendations": result.recommendations,
            "documents": dict(result.documents),
            "triggerStates": result.trigger_states,
            "triggerEvents": result.trigger_events,
            "outboxEvents": result.outbox_events,
            "customerAttributes": result.customer_attributes,
        },
        "pluginFailures": [{"plugin": p, "error": e} for p, e in result.plugin_failures],
    }


@router.get("/interactions/{idempotencyKey:path}", summary="Read a recorded outcome")
def get_interaction(
    idempotency_key: IdempotencyKey, auth: Reader, store: StoreDep
) -> dict[str, Any]:
    """The outcome recorded under this idempotency key (as respond returned it)."""
    found = store.get_interaction(auth.tenant_id, idempotency_key)
    if found is None:
        raise _not_found(idempotency_key)
    return interaction_json(found)


@router.put("/interactions/{idempotencyKey:path}", summary="Correct a recorded outcome")
def correct_interaction(
    idempotency_key: IdempotencyKey, body: RespondBody, auth: Writer, service: Service
) -> dict[str, Any]:
    """Replace the outcome recorded under this key by the body (the fields of respond; a
    ``timestamp`` left out keeps the recorded time). Its customer, offer and daily summaries
    are recomputed in the same transaction. Answers ``{changed, interaction, previous}``;
    ``changed`` is false when the body describes the outcome as recorded."""
    if body.idempotency_key is not None and body.idempotency_key != idempotency_key:
        raise field_error("body.idempotencyKey", "differs from the key in the path")
    interaction = outcome_of(body, idempotency_key)
    try:
        correction = service.correct_outcome(auth.tenant_id, idempotency_key, interaction)
    except InteractionNotFoundError:
        raise _not_found(idempotency_key) from None
    except OUTCOME_ERRORS as exc:
        raise outcome_error(exc) from None
    return {
        "changed": correction.changed,
        "interaction": interaction_json(correction.after),
        "previous": interaction_json(correction.before),
    }


@router.delete("/interactions/{idempotencyKey:path}", summary="Delete a recorded outcome")
def delete_interaction(
    idempotency_key: IdempotencyKey, auth: Writer, service: Service
) -> dict[str, Any]:
    """Delete the outcome recorded under this key; its summaries are recomputed in the same
    transaction. Answers ``{deleted: <the outcome>}``. The key may then be used again."""
    try:
        deleted = service.delete_outcome(auth.tenant_id, idempotency_key)
    except InteractionNotFoundError:
        raise _not_found(idempotency_key) from None
    return {"deleted": interaction_json(deleted)}


@router.delete("/customers/{customerId}", summary="Forget a customer")
def forget_customer(customer_id: CustomerId, auth: Admin, service: Service) -> dict[str, Any]:
    """Delete everything stored about the customer, in one transaction: interactions,
    summaries, recommendations, attributes and the documents plugins keep per customer.
    Answers what was deleted (row counts; all zero for a customer with no data, so a retry is
    safe)."""
    return forget_json(customer_id, service.forget_customer(auth.tenant_id, customer_id))


__all__ = ["forget_json", "router"]
