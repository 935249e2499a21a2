"""Triggers: ``/api/v1/triggers`` (put, read, list, delete, firings, preview)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field, StrictInt

from ..models.base import CamelModel
from ..store import InvalidInputError, StoredTrigger, TriggerEventRecord
from ..triggers import PreviewTooLargeError, TriggerEngine, TriggerValidationError, engine_for
from .auth import READ_ROLES, WRITE_ROLES, AuthContext, require_role
from .errors import ApiError, field_error, flow_issues_error
from .routing import JsonRoute
from .schemas import Id

router = APIRouter(prefix="/api/v1/triggers", tags=["triggers"], route_class=JsonRoute)
Reader = Annotated[AuthContext, Depends(require_role(*READ_ROLES))]
Writer = Annotated[AuthContext, Depends(require_role(*WRITE_ROLES))]
TriggerKey = Annotated[Id, Path()]
Document = Annotated[dict[str, Any], Body(description="A trigger (see `nextbest schema trigger`)")]
#: Most customers one preview evaluates.
MAX_PREVIEW = 1000


class PreviewBody(CamelModel):
    """The customers to evaluate (their context resolved now, nothing written); without
    ``customerIds``, every customer of the tenant."""

    customer_ids: list[Id] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_PREVIEW,
        description="These customers; omit it to evaluate every customer of the tenant.",
    )
    limit: StrictInt = Field(
        default=100,
        ge=1,
        le=MAX_PREVIEW,
        description="Whole-tenant preview: at most this many customers that would fire are "
        "listed (by id); `wouldFireCount` counts them all.",
    )


def get_engine(request: Request) -> TriggerEngine:
    """The app host's trigger engine."""
    engine = engine_for(request.app.state.host)
    if engine is None:  # the app's host always has a store; defensive
        raise ApiError(503, "triggers need a store", code="unavailable")
    return engine


Engine = Annotated[TriggerEngine, Depends(get_engine)]


def trigger_json(stored: StoredTrigger) -> dict[str, Any]:
    """The JSON of a stored trigger."""
    return {
        "key": stored.key,
        "status": stored.status,
        "document": stored.document,
        "createdAt": stored.created_at.isoformat(),
        "updatedAt": stored.updated_at.isoformat(),
    }


def event_json(event: TriggerEventRecord) -> dict[str, Any]:
    """The JSON of a firing: its payload."""
    return dict(event.payload)


def _missing(key: str) -> ApiError:
    return ApiError(404, f"trigger {key!r} not found", code="trigger_not_found")


@router.put(
    "/{key}",
    summary="Create or replace a trigger",
    responses={201: {"description": "The trigger was created"}},
)
def put_trigger(key: TriggerKey, document: Document, auth: Writer, engine: Engine) -> Any:
    """Validate the trigger (400 lists every issue with its path: formulas and their names,
    a flow that is not published, a malformed endpoint id) and store it. 201 when created."""
    try:
        stored, created = engine.put(auth.tenant_id, key, document)
    except TriggerValidationError as exc:
        raise flow_issues_error(exc) from None
    return JSONResponse(trigger_json(stored), status_code=201 if created else 200)


@router.get("", summary="List triggers (cursor pagination)")
def list_triggers(
    auth: Reader,
    engine: Engine,
    cursor: Annotated[str | None, Query(min_length=1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """The tenant's triggers by key."""
    try:
        page = engine.store.list_triggers(auth.tenant_id, cursor=cursor, limit=limit)
    except InvalidInputError as exc:
        raise field_error("query.cursor", str(exc)) from None
    return {"items": [trigger_json(t) for t in page.items], "nextCursor": page.next_cursor}


#: ``/api/v1/trigger-runs``: a run of every trigger (a path of its own: under
#: ``/api/v1/triggers`` it would shadow a trigger keyed ``run``).
runs_router = APIRouter(prefix="/api/v1/trigger-runs", tags=["triggers"], route_class=JsonRoute)


@runs_router.post("", summary="Evaluate every active trigger for every customer now")
def run_triggers(auth: Writer, engine: Engine) -> dict[str, Any]:
    """Evaluate the tenant's active triggers for every customer as of now and commit the
    firings (their webhooks go through the outbox): what time alone changes, e.g.
    `metrics.days_since_last_contact`, with no event or batch to notice it. Call it on a
    schedule; a tenant costs about one batch compute."""
    results = engine.run(auth.tenant_id)
    return {
        "evaluated": max((r.evaluated for r in results), default=0),
        "triggers": [
            {
                "key": r.trigger_key,
                "fired": len(r.firings),
                "transitions": r.transitions,
            }
            for r in results
        ],
    }


@router.get("/{key}", summary="Read a trigger")
def get_trigger(key: TriggerKey, auth: Reader, engine: Engine) -> dict[str, Any]:
    """The stored trigger (404 when the tenant has none with this key)."""
    stored = engine.store.get_trigger(auth.tenant_id, key)
    if stored is None:
        raise _missing(key)
    return trigger_json(stored)


@router.delete("/{key}", status_code=204, summary="Delete a trigger")
def delete_trigger(key: TriggerKey, auth: Writer, engine: Engine) -> None:
    """Delete the trigger with its states and firings."""
    if not engine.delete(auth.tenant_id, key):
        raise _missing(key)


@router.get("/{key}/events", summary="A trigger's firings, newest first (cursor pagination)")
def trigger_events(
    key: TriggerKey,
    auth: Reader,
    engine: Engine,
    cursor: Annotated[str | None, Query(min_length=1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """Every firing's event payload (id, type, time, customer, values and previous values,
    context read, offers with ``recommendationId``), newest first."""
    if engine.store.get_trigger(auth.tenant_id, key) is None:
        raise _missing(key)
    try:
        page = engine.store.trigger_events(auth.tenant_id, key, cursor=cursor, limit=limit)
    except InvalidInputError as exc:
        raise field_error("query.cursor", str(exc)) from None
    return {"items": [event_json(e) for e in page.items], "nextCursor": page.next_cursor}


@router.post("/{key}/preview", summary="Who would fire now (nothing fired or written)")
def preview_trigger(
    key: TriggerKey, body: PreviewBody, auth: Reader, engine: Engine
) -> dict[str, Any]:
    """Evaluate the trigger now against the customers' stored states; nothing fires, nothing
    is written.

    - With ``customerIds``: each one's context resolved through the providers; every one is
      listed with ``wouldFire``.
    - Without: every customer of the tenant, read as columns (``metrics.*`` from the
      summaries, the plugins' names from their ``context_columns`` hooks), answered with
      ``evaluated``, ``transitions``, ``wouldFireCount`` and the first ``limit`` customers
      that would fire (by id). A condition reading a name no plugin gives as columns, over
      more than 5,000 customers that may fire, is a 400 ``preview_too_large``.
    """
    stored = engine.store.get_trigger(auth.tenant_id, key)
    if stored is None:
        raise _missing(key)
    try:
        loaded = engine.load(auth.tenant_id, stored)
    except TriggerValidationError as exc:
        raise flow_issues_error(exc, prefix="document") from None
    if body.customer_ids is None:
        try:
            found = engine.preview_population(auth.tenant_id, loaded, body.limit)
        except PreviewTooLargeError as exc:
            raise ApiError(400, str(exc), code="preview_too_large") from None
        return {"key": key, "status": stored.status, **found}
    items = engine.preview(auth.tenant_id, loaded, body.customer_ids)
    return {
        "key": key,
        "status": stored.status,
        "wouldFire": [i["customerId"] for i in items if i["wouldFire"]],
        "customers": items,
    }


__all__ = ["router", "runs_router"]
