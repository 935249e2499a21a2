"""Webhooks: a tenant's endpoints (``/api/v1/webhooks/endpoints``) and its deliveries
(``/api/v1/webhooks/deliveries``).

Roles: viewers read; admins add, remove and rotate endpoints (they decide where the tenant's
data goes and hold the signing secrets, like API keys); editors and admins send test events,
redeliver and replay. A signing secret is in the answer of the create and rotate calls only.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field, StrictInt, StrictStr, WithJsonSchema

from ..outbox import TargetPolicy, add_endpoint, send_test_event
from ..outbox.endpoints import TEST_EVENT_TYPE
from ..outbox.views import delivery_json, endpoint_json
from ..store import (
    ConflictError,
    DeliveryNotFoundError,
    EndpointInUseError,
    InvalidInputError,
    WebhookEndpointNotFoundError,
)
from ..store.outbox_types import (
    EVENT_TYPE,
    MAX_DESCRIPTION,
    MAX_EVENT_TYPE,
    MAX_EVENT_TYPES,
    MAX_URL_LENGTH,
)
from ..store.webhooks_sql import MAX_GRACE_SECONDS
from .auth import ADMIN_ROLES, READ_ROLES, WRITE_ROLES, AuthContext, get_store, require_role
from .errors import ApiError, field_error
from .routing import JsonRoute
from .schemas import Id, Time, _Body

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], route_class=JsonRoute)
Reader = Annotated[AuthContext, Depends(require_role(*READ_ROLES))]
Writer = Annotated[AuthContext, Depends(require_role(*WRITE_ROLES))]
Admin = Annotated[AuthContext, Depends(require_role(*ADMIN_ROLES))]
Store = Annotated[Any, Depends(get_store)]
EndpointId = Annotated[Id, Path(alias="endpointId")]
DeliveryId = Annotated[int, Path(alias="deliveryId", ge=1, le=2**63 - 1)]
#: The grace period of a rotated secret unless the call says otherwise: 24 hours.
DEFAULT_GRACE_SECONDS = 86400

_URL_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_URL_LENGTH,
    "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[!-~]+$",
    "description": "An http(s) URL of printable ASCII. Its host must resolve to public "
    "addresses unless the server allows private targets.",
}
_EVENT_TYPE_SCHEMA = {
    "type": "string",
    "maxLength": MAX_EVENT_TYPE,
    "pattern": f"^{EVENT_TYPE.pattern}$",
}


class EndpointBody(_Body):
    """``POST /api/v1/webhooks/endpoints``: where to send which events."""

    url: Annotated[StrictStr, WithJsonSchema(_URL_SCHEMA)]
    description: Annotated[
        StrictStr | None,
        WithJsonSchema({"type": ["string", "null"], "maxLength": MAX_DESCRIPTION}),
    ] = None
    event_types: Annotated[
        list[Annotated[StrictStr, WithJsonSchema(_EVENT_TYPE_SCHEMA)]] | None,
        Field(
            alias="eventTypes",
            min_length=1,
            max_length=MAX_EVENT_TYPES,
            description="The event types to send (e.g. trigger.fired); leave out for all.",
        ),
    ] = None


class RotateBody(_Body):
    """``POST .../rotate``: how long the old secret keeps signing alongside the new one."""

    grace_seconds: StrictInt = Field(
        DEFAULT_GRACE_SECONDS, alias="graceSeconds", ge=0, le=MAX_GRACE_SECONDS
    )


_FIELD = re.compile(r"^eventTypes(\[\d+\])?$|^(url|description)$")


def _input_error(exc: InvalidInputError) -> ApiError:
    field = exc.field or ""
    return field_error(f"body.{field}" if _FIELD.match(field) else "body", str(exc))


def _policy(request: Request) -> TargetPolicy:
    policy: TargetPolicy = request.app.state.webhooks.policy
    return policy


def _endpoint_missing(endpoint_id: str) -> ApiError:
    return ApiError(
        404, f"webhook endpoint {endpoint_id!r} not found", code="webhook_endpoint_not_found"
    )


@router.post(
    "/endpoints",
    status_code=201,
    summary="Add a webhook endpoint",
    responses={201: {"description": "The endpoint, with its signing secret (shown this once)."}},
)
def create_endpoint(
    body: EndpointBody, auth: Admin, store: Store, request: Request, response: Response
) -> dict[str, Any]:
    """Add an endpoint receiving the tenant's events (all, or the ``eventTypes`` listed).
    The answer holds the signing secret (``whsec_...``): keep it, it is never shown again.
    The URL must be http(s) and resolve to public addresses unless the server allows private
    targets."""
    try:
        endpoint, secret = add_endpoint(
            store,
            _policy(request),
            auth.tenant_id,
            body.url,
            description=body.description,
            event_types=body.event_types,
        )
    except InvalidInputError as exc:
        raise _input_error(exc) from None
    response.headers["Location"] = f"/api/v1/webhooks/endpoints/{endpoint.endpoint_id}"
    return endpoint_json(endpoint) | {"secret": secret}


@router.get("/endpoints", summary="List webhook endpoints")
def list_endpoints(auth: Reader, store: Store) -> dict[str, Any]:
    """The tenant's endpoints, oldest first (never their secrets)."""
    return {"items": [endpoint_json(e) for e in store.list_webhook_endpoints(auth.tenant_id)]}


