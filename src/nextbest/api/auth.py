"""Tenant and API key checks for the HTTP API (host routes and plugin routes alike).

Every ``/api`` request carries ``X-Tenant-Id`` and a key, as ``Authorization: Bearer <key>`` or
``X-API-Key: <key>``. The answers, in the order they are checked:

- no key, or a key that is unknown or revoked: 401;
- no ``X-Tenant-Id``: 400 naming the header;
- a valid key of another tenant: 404, exactly like an unknown resource, so a caller learns
  nothing about tenants it has no key for;
- a role that may not do this: 403.

Use ``Depends(require_role("editor", "admin"))`` in a route; it returns an :class:`AuthContext`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from ..store import Role, Store
from ..store.limits import CONTROL_CHARACTER
from .errors import ApiError

TENANT_HEADER = "X-Tenant-Id"
API_KEY_HEADER = "X-API-Key"

#: Who may read, and who may write offers, flows and outcomes.
READ_ROLES: tuple[Role, ...] = ("viewer", "editor", "admin")
WRITE_ROLES: tuple[Role, ...] = ("editor", "admin")
ADMIN_ROLES: tuple[Role, ...] = ("admin",)


@dataclass(frozen=True, slots=True)
class AuthContext:
    """Who is calling: the tenant (checked against the key), the key's role and its id."""

    tenant_id: str
    role: Role
    key_id: str


def get_store(request: Request) -> Store:
    """The app's store (set by ``create_app``)."""
    store: Store = request.app.state.store
    return store


def get_host(request: Request) -> Any:
    """The app's Host (set by ``create_app``)."""
    return request.app.state.host


def presented_key(request: Request) -> str | None:
    """The key from ``Authorization: Bearer`` or ``X-API-Key``, or None."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    api_key = request.headers.get(API_KEY_HEADER)
    return api_key.strip() if api_key and api_key.strip() else None


def authenticate(request: Request) -> AuthContext:
    """Check the key and the tenant header (401 / 400 / 404 as described in the module)."""
    key = presented_key(request)
    challenge = {"WWW-Authenticate": 'Bearer realm="nextbest"'}
    if key is None:
        raise ApiError(
            401,
            "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            headers=challenge,
        )
    # No key holds control characters (and some stores cannot even look such text up).
    store = get_store(request)
    api_key = None if CONTROL_CHARACTER.search(key) else store.authenticate_api_key(key)
    if api_key is None:
        raise ApiError(401, "the API key is invalid or revoked", headers=challenge)
    tenant_id = request.headers.get(TENANT_HEADER)
    if not tenant_id:
        raise ApiError(
            400,
            f"the {TENANT_HEADER} header is required",
            code="missing_tenant",
            details=[{"field": f"header.{TENANT_HEADER}", "message": "required"}],
        )
    if tenant_id != api_key.tenant_id:
        raise ApiError(404, "not found")
    return AuthContext(api_key.tenant_id, api_key.role, api_key.key_id)


class RoleRequirement:
    """A FastAPI dependency admitting keys with one of ``roles`` (made by :func:`require_role`).

    The app's OpenAPI finds it in a route's dependencies and documents the route's security
    scheme, ``X-Tenant-Id`` header, roles and error answers (host and plugin routes alike)."""

    def __init__(self, roles: frozenset[str]) -> None:
        self.roles = roles
        self.__name__ = f"require_role_{'_'.join(sorted(roles))}"

    def __call__(self, request: Request) -> AuthContext:
        auth = authenticate(request)
        if auth.role not in self.roles:
            raise ApiError(
                403,
                f"a key with role {auth.role!r} may not do this; it needs one of "
                f"{', '.join(sorted(self.roles))}",
            )
        return auth


def require_role(*roles: str) -> Callable[[Request], AuthContext]:
    """A FastAPI dependency admitting keys with one of ``roles`` (none given: any role)."""
    allowed = frozenset(roles or READ_ROLES)
    unknown = allowed - set(READ_ROLES)
    if unknown:
        raise ValueError(f"unknown role(s) {sorted(unknown)}: use admin, editor or viewer")
    return RoleRequirement(allowed)


__all__ = [
    "ADMIN_ROLES",
    "API_KEY_HEADER",
    "READ_ROLES",
    "TENANT_HEADER",
    "WRITE_ROLES",
    "AuthContext",
    "RoleRequirement",
    "authenticate",
    "get_host",
    "get_store",
    "presented_key",
    "require_role",
]
