"""A real HTTP receiver for webhook tests: a threaded server on a loopback port that records
every request and answers as the test scripts it (status codes, a hang until released, a
redirect), plus an independent Standard Webhooks verifier (plain hmac, per the specification
text: not the library that signed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    """One request as the receiver got it."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return json.loads(self.body)


#: A reply: (status, extra headers, body), chosen per request from the requests so far.
Reply = tuple[int, dict[str, str], bytes]


class Receiver:
    """Records requests; ``reply(request, count_for_this_id)`` decides each answer (default
    200). ``hang_first`` makes the first request wait until :meth:`release` (or 30 s)."""

    def __init__(self, reply: Callable[[Received, int], Reply] | None = None) -> None:
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.reply = reply or (lambda request, n: (200, {}, b"ok"))
        self.first_arrived = threading.Event()
        self.released = threading.Event()
        self.hang_first = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = Received(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                with receiver.lock:
                    receiver.requests.append(request)
                    first = len(receiver.requests) == 1
                    seen = sum(
                        1
                        for r in receiver.requests
                        if r.headers.get("webhook-id") == request.headers.get("webhook-id")
                    )
                if first:
                    receiver.first_arrived.set()
                    if receiver.hang_first:
                        receiver.released.wait(30)
                status, headers, body = receiver.reply(request, seen)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # the listen backlog (5 by default) for concurrent sends

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def release(self) -> None:
        self.released.set()

    def ids(self) -> list[str]:
        with self.lock:
            return [r.webhook_id for r in self.requests]


@contextmanager
def running(receiver: Receiver) -> Iterator[Receiver]:
    """Serve ``receiver`` in a background thread for the block."""
    thread = threading.Thread(target=receiver.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release()
        receiver.server.shutdown()
        receiver.server.server_close()
        thread.join(5)


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Whether one of the ``webhook-signature`` values is the HMAC-SHA256, keyed with the
    base64-decoded part of ``secret`` after ``whsec_``, of ``{id}.{timestamp}.{body}``."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in headers["webhook-signature"].split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False
