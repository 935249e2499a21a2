"""Tenant administration: custom outcome types and API keys of the caller's tenant."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response

from ..store import ApiKey, ConflictError, InvalidInputError, OutcomeType
from .auth import ADMIN_ROLES, READ_ROLES, AuthContext, get_store, require_role
from .errors import ApiError, field_error
from .routing import JsonRoute
from .schemas import Id, KeyBody, OutcomeTypeBody

router = APIRouter(prefix="/api/v1", tags=["tenant"], route_class=JsonRoute)
Reader = Annotated[AuthContext, Depends(require_role(*READ_ROLES))]
Admin = Annotated[AuthContext, Depends(require_role(*ADMIN_ROLES))]
Store = Annotated[Any, Depends(get_store)]


def outcome_type_json(outcome: OutcomeType) -> dict[str, Any]:
    """The JSON of an outcome type."""
    return {
        "name": outcome.name,
        "classification": outcome.classification,
        "kind": outcome.kind,
        "builtin": outcome.builtin,
    }


def key_json(key: ApiKey) -> dict[str, Any]:
    """The JSON of an API key (never its secret)."""
    return {
        "keyId": key.key_id,
        "role": key.role,
        "createdAt": key.created_at.isoformat(),
        "revokedAt": key.revoked_at.isoformat() if key.revoked_at else None,
    }


@router.get("/outcome-types", summary="List outcome types")
def list_outcome_types(auth: Reader, store: Store) -> dict[str, Any]:
    """The built-in outcome types, then the tenant's custom ones."""
    return {"items": [outcome_type_json(t) for t in store.list_outcome_types(auth.tenant_id)]}


@router.post(
    "/outcome-types",
    status_code=201,
    summary="Add a custom outcome type",
    responses={409: {"description": "An outcome type of this name exists."}},
)
def create_outcome_type(body: OutcomeTypeBody, auth: Admin, store: Store) -> dict[str, Any]:
    """Add an outcome type with its classification (positive, negative, neutral) and kind
    (response or impression)."""
    try:
        created = store.create_outcome_type(
            auth.tenant_id, body.name, body.classification, body.kind
        )
    except ConflictError as exc:
        raise ApiError(409, str(exc)) from None
    except InvalidInputError as exc:
        message = str(exc)
        field = next((f for f in ("classification", "kind") if message.startswith(f)), "name")
        raise field_error(f"body.{field}", message) from None
    return outcome_type_json(created)


@router.get("/keys", summary="List the tenant's API keys")
def list_keys(auth: Admin, store: Store) -> dict[str, Any]:
    """Every key of the tenant (ids and roles, never secrets)."""
    return {"items": [key_json(k) for k in store.list_api_keys(auth.tenant_id)]}


@router.post("/keys", status_code=201, summary="Create an API key")
def create_key(body: KeyBody, auth: Admin, store: Store) -> dict[str, Any]:
    """Create a key of the caller's tenant; the key is in this response only."""
    try:
        key_id, plaintext = store.create_api_key(auth.tenant_id, body.role)
    except InvalidInputError as exc:
        raise field_error("body.role", str(exc)) from None
    return {"keyId": key_id, "role": body.role, "key": plaintext}


@router.delete("/keys/{keyId}", status_code=204, summary="Revoke an API key")
def revoke_key(key_id: Annotated[Id, Path(alias="keyId")], auth: Admin, store: Store) -> Response:
    """Revoke a key of the tenant (it stops working at once)."""
    if not store.revoke_api_key(auth.tenant_id, key_id):
        raise ApiError(404, f"key {key_id!r} not found", code="key_not_found")
    return Response(status_code=204)


__all__ = ["key_json", "outcome_type_json", "router"]
