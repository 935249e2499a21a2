"""The API's own description: OpenAPI as the server really behaves, and the docs pages.

Every route guarded by :func:`nextbest.api.require_role` is described by the route class
(:class:`~nextbest.api.routing.JsonRoute` calls :func:`describe_route`; host and plugin routes
alike, found through their dependencies, so a plugin repeats nothing), and the generated schema
is completed by :func:`complete_openapi`:

- the security schemes (``Authorization: Bearer <key>`` or ``X-API-Key``) and the required
  ``X-Tenant-Id`` header, so "Try it out" in ``/docs`` works;
- the error answers the server really gives, each with the one error shape: 400, 401, 403
  (when some role is refused), 404 (a key of another tenant is 404 whatever the path), 503;
  413 and 415 for operations with a body; 4xx a route declares with ``responses=`` get the
  shape too. FastAPI's 422, which is never sent (validation errors are 400), is removed;
- the roles that may call it, in its description.

``/docs`` (Swagger UI) and ``/redoc`` load their scripts and styles from this server (the files
shipped by ``fastapi-offline``), so they work offline.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline

from .auth import API_KEY_HEADER, READ_ROLES, TENANT_HEADER, RoleRequirement
from .schemas import ID_SCHEMA

#: Where the docs pages' scripts, styles and icon are served.
DOCS_ASSETS_URL = "/docs-assets"

ERROR_SCHEMA = "Error"
ERROR_DETAIL_SCHEMA = "ErrorDetail"
_ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
_COMPONENTS: dict[str, Any] = {
    ERROR_SCHEMA: {
        "title": ERROR_SCHEMA,
        "description": "Every error answer: `details` names the field at fault for input errors.",
        "type": "object",
        "required": ["error"],
        "additionalProperties": False,
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "status", "details"],
                "additionalProperties": False,
                "properties": {
                    "code": {"type": "string", "examples": ["invalid_request"]},
                    "message": {"type": "string"},
                    "status": {"type": "integer"},
                    "details": {
                        "type": "array",
                        "items": {"$ref": f"#/components/schemas/{ERROR_DETAIL_SCHEMA}"},
                    },
                },
            }
        },
    },
    ERROR_DETAIL_SCHEMA: {
        "title": ERROR_DETAIL_SCHEMA,
        "type": "object",
        "properties": {
            "field": {"type": "string", "examples": ["body.conversionValue"]},
            "message": {"type": "string"},
            "type": {"type": ["string", "null"]},
        },
    },
}
SECURITY_SCHEMES: dict[str, Any] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key of the tenant: `Authorization: Bearer <key>`.",
    },
    "apiKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": API_KEY_HEADER,
        "description": f"An API key of the tenant in `{API_KEY_HEADER}` (instead of bearer).",
    },
}
_SECURITY: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]
_TENANT_PARAMETER = {
    "name": TENANT_HEADER,
    "in": "header",
    "required": True,
    "description": "The tenant the API key belongs to (another tenant's id answers 404).",
    "schema": ID_SCHEMA,
}
_ERRORS = {
    "400": "Invalid input: `details` names each field and its rule (`invalid_request`, "
    "`invalid_json`, `validation_failed`, `missing_tenant`, ...).",
    "401": "No API key, or an unknown or revoked one.",
    "403": "The key's role may not do this.",
    "404": "Not found; also any request with a key of another tenant than X-Tenant-Id.",
    "409": "Conflict with the current state, or the store stayed busy with concurrent writes "
    "(`conflict`: retry).",
    "413": "The request body is larger than the server's limit (1 MiB unless configured).",
    "415": "The request body is not JSON (send Content-Type: application/json).",
    "503": "The database schema is not up to date (`schema_not_ready`: run `nextbest db "
    "upgrade`), or the database cannot be reached (`database_unavailable`).",
}
_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def create_documented_app(**kwargs: Any) -> FastAPI:
    """A FastAPI app whose ``/docs`` and ``/redoc`` use local assets and whose OpenAPI is
    completed by :func:`complete_openapi` (call it with FastAPI's keyword arguments)."""
    app = FastAPIOffline(static_url=DOCS_ASSETS_URL, **kwargs)
    app.swagger_ui_parameters = {"persistAuthorization": True}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            complete_openapi(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
    return app


def describe_route(route: APIRoute) -> None:
    """Document what a route guarded by :func:`~nextbest.api.require_role` really does:
    security, the tenant header, its roles and its error answers (called by the route class
    for every route, host or plugin, so a route repeats none of it)."""
    roles = _roles(route.dependant)
    if roles is None:
        return
    statuses = [400, 401, 404, 503]
    if set(READ_ROLES) - roles:
        statuses.append(403)
    if route.body_field is not None:
        statuses += [413, 415]
    if (route.methods or set()) & _WRITE_METHODS:
        # Every write can meet a busy store or a concurrent change (StoreBusyError and the
        # other ConflictErrors answer 409 through the shared handler).
        statuses.append(409)
    # Copies: a route may share its responses or openapi_extra dict with other routes.
    route.responses = dict(route.responses)
    for status in statuses:
        route.responses.setdefault(status, {"description": _ERRORS[str(status)]})
    allowed = ", ".join(r for r in READ_ROLES if r in roles)
    route.description = f"{route.description}\n\nRoles: {allowed}.".strip()
    extra: dict[str, Any] = dict(route.openapi_extra or {})
    extra.setdefault("security", _SECURITY)
    extra["parameters"] = [*extra.get("parameters", []), dict(_TENANT_PARAMETER)]
    route.openapi_extra = extra


def complete_openapi(schema: dict[str, Any]) -> None:
    """Complete a generated schema: the error and security components, the error shape on
    every 4xx/5xx answer that names no schema, and no 422 (never sent)."""
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict) and "responses" in operation:
                _complete_responses(operation["responses"])
                operation["responses"] = dict(sorted(operation["responses"].items()))
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(_COMPONENTS)
    components["securitySchemes"] = SECURITY_SCHEMES
    if "HTTPValidationError" not in _refs(schema.get("paths", {})):
        for name in _VALIDATION_SCHEMAS:
            schemas.pop(name, None)


def _complete_responses(responses: dict[str, Any]) -> None:
    unsent = responses.get("422", {}).get("content", {}).get("application/json", {})
    if unsent.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
        del responses["422"]
    for status, response in responses.items():
        if status[:1] in ("4", "5"):
            content = response.setdefault("content", {}).setdefault("application/json", {})
            if not content.get("schema"):
                content["schema"] = _ERROR_REF


def _roles(dependant: Dependant) -> frozenset[str] | None:
    """The roles of the route's :class:`RoleRequirement` (None: the route needs no key)."""
    for dependency in _walk(dependant):
        if isinstance(dependency.call, RoleRequirement):
            return dependency.call.roles
    return None


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _walk(dependency)


def _refs(value: Any) -> set[str]:
    """The names of the component schemas referenced anywhere in ``value``."""
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str):
                found.add(ref.rsplit("/", 1)[-1])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


__all__ = [
    "DOCS_ASSETS_URL",
    "SECURITY_SCHEMES",
    "complete_openapi",
    "create_documented_app",
    "describe_route",
]
