"""One error shape for every HTTP error: ``{"error": {"code", "message", "status", "details"}}``.

``details`` is a list; for input errors each entry names the field
(``{"field": "body.conversionValue", "message": ..., "type": ...}``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import FlowIssue, FlowValidationError, UnknownFlowError
from ..store import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    SchemaNotReadyError,
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


def field_error(field: str, message: str, code: str = "invalid_request") -> ApiError:
    """A 400 naming one field (``body.outcome``, ``query.cursor``, ``header.Idempotency-Key``)."""
    return ApiError(
        400, f"{field}: {message}", code=code, details=[{"field": field, "message": message}]
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


def error_response(exc: ApiError) -> JSONResponse:
    """An ApiError as a JSON response."""
    return JSONResponse(
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
    fields = ", ".join(d["field"] for d in details)
    return ApiError(400, f"invalid request: {fields}", code="invalid_request", details=details)


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
    raise exc


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
        headers = dict(exc.headers) if exc.headers else None
        return error_response(ApiError(exc.status_code, str(exc.detail), headers=headers))

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
    app.add_exception_handler(UnknownFlowError, on_store)
    app.add_exception_handler(Exception, on_unexpected)


__all__ = [
    "ApiError",
    "check_path_id",
    "error_body",
    "error_response",
    "field_error",
    "flow_issues_error",
    "install_error_handlers",
    "store_error",
    "validation_error",
]
