"""One webhook request: an HTTP POST to an address already checked by the SSRF guard.

Built on the standard library's ``http.client`` rather than an HTTP client library because
what matters here is control, not convenience: the connection goes to the checked IP address
while the ``Host`` header and the TLS server name (certificate checked) stay the URL's host;
redirects are never followed (``http.client`` does not follow them: a 3xx is an answer like any
non-2xx); at most ``MAX_READ`` bytes of the answer are read; and the whole exchange is bounded
by a connect timeout and a total deadline, enforced by closing the socket when it passes.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from .targets import Target

#: The most bytes of a response body read (the rest is never received).
MAX_READ = 1024
#: The longest response excerpt kept (characters).
MAX_EXCERPT = 256


class SendError(Exception):
    """No HTTP answer: connection refused or reset, timeout, TLS failure, malformed answer."""


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP answer: status, the start of its body, and the time it took."""

    status: int
    excerpt: str
    latency_ms: float


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to ``address`` for the URL's host (Host header from ``host``)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to ``address``; the certificate is checked against ``host``."""

    def __init__(
        self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


_TLS = ssl.create_default_context()


def post(
    target: Target,
    body: bytes,
    headers: dict[str, str],
    *,
    connect_timeout: float = 5.0,
    total_timeout: float = 15.0,
) -> Response:
    """POST ``body`` to ``target``; the Response, or SendError when no answer came in time."""
    started = time.monotonic()
    connection: http.client.HTTPConnection
    if target.scheme == "https":
        connection = _PinnedHTTPSConnection(
            target.host, target.port, target.address, connect_timeout, _TLS
        )
    else:
        connection = _PinnedHTTPConnection(
            target.host, target.port, target.address, connect_timeout
        )
    # Past the deadline the socket is shut, which ends whatever read or write is under way.
    watchdog = threading.Timer(total_timeout, _shut, (connection,))
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.connect()
        if connection.sock is not None:
            connection.sock.settimeout(max(0.001, total_timeout - (time.monotonic() - started)))
        connection.request("POST", target.path, body=body, headers=headers)
        answer = connection.getresponse()
        data = answer.read(MAX_READ)
        latency = (time.monotonic() - started) * 1000
        if time.monotonic() - started >= total_timeout:
            raise SendError(f"no complete answer within {total_timeout:g} s")
        text = data.decode("utf-8", "replace")[:MAX_EXCERPT]
        return Response(answer.status, text, latency)
    except SendError:
        raise
    except TimeoutError:
        elapsed = time.monotonic() - started
        limit = connect_timeout if connection.sock is None else total_timeout
        raise SendError(f"timed out after {elapsed:.1f} s (limit {limit:g} s)") from None
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        if time.monotonic() - started >= total_timeout:
            raise SendError(f"no complete answer within {total_timeout:g} s") from None
        raise SendError(
            f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        ) from None
    finally:
        watchdog.cancel()
        connection.close()


def _shut(connection: http.client.HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


__all__ = ["MAX_EXCERPT", "MAX_READ", "Response", "SendError", "post"]