@router.get("/endpoints/{endpointId}", summary="Read a webhook endpoint")
def get_endpoint(endpoint_id: EndpointId, auth: Reader, store: Store) -> dict[str, Any]:
    """One endpoint (never its secret)."""
    endpoint = store.get_webhook_endpoint(auth.tenant_id, endpoint_id)
    if endpoint is None:
        raise _endpoint_missing(endpoint_id)
    return endpoint_json(endpoint)


@router.delete(
    "/endpoints/{endpointId}",
    status_code=204,
    summary="Remove a webhook endpoint",
    responses={409: {"description": "Triggers name the endpoint (`endpoint_in_use`)."}},
)
def delete_endpoint(endpoint_id: EndpointId, auth: Admin, store: Store) -> Response:
    """Remove an endpoint and its deliveries (pending ones are never sent); 409
    ``endpoint_in_use`` while triggers name it in their ``webhook`` action."""
    try:
        deleted = store.delete_webhook_endpoint(auth.tenant_id, endpoint_id)
    except EndpointInUseError as exc:
        raise ApiError(409, str(exc), code="endpoint_in_use") from None
    if not deleted:
        raise _endpoint_missing(endpoint_id)
    return Response(status_code=204)


@router.post(
    "/endpoints/{endpointId}/rotate",
    summary="Rotate an endpoint's signing secret",
)
def rotate_secret(
    endpoint_id: EndpointId, auth: Admin, store: Store, body: RotateBody | None = None
) -> dict[str, Any]:
    """A new signing secret (in this answer only). The old one keeps signing alongside it for
    ``graceSeconds`` (default 86400, at most 604800; 0 ends it now): requests carry both
    signatures, so receivers can switch to the new secret without missing a delivery."""
    grace = DEFAULT_GRACE_SECONDS if body is None else body.grace_seconds
    try:
        endpoint, secret = store.rotate_webhook_secret(
            auth.tenant_id, endpoint_id, grace_seconds=grace
        )
    except WebhookEndpointNotFoundError:
        raise _endpoint_missing(endpoint_id) from None
    return endpoint_json(endpoint) | {"secret": secret}


@router.post(
    "/endpoints/{endpointId}/test",
    status_code=202,
    summary="Send a test event to an endpoint",
)
def send_test(endpoint_id: EndpointId, auth: Writer, store: Store) -> dict[str, Any]:
    """Put a ``webhook.test`` event in the outbox for this endpoint only: it is signed,
    delivered and retried like any event, and listed among the deliveries."""
    try:
        event_id, written = send_test_event(store, auth.tenant_id, endpoint_id)
    except WebhookEndpointNotFoundError:
        raise _endpoint_missing(endpoint_id) from None
    return {"eventId": event_id, "eventType": TEST_EVENT_TYPE, "deliveries": written.deliveries}


@router.post(
    "/endpoints/{endpointId}/replay",
    summary="Replay an endpoint's failed deliveries",
)
def replay(
    endpoint_id: EndpointId,
    auth: Writer,
    store: Store,
    since: Annotated[Time, Query(description="Replay deliveries created at or after this.")],
) -> dict[str, Any]:
    """Make every failed delivery of the endpoint created since ``since`` pending again, due
    now, with a fresh attempt count."""
    try:
        count = store.replay_failed(auth.tenant_id, endpoint_id, since)
    except WebhookEndpointNotFoundError:
        raise _endpoint_missing(endpoint_id) from None
    return {"replayed": count}


@router.get("/deliveries", summary="List deliveries (newest first, cursor pagination)")
def list_deliveries(
    auth: Reader,
    store: Store,
    status: Literal["pending", "delivered", "failed"] | None = None,
    endpoint: Annotated[Id | None, Query(description="Only this endpoint's deliveries.")] = None,
    cursor: Annotated[str | None, Query(min_length=1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """The tenant's deliveries, newest first: status, attempts, last status code, latency, a
    short response excerpt and the next attempt's time. Pass ``nextCursor`` as ``cursor``."""
    try:
        page = store.list_deliveries(
            auth.tenant_id, status=status, endpoint_id=endpoint, cursor=cursor, limit=limit
        )
    except InvalidInputError as exc:
        raise field_error("query.cursor", str(exc)) from None
    return {"items": [delivery_json(d) for d in page.items], "nextCursor": page.next_cursor}


def _delivery_missing(delivery_id: int) -> ApiError:
    return ApiError(404, f"delivery {delivery_id} not found", code="delivery_not_found")


@router.get("/deliveries/{deliveryId}", summary="Read a delivery and its event")
def get_delivery(delivery_id: DeliveryId, auth: Reader, store: Store) -> dict[str, Any]:
    """One delivery, with the event's payload."""
    delivery = store.get_delivery(auth.tenant_id, delivery_id)
    if delivery is None:
        raise _delivery_missing(delivery_id)
    event = store.get_event(auth.tenant_id, delivery.event_id)
    payload = None if event is None else event.payload
    return delivery_json(delivery) | {"payload": payload}


@router.post(
    "/deliveries/{deliveryId}/redeliver",
    summary="Send a delivery again",
    responses={409: {"description": "The delivery is being sent right now."}},
)
def redeliver(delivery_id: DeliveryId, auth: Writer, store: Store) -> dict[str, Any]:
    """Make the delivery pending again, due now, with a fresh attempt count (whatever its
    status; receivers dedupe by ``webhook-id``)."""
    try:
        delivery = store.redeliver(auth.tenant_id, delivery_id)
    except DeliveryNotFoundError:
        raise _delivery_missing(delivery_id) from None
    except ConflictError as exc:
        raise ApiError(409, str(exc), code="delivery_in_flight") from None
    return delivery_json(delivery)


__all__ = ["EndpointBody", "RotateBody", "router"]
