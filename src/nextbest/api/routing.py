"""A route class that answers 415 for a request body that is not JSON, and 400 ``invalid_json``
for one that is not UTF-8, before parsing it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from .errors import ApiError

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def is_json_media_type(content_type: str | None) -> bool:
    """Whether a Content-Type header names JSON (``application/json`` or ``*/*+json``)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _check_utf8(body: bytes) -> None:
    """JSON is UTF-8 (RFC 8259); anything else is a malformed body, not a server error."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = f"not valid UTF-8 at byte {exc.start}: JSON must be encoded as UTF-8"
        raise ApiError(
            400,
            f"the request body is not valid JSON: {reason}",
            code="invalid_json",
            details=[{"field": "body", "message": reason, "type": "json_invalid"}],
        ) from None


class JsonRoute(APIRoute):
    """Routes of the API: a non-empty body must be sent as JSON, else 415."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            if request.method in _BODY_METHODS:
                content_type = request.headers.get("content-type")
                # request.body() is cached on the request, so FastAPI reads it again for free.
                body = await request.body()
                if body and not is_json_media_type(content_type):
                    raise ApiError(
                        415,
                        f"the request body must be JSON (Content-Type: application/json), "
                        f"not {content_type or 'unspecified'}",
                        details=[{"field": "header.Content-Type", "message": "must be JSON"}],
                    )
                if body and not body.isascii():
                    _check_utf8(body)
            return await handler(request)

        return route_handler


__all__ = ["JsonRoute", "is_json_media_type"]
