"""Contact policies: ``/api/v1/contact-policies`` (put, read, list, delete; per tenant)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Response

from ..errors import FlowValidationError
from .auth import READ_ROLES, WRITE_ROLES, AuthContext
from .auth import require_role as _require
from .decisions import Service
from .errors import ApiError, field_error, flow_issues_error
from .routing import JsonRoute
from .schemas import Id

router = APIRouter(
    prefix="/api/v1/contact-policies", tags=["contact policies"], route_class=JsonRoute
)
Reader = Annotated[AuthContext, Depends(_require(*READ_ROLES))]
Writer = Annotated[AuthContext, Depends(_require(*WRITE_ROLES))]
Document = Annotated[
    dict[str, Any],
    Body(
        description="A contact policy (see `nextbest schema contact-policy` and docs/flows.md); "
        "its `name` may be left out, else it must equal the path's."
    ),
]
PolicyName = Annotated[Id, Path(alias="name")]


def _missing(name: str) -> ApiError:
    return ApiError(404, f"contact policy {name!r} not found", code="contact_policy_not_found")


@router.get("", summary="List contact policies (highest priority first)")
def list_policies(auth: Reader, service: Service) -> dict[str, Any]:
    """Every contact policy of the tenant, highest priority first, then by name."""
    return {"items": service.contact_policies.list(auth.tenant_id)}


@router.get("/{name}", summary="Read a contact policy")
def get_policy(name: PolicyName, auth: Reader, service: Service) -> dict[str, Any]:
    """One contact policy document."""
    found = service.contact_policies.get(auth.tenant_id, name)
    if found is None:
        raise _missing(name)
    return found


@router.put(
    "/{name}",
    summary="Create or replace a contact policy",
    responses={201: {"description": "Created (there was no policy with this name)."}},
)
def put_policy(
    name: PolicyName, policy: Document, auth: Writer, service: Service, response: Response
) -> dict[str, Any]:
    """Validate and store the policy (201 when new, 200 when replaced); decisions of this
    process use it at once, other processes within a few seconds."""
    if policy.setdefault("name", name) != name:
        raise field_error("body.name", f"must equal the policy name in the path ({name!r})")
    policies = service.contact_policies
    existed = policies.get(auth.tenant_id, name) is not None
    try:
        stored = policies.put(auth.tenant_id, policy)
    except FlowValidationError as exc:
        raise flow_issues_error(exc) from None
    response.status_code = 200 if existed else 201
    return stored


@router.delete("/{name}", status_code=204, summary="Delete a contact policy")
def delete_policy(name: PolicyName, auth: Writer, service: Service) -> Response:
    """Delete a contact policy."""
    if not service.contact_policies.remove(auth.tenant_id, name):
        raise _missing(name)
    return Response(status_code=204)


__all__ = ["router"]
