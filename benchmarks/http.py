"""HTTP benchmark: recommend latency and respond throughput against a local ``nextbest serve``.

Starts ``nextbest serve --demo`` on a free loopback port with a temporary SQLite database, then
sends bounded request counts (loopback only) and stops the server. The baseline, measured in the
same run, is the ``/healthz`` round trip (HTTP + framework cost with no work): the ratios say how
much a decision or a recorded outcome costs on top of it.

    python benchmarks/http.py [--requests 2000] [--threads 4]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

# This file is named http.py: run as a script, its folder comes first on sys.path and would
# shadow the standard library's ``http`` package that httpx imports. Drop that entry first.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import httpx  # noqa: E402

ADA = {"customerId": "ada", "channel": "web",
       "attributes": {"age": 36, "income": 72000, "homeowner": True}}  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(workdir: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    port = free_port()
    env = {**os.environ, "NEXTBEST_API_KEY_PEPPER": "bench"}
    env.setdefault("NEXTBEST_PLUGINS", "builtin")
    log = (workdir / "server.log").open("wb")
    cmd = [sys.executable, "-m", "nextbest.cli", "serve", "--demo", "--port", str(port),
           "--database", f"sqlite:///{workdir / 'bench.db'}", "--log-level", "warning"]  # fmt: skip
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit((workdir / "server.log").read_text())
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                match = re.search(r"nbk_[0-9a-f]{16}_[\w-]+", (workdir / "server.log").read_text())
                if match:
                    return process, base, match.group(0)
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("the server did not start within 60 s")


def latencies(count: int, send: Callable[[int], None]) -> list[float]:
    out = []
    for i in range(count):
        t0 = time.perf_counter()
        send(i)
        out.append(time.perf_counter() - t0)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def threaded(count: int, threads: int, make_send: Callable[[], Callable[[int], None]]) -> float:
    """Send ``count`` requests from ``threads`` clients; return requests per second."""
    per = count // threads
    senders = [make_send() for _ in range(threads)]

    def run(t: int) -> None:
        for i in range(per):
            senders[t](t * per + i)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return per * threads / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    n = args.requests
    with tempfile.TemporaryDirectory() as tmp:
        process, base, key = start_server(Path(tmp))
        headers = {"X-Tenant-Id": "demo", "Authorization": f"Bearer {key}"}
        try:

            def client() -> httpx.Client:
                return httpx.Client(base_url=base, headers=headers, timeout=30)

            def checked(response: httpx.Response) -> None:
                if response.status_code != 200:
                    raise SystemExit(f"{response.request.url}: {response.text}")

            with client() as c:
                for _ in range(50):  # warm-up (flow compile, catalog cache, connections)
                    checked(c.post("/api/v1/recommend", json=ADA))
                health = latencies(n, lambda i: checked(c.get("/healthz")))
                rec = latencies(n, lambda i: checked(c.post("/api/v1/recommend", json=ADA)))
                t0 = time.perf_counter()
                resp = latencies(
                    n,
                    lambda i: checked(
                        c.post(
                            "/api/v1/respond",
                            json={
                                "customerId": f"c{i % 200}",
                                "offerId": "savings-boost",
                                "outcome": "click",
                                "idempotencyKey": f"seq-{i}",
                            },
                        )
                    ),
                )
                seq_rps = n / (time.perf_counter() - t0)

            def make_respond() -> Callable[[int], None]:
                c = client()

                def send(i: int) -> None:
                    checked(c.post("/api/v1/respond", json={
                        "customerId": f"c{i % 200}", "offerId": "cashback-card",
                        "outcome": "conversion", "conversionValue": 10.0,
                        "idempotencyKey": f"par-{i}"}))  # fmt: skip

                return send

            par_rps = threaded(n, args.threads, make_respond)
        finally:
            process.terminate()
            process.wait(timeout=15)

    h50 = statistics.median(health)
    r50, r99 = statistics.median(rec), pct(rec, 0.99)
    print(f"requests per phase: {n} (loopback, SQLite, one uvicorn worker)")
    h99 = pct(health, 0.99)
    print(f"baseline /healthz round trip: p50 {h50 * 1e3:.2f} ms, p99 {h99 * 1e3:.2f} ms")
    print(f"recommend latency: p50 {r50 * 1e3:.2f} ms, p99 {r99 * 1e3:.2f} ms "
          f"(p50 = {r50 / h50:.1f}x healthz)")  # fmt: skip
    print(f"respond sequential: {seq_rps:.0f} req/s, p50 {statistics.median(resp) * 1e3:.2f} ms "
          f"({statistics.median(resp) / h50:.1f}x healthz)")  # fmt: skip
    print(f"respond with {args.threads} client threads: {par_rps:.0f} req/s "
          f"({par_rps / seq_rps:.2f}x sequential)")  # fmt: skip


if __name__ == "__main__":
    main()
