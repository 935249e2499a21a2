"""Reports: ``/api/v1/reports/lift`` (a flow's treatment vs control group, docs/learning.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from ..errors import UnknownFlowError
from ..store import InvalidInputError
from .auth import READ_ROLES, AuthContext, require_role
from .decisions import Service
from .errors import ApiError, field_error
from .routing import JsonRoute
from .schemas import Id, Time

router = APIRouter(prefix="/api/v1/reports", tags=["reports"], route_class=JsonRoute)
Reader = Annotated[AuthContext, Depends(require_role(*READ_ROLES))]


@router.get("/lift", summary="Lift of a flow over its control group")
def lift(
    auth: Reader,
    service: Service,
    flow: Annotated[Id, Query(description="The flow's key.")],
    since: Annotated[
        Time | None,
        Query(description="Start of the window (default: 30 days before `until`)."),
    ] = None,
    until: Annotated[Time | None, Query(description="End of the window (default: now).")] = None,
) -> dict[str, Any]:
    """Per flow and per offer: success rate and value per customer for the treatment and the
    control group, the absolute and relative lift with 95 % confidence intervals, and the
    customers behind each figure. Customers count from their first recommendation of the flow
    in [since, until) (see docs/learning.md). 404 when the tenant has no such flow."""
    end = until if until is not None else datetime.now(UTC)
    try:
        return service.lift_report(auth.tenant_id, flow, since=since, until=end)
    except UnknownFlowError as exc:
        raise ApiError(404, str(exc), code="flow_not_found") from None
    except InvalidInputError as exc:
        field = exc.field if exc.field in ("since", "until") else "flow"
        raise field_error(f"query.{field}", str(exc)) from None


__all__ = ["router"]
