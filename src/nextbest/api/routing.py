"""The route class of the API: request bodies are JSON, parsed once here under the document
rules, before FastAPI validates them.

For a route that takes a body, a non-empty one must be sent as JSON (else 415) in UTF-8 (else
400 ``invalid_json``), must parse (400 ``invalid_json`` with the line and column) and must be
a document the store could hold (:func:`nextbest.store.document_problem`: nested at most
``MAX_DOCUMENT_DEPTH`` levels, finite numbers, 64-bit integers, valid Unicode), else a 400
naming the field (``body.context.a.b``). So no body can reach a route, or the store, that the
JSON parser or the store would choke on: a body nested thousands of levels deep, an integer of
thousands of digits, ``NaN``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope

from ..documents import DocumentSyntaxError, parse_json
from ..store import document_problem
from .errors import ApiError, document_error
from .openapi import describe_route

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Bodies larger than this are parsed and checked in a worker thread, so a large document
# (up to the body limit: a tenth of a second or more of CPU) does not hold up the event loop.
_THREAD_PARSE_BYTES = 64 * 1024


def is_json_media_type(content_type: str | None) -> bool:
    """Whether a Content-Type header names JSON (``application/json`` or ``*/*+json``)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _invalid_json(reason: str) -> ApiError:
    return ApiError(
        400,
        f"the request body is not valid JSON: {reason}",
        code="invalid_json",
        details=[{"field": "body", "message": reason, "type": "json_invalid"}],
    )


def _decode(body: bytes) -> str:
    """JSON is UTF-8 (RFC 8259); anything else is a malformed body, not a server error."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid_json(
            f"not valid UTF-8 at byte {exc.start}: JSON must be encoded as UTF-8"
        ) from None


def _too_deep(exc: DocumentSyntaxError) -> ApiError:
    """The 400 for a body too deep for the parser, naming where it passes the limit."""
    reason = str(exc)
    return ApiError(
        400,
        f"body {reason}",
        details=[{"field": "body", "message": reason, "type": "document_invalid"}],
    )


def parse_json_body(body: bytes) -> Any:
    """A request body as JSON under the document rules (see the module); ApiError if not."""
    text = _decode(body)
    try:
        value = parse_json(text)
    except DocumentSyntaxError as exc:
        raise (_too_deep(exc) if exc.too_deep else _invalid_json(str(exc))) from None
    problem = document_problem(value)
    if problem is not None:
        raise document_error("body", problem)
    return value


class ParsedJsonRequest(Request):
    """A request whose JSON body was already read and checked (FastAPI reads it from here)."""

    def __init__(self, scope: Scope, receive: Receive, body: bytes, value: Any) -> None:
        super().__init__(scope, receive)
        self._checked_body = body
        self._checked_value = value

    async def body(self) -> bytes:
        return self._checked_body

    async def json(self) -> Any:
        return self._checked_value


class JsonRoute(APIRoute):
    """Routes of the API: a body must be JSON and a storable document (see the module).

    Plugin routes get it too (``nextbest.api.plugin_router`` uses it). Each route documents
    its security, tenant header, roles and error answers (:func:`describe_route`)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        describe_route(self)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_body = self.body_field is not None

        async def route_handler(request: Request) -> Response:
            if takes_body and request.method in _BODY_METHODS:
                body = await request.body()
                if body:
                    content_type = request.headers.get("content-type")
                    if not is_json_media_type(content_type):
                        raise ApiError(
                            415,
                            f"the request body must be JSON (Content-Type: application/json), "
                            f"not {content_type or 'unspecified'}",
                            details=[{"field": "header.Content-Type", "message": "must be JSON"}],
                        )
                    if len(body) > _THREAD_PARSE_BYTES:
                        value = await run_in_threadpool(parse_json_body, body)
                    else:
                        value = parse_json_body(body)
                    request = ParsedJsonRequest(request.scope, request.receive, body, value)
            return await handler(request)

        return route_handler


__all__ = ["JsonRoute", "ParsedJsonRequest", "is_json_media_type", "parse_json_body"]
