"""One error shape for every HTTP error: ``{"error": {"code", "message", "status", "details"}}``.

``details`` is a list; for input errors each entry names the field
(``{"field": "body.conversionValue", "message": ..., "type": ...}``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles

from ..errors import (
    DecisionError,
    FlowIssue,
    FlowValidationError,
    StoredPolicyError,
    UnknownFlowError,
)
from ..store import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    SchemaNotReadyError,
    StoreUnavailableError,
    UnknownOutcomeError,
    UnknownRankError,
    UnknownRecommendationError,
    id_problem,
)

log = logging.getLogger("nextbest.api")

_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """An error answered with the one error shape. Raise it from routes and dependencies."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: Sequence[dict[str, Any]] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.details = list(details)
        self.headers = headers


class BodyTooLargeError(StarletteHTTPException):
    """413: a request body over the configured limit (raised while the body is received).

    An HTTPException so that FastAPI passes it through its body parsing unchanged."""

    def __init__(self, limit: int) -> None:
        message = (
            f"the request body is larger than the server's limit of {limit} bytes "
            "(nextbest serve --max-body-bytes, NEXTBEST_MAX_BODY_BYTES)"
        )
        super().__init__(413, detail=message)
        self.limit = limit
        self.details = [{"field": "body", "message": message, "type": "body_too_large"}]


def field_error(field: str, message: str, code: str = "invalid_request") -> ApiError:
    """A 400 naming one field (``body.outcome``, ``query.cursor``, ``header.Idempotency-Key``)."""
    return ApiError(
        400, f"{field}: {message}", code=code, details=[{"field": field, "message": message}]
    )


def document_error(field: str, problem: str) -> ApiError:
    """A 400 for a JSON value refused by :func:`nextbest.store.document_problem`, naming the
    field where the problem is (``body.context.a.b``) rather than the whole value."""
    # document_problem ends its reason with " at <path>" when the problem is inside the value;
    # its reasons themselves never contain " at ".
    reason, _, path = problem.partition(" at ")
    if path:
        field = f"{field}.{path}" if not path.startswith("[") else f"{field}{path}"
    return ApiError(
        400,
        f"{field} {reason}",
        details=[{"field": field, "message": reason, "type": "document_invalid"}],
    )


def check_path_id(field: str, value: str) -> str:
    """``value`` if it is a valid id, else a 400 naming the path parameter (``path.offerId``)."""
    problem = id_problem(value)
    if problem is not None:
        raise field_error(field, problem)
    return value


def flow_issues_error(exc: FlowValidationError, prefix: str = "body") -> ApiError:
    """A 400 listing every issue of a flow or offer document with its path."""
    details = [_issue_detail(issue, prefix) for issue in exc.issues]
    return ApiError(
        400,
        f"the document has {len(details)} validation error(s)",
        code="validation_failed",
        details=details,
    )


def _issue_detail(issue: FlowIssue, prefix: str) -> dict[str, Any]:
    path = issue.path
    if path.startswith("offers[0]"):  # a single offer validated as a one-offer catalog
        path = path.removeprefix("offers[0]").lstrip(".")
    field = f"{prefix}.{path}" if path else prefix
    return {"field": field, "message": issue.message}


def error_body(status: int, code: str, message: str, details: Sequence[Any] = ()) -> dict[str, Any]:
    """The JSON error body."""
    return {"error": {"code": code, "message": message, "status": status, "details": list(details)}}


class ErrorJSONResponse(JSONResponse):
    """A JSON response that escapes non-ASCII text, so a message quoting caller input (a lone
    surrogate included) can always be encoded."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False).encode("ascii")


def error_response(exc: ApiError) -> JSONResponse:
    """An ApiError as a JSON response."""
    return ErrorJSONResponse(
        error_body(exc.status, exc.code, exc.message, exc.details),
        status_code=exc.status,
        headers=exc.headers,
    )


def _loc_name(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc)


def validation_error(exc: RequestValidationError) -> ApiError:
    """FastAPI's validation errors as one 400; a body that is not JSON gets ``invalid_json``."""
    errors = exc.errors()
    for err in errors:
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            reason = ctx.get("error", "malformed JSON")
            return ApiError(
                400,
                f"the request body is not valid JSON: {reason}",
                code="invalid_json",
                details=[{"field": "body", "message": str(reason), "type": "json_invalid"}],
            )
    details = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        message = str(err.get("msg", "invalid"))
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        details.append({"field": _loc_name(loc), "message": message, "type": err.get("type")})
    reasons = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return ApiError(400, f"invalid request: {reasons}", code="invalid_request", details=details)


