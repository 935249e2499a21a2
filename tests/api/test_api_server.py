"""A real ``nextbest serve`` process on a free loopback port, talked to over HTTP."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow
BODY_LIMIT = 64 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    """``nextbest serve --demo`` on a temporary SQLite file: (base url, admin key, process).
    Bodies are limited to 64 KiB (``NEXTBEST_MAX_BODY_BYTES``)."""
    port = free_port()
    env = {
        **os.environ,
        "NEXTBEST_PLUGINS": "builtin",
        "NEXTBEST_API_KEY_PEPPER": "srv-test",
        "NEXTBEST_MAX_BODY_BYTES": str(BODY_LIMIT),
    }
    log = (tmp_path / "server.log").open("w+")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nextbest.cli",
            "serve",
            "--demo",
            "--port",
            str(port),
            "--database",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--log-level",
            "warning",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, Path(log.name).read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start in 60 s"
            time.sleep(0.2)
        match = re.search(r"nbk_[0-9a-f]{16}_[A-Za-z0-9_-]+", Path(log.name).read_text())
        assert match, Path(log.name).read_text()
        yield base, match.group(0), process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_serve_demo_answers_recommend_and_respond_over_http(
    server: tuple[str, str, subprocess.Popen[str]],
) -> None:
    base, key, process = server
    headers = {"X-Tenant-Id": "demo", "Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        assert "/api/v1/recommend" in client.get("/openapi.json").json()["paths"]
        rec = client.post(
            "/api/v1/recommend",
            json={
                "customerId": "ada",
                "channel": "web",
                "attributes": {"age": 36, "income": 72000, "homeowner": True},
            },
        )
        assert rec.status_code == 200, rec.text
        decisions = rec.json()["decisions"]
        assert decisions and decisions[0]["rank"] == 1
        body = {
            "customerId": "ada",
            "recommendationId": rec.json()["recommendationId"],
            "rank": 1,
            "outcome": "click",
        }
        first = client.post("/api/v1/respond", json=body, headers={"Idempotency-Key": "srv-1"})
        again = client.post("/api/v1/respond", json=body, headers={"Idempotency-Key": "srv-1"})
        assert first.status_code == again.status_code == 200
        assert first.json() == again.json()
        assert first.json()["offerId"] == decisions[0]["offerId"]
        assert again.headers["idempotent-replayed"] == "true"
        wrong = client.post(
            "/api/v1/respond",
            content="a=1",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert wrong.status_code == 415 and wrong.json()["error"]["status"] == 415
        anonymous = httpx.get(f"{base}/api/v1/offers", timeout=10)
        assert anonymous.status_code == 401
    process.terminate()
    # uvicorn shuts down cleanly on SIGTERM, then re-raises the signal as its exit status.
    assert process.wait(timeout=15) in (0, -signal.SIGTERM)


def _exchange(base: str, request: bytes, parts: list[bytes]) -> tuple[int, bytes]:
    """Send a raw HTTP/1.1 request head and body parts; (status, response bytes)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(request)
        for part in parts:
            sock.sendall(part)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
            if b"\r\n\r\n" in received and received.rstrip().endswith(b"}"):
                break
    status = int(received.split(b" ", 2)[1])
    return status, received


def test_serve_refuses_bodies_over_the_limit_as_they_arrive(
    server: tuple[str, str, subprocess.Popen[str]],
) -> None:
    base, key, _ = server
    head = (
        "POST /api/v1/offers HTTP/1.1\r\nHost: test\r\nX-Tenant-Id: demo\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
    )
    # A declared length over the limit is answered before any of the body is sent.
    status, answer = _exchange(base, f"{head}Content-Length: 10000000\r\n\r\n".encode(), [])
    assert status == 413 and str(BODY_LIMIT).encode() in answer
    # A chunked body is cut off once it passes the limit.
    chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
    parts = [chunk] * (BODY_LIMIT // 1024 + 8) + [b"0\r\n\r\n"]
    status, answer = _exchange(base, f"{head}Transfer-Encoding: chunked\r\n\r\n".encode(), parts)
    assert status == 413 and b"payload_too_large" in answer
    # Under the limit, the same route works.
    with httpx.Client(base_url=base, timeout=10) as client:
        offer = {"id": "big", "name": "n" * (BODY_LIMIT - 200)}
        headers = {"X-Tenant-Id": "demo", "Authorization": f"Bearer {key}"}
        response = client.post("/api/v1/offers", json=offer, headers=headers)
        assert response.status_code == 201, response.text
