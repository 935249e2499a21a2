"""The request body limit: 413 for a body over ``max_body_bytes``, checked while it arrives.

A declared ``Content-Length`` over the limit is answered at once, before any of the body is read
(and before routing and authentication); a body without one (chunked) or longer than it
declared is cut off as soon as the bytes received pass the limit. Either way nothing over the
limit is ever held in memory.
"""

from __future__ import annotations

import os

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError, BodyTooLargeError, error_response

#: The default limit: 1 MiB, far above any offer, flow or outcome (context is capped at 16 KiB).
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
#: The environment variable that sets the limit when ``create_app`` is not given one.
MAX_BODY_BYTES_ENV = "NEXTBEST_MAX_BODY_BYTES"


def resolve_max_body_bytes(value: int | None = None) -> int:
    """``value``, else ``NEXTBEST_MAX_BODY_BYTES``, else 1 MiB; ValueError unless a positive
    whole number of bytes."""
    source = "max_body_bytes"
    if value is None:
        text = os.environ.get(MAX_BODY_BYTES_ENV, "").strip()
        if not text:
            return DEFAULT_MAX_BODY_BYTES
        source = MAX_BODY_BYTES_ENV
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{source} must be a whole number of bytes, not {text!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{source} must be a positive whole number of bytes, not {value!r}")
    return value


class BodyLimitMiddleware:
    """ASGI middleware enforcing the body limit on every HTTP request (see the module)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            error = BodyTooLargeError(limit)
            response = error_response(ApiError(413, str(error.detail), details=error.details))
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised into whoever reads the body (a route): the app's handler answers
                    # 413 in the error shape; the rest of the body is never read.
                    raise BodyTooLargeError(limit)
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:  # servers refuse a malformed one before the app sees it
                return None
    return None


__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "MAX_BODY_BYTES_ENV",
    "BodyLimitMiddleware",
    "resolve_max_body_bytes",
]