def store_error(exc: Exception) -> ApiError:
    """Translate a store or host error met outside the respond path."""
    if isinstance(exc, UnknownOutcomeError):
        return field_error("body.outcome", str(exc), "unknown_outcome")
    if isinstance(exc, UnknownRecommendationError):
        return field_error("body.recommendationId", str(exc), "unknown_recommendation")
    if isinstance(exc, UnknownRankError):
        return field_error("body.rank", str(exc), "unknown_rank")
    if isinstance(exc, UnknownFlowError):
        return field_error("body.decisionFlowKey", str(exc), "unknown_flow")
    if isinstance(exc, StoredPolicyError):
        # the request is fine; the tenant's stored configuration is not: name what to fix
        details = [
            {"field": f"contactPolicies.{exc.policy}.{i.path}".rstrip("."), "message": i.message}
            for i in exc.issues
        ]
        return ApiError(409, str(exc), code="invalid_contact_policy", details=details)
    if isinstance(exc, DecisionError):
        # a plugin failed under a flow's ``onPluginError: fail``: the flow's own rule
        return ApiError(503, str(exc), code="decision_failed")
    if isinstance(exc, NotFoundError):
        return ApiError(404, str(exc))
    if isinstance(exc, ConflictError):
        return ApiError(409, str(exc))
    if isinstance(exc, InvalidInputError):
        # The store names the argument ("customer id", "document key"); the request part that
        # carried it depends on the route, so the detail says "request" unless known.
        field = exc.field or "request"
        return ApiError(400, str(exc), details=[{"field": field, "message": str(exc)}])
    if isinstance(exc, SchemaNotReadyError):
        return ApiError(503, str(exc), code="schema_not_ready")
    if isinstance(exc, StoreUnavailableError):
        return ApiError(503, str(exc), code="database_unavailable")
    raise exc


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_STATIC_METHODS = ("GET", "HEAD")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers at the request's path (for ``Allow``).

    Starlette's 405 names the methods of the first route matching the path only, while one
    path is often served by several routes (GET, PUT and DELETE of ``/offers/{offerId}``).
    Routes are matched from the app's root (a 405 raised inside a mount carries the mount's
    scope); a mounted static directory answers GET and HEAD only."""
    routes = request.app.router.routes
    root_path = request.scope.get("app_root_path", request.scope.get("root_path", ""))
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method, "root_path": root_path}
        for route in routes:
            if route.matches(scope)[0] is not Match.FULL:
                continue
            static = isinstance(route, Mount) and isinstance(route.app, StaticFiles)
            if static and method not in _STATIC_METHODS:
                continue
            allowed.append(method)
            break
    return allowed


def install_error_handlers(app: FastAPI) -> None:
    """Make every error (ours, FastAPI's, Starlette's, unexpected ones) use the one shape."""

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(validation_error(exc))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers) if exc.headers else {}
        message = str(exc.detail)
        if exc.status_code == 405:
            allowed = allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed here; use {', '.join(allowed)}"
        details = getattr(exc, "details", ())
        return error_response(
            ApiError(exc.status_code, message, details=details, headers=headers or None)
        )

    async def on_store(request: Request, exc: Exception) -> JSONResponse:
        return error_response(store_error(exc))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        return error_response(ApiError(500, "internal server error; see the server log"))

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(NotFoundError, on_store)
    app.add_exception_handler(ConflictError, on_store)
    app.add_exception_handler(InvalidInputError, on_store)
    app.add_exception_handler(SchemaNotReadyError, on_store)
    app.add_exception_handler(StoreUnavailableError, on_store)
    app.add_exception_handler(UnknownFlowError, on_store)
    app.add_exception_handler(DecisionError, on_store)
    app.add_exception_handler(Exception, on_unexpected)


__all__ = [
    "ApiError",
    "BodyTooLargeError",
    "ErrorJSONResponse",
    "allowed_methods",
    "check_path_id",
    "document_error",
    "error_body",
    "error_response",
    "field_error",
    "flow_issues_error",
    "install_error_handlers",
    "store_error",
    "validation_error",
]
