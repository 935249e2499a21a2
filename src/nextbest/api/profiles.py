"""``GET /api/v1/customers/{customerId}/profile``: a customer's unified profile (the host's
summary, latest interactions and recommendations, and every plugin's sections; see
``nextbest.profiles``). Any role; 404 for a customer the tenant does not have."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from ..profiles import customer_profile
from .auth import READ_ROLES, AuthContext, get_host, get_store, require_role
from .errors import ApiError
from .routing import JsonRoute
from .schemas import Id, Time

router = APIRouter(prefix="/api/v1", tags=["customer data"], route_class=JsonRoute)
Reader = Annotated[AuthContext, Depends(require_role(*READ_ROLES))]
CustomerId = Annotated[Id, Path(alias="customerId")]


@router.get("/customers/{customerId}/profile", summary="A customer's unified profile")
def profile(
    auth: Reader,
    customer_id: CustomerId,
    host: Annotated[Any, Depends(get_host)],
    store: Annotated[Any, Depends(get_store)],
    as_of: Annotated[
        Time | None,
        Query(alias="asOf", description="The time the profile is about (default: now)."),
    ] = None,
) -> dict[str, Any]:
    """The customer's all-time summary, latest interactions and recommendations (up to
    ``asOf``) and every plugin's sections (``sections``; a plugin that failed is listed in
    ``failedSections``). 404 when the tenant has no such customer."""
    when = as_of if as_of is not None else datetime.now(UTC)
    found = customer_profile(host, store, auth.tenant_id, customer_id, when)
    if found is None:
        raise ApiError(404, f"no customer {customer_id!r}", code="customer_not_found")
    return found


__all__ = ["router"]
