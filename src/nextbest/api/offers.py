"""Offer management: ``/api/v1/offers`` (create, read, list, replace, delete)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Depends, Path, Query, Response

from ..errors import FlowValidationError
from ..host import Host as HostObject
from ..store import InvalidInputError, OfferExistsError
from .auth import READ_ROLES, WRITE_ROLES, AuthContext, get_host, get_store
from .auth import require_role as _require
from .decisions import Service
from .errors import ApiError, check_path_id, field_error, flow_issues_error
from .routing import JsonRoute
from .schemas import ID_SCHEMA, Id

router = APIRouter(prefix="/api/v1/offers", tags=["offers"], route_class=JsonRoute)
Reader = Annotated[AuthContext, Depends(_require(*READ_ROLES))]
Writer = Annotated[AuthContext, Depends(_require(*WRITE_ROLES))]
Host = Annotated[HostObject, Depends(get_host)]
Store = Annotated[Any, Depends(get_store)]
# The loaded plugins' rule types decide most of an offer's shape; the id is the host's.
Document = Annotated[
    dict[str, Any],
    Body(
        description="An offer (see `nextbest schema offers`).",
        json_schema_extra={"required": ["id"], "properties": {"id": ID_SCHEMA}},
    ),
]
Replacement = Annotated[
    dict[str, Any],
    Body(
        description="An offer (see `nextbest schema offers`); its `id` may be left out, else "
        "it must equal the path's.",
        json_schema_extra={"properties": {"id": ID_SCHEMA}},
    ),
]
OfferId = Annotated[Id, Path(alias="offerId")]


def _validate(host: HostObject, offer: dict[str, Any]) -> None:
    try:
        host.load_offers([offer])
    except FlowValidationError as exc:
        raise flow_issues_error(exc) from None


def _missing(offer_id: str) -> ApiError:
    return ApiError(404, f"offer {offer_id!r} not found", code="offer_not_found")


@router.post(
    "",
    status_code=201,
    summary="Create an offer",
    responses={409: {"description": "An offer with this id exists."}},
)
def create_offer(
    offer: Document, auth: Writer, host: Host, store: Store, service: Service, response: Response
) -> dict[str, Any]:
    """Create an offer; 409 ``offer_exists`` when its id is taken (replace it with PUT). Of
    concurrent creates of one id exactly one succeeds."""
    _validate(host, offer)
    offer_id = check_path_id("body.id", offer["id"])
    try:
        store.create_offer(auth.tenant_id, offer)
    except OfferExistsError:
        message = f"offer {offer_id!r} already exists; PUT /api/v1/offers/{{id}} replaces it"
        raise ApiError(
            409, message, code="offer_exists", details=[{"field": "body.id", "message": message}]
        ) from None
    service.invalidate_offers(auth.tenant_id)
    # Percent-encoded: an id may hold any character but a control, a header only Latin-1.
    response.headers["Location"] = f"/api/v1/offers/{quote(offer_id, safe='')}"
    return offer


@router.get("", summary="List offers (cursor pagination)")
def list_offers(
    auth: Reader,
    store: Store,
    cursor: Annotated[str | None, Query(min_length=1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """Offers ordered by id; pass ``nextCursor`` as ``cursor`` for the next page."""
    try:
        page = store.list_offers(auth.tenant_id, cursor=cursor, limit=limit)
    except InvalidInputError as exc:
        raise field_error("query.cursor", str(exc)) from None
    return {"items": page.items, "nextCursor": page.next_cursor}


@router.get("/{offerId}", summary="Read an offer")
def get_offer(offer_id: OfferId, auth: Reader, store: Store) -> dict[str, Any]:
    """One offer document."""
    offer = store.get_offer(auth.tenant_id, offer_id)
    if offer is None:
        raise _missing(offer_id)
    result: dict[str, Any] = offer
    return result


@router.put(
    "/{offerId}",
    summary="Create or replace an offer",
    responses={201: {"description": "Created (there was no offer with this id)."}},
)
def put_offer(
    offer_id: OfferId,
    offer: Replacement,
    auth: Writer,
    host: Host,
    store: Store,
    service: Service,
    response: Response,
) -> dict[str, Any]:
    """Replace the offer (201 when it did not exist). The body's ``id`` may be left out."""
    if offer.setdefault("id", offer_id) != offer_id:
        raise field_error("body.id", f"must equal the offer id in the path ({offer_id!r})")
    _validate(host, offer)
    created = store.put_offer(auth.tenant_id, offer)
    service.invalidate_offers(auth.tenant_id)
    response.status_code = 201 if created else 200
    return offer


@router.delete("/{offerId}", status_code=204, summary="Delete an offer")
def delete_offer(offer_id: OfferId, auth: Writer, store: Store, service: Service) -> Response:
    """Delete an offer (recorded outcomes that cite it stay)."""
    if not store.delete_offer(auth.tenant_id, offer_id):
        raise _missing(offer_id)
    service.invalidate_offers(auth.tenant_id)
    return Response(status_code=204)


__all__ = ["router"]
