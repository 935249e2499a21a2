"""Webhook delivery benchmark: deliveries per second from the outbox to a loopback receiver.

The receiver is a small threaded HTTP server in a separate process (so it does not share the
deliverer's interpreter lock), answering 200 to every POST. Measured in the same run:

- baseline: bare signed POSTs to the receiver with the same HTTP code and concurrency, no
  database (what sending alone costs);
- one deliverer on SQLite (claim, sign, send, record) draining N events;
- with NEXTBEST_TEST_POSTGRES_URL set: one deliverer, and two deliverer processes sharing the
  database (``nextbest webhooks deliver --once``), each on N events in a throwaway schema.

Every figure is a ratio to the baseline too; the load average is printed with it.

    python benchmarks/webhooks.py [--events 3000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# benchmarks/http.py would shadow the standard library's ``http`` package when this folder
# comes first on sys.path (run as a script): drop that entry first.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402

from nextbest.outbox import Deliverer, TargetPolicy, WebhookSettings, add_endpoint, sender, signing  # noqa: E402  # noqa: E402
from nextbest.outbox.schedule import schedule_of  # noqa: E402
from nextbest.store import ClaimedDelivery, OutboxEvent, Store, open_store  # noqa: E402

PEPPER = b"bench-pepper"
POLICY = TargetPolicy(allow_private=True)


def _serve(port_queue: Any) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256  # the listen backlog: concurrent connects must not overflow

    server = Server(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def start_receiver() -> tuple[multiprocessing.Process, str]:
    queue: Any = multiprocessing.Queue()
    process = multiprocessing.Process(target=_serve, args=(queue,), daemon=True)
    process.start()
    return process, f"http://127.0.0.1:{queue.get(timeout=30)}/hook"


def baseline(url: str, count: int, concurrency: int) -> float:
    """Signed POSTs per second with the deliverer's HTTP code, no database."""
    target = POLICY.check(url)
    claim = ClaimedDelivery(0, "", "bench", "ep", url, ("whsec_" + "A" * 43 + "=",),
                            "evt", "bench.event", datetime.now(UTC), '{"n":1}', 1)  # fmt: skip
    body = signing.envelope(claim)

    def one(_: int) -> int:
        headers = signing.headers(claim, body, int(time.time()), "bench")
        return sender.post(target, body, headers).status

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(50)))  # warm up
        started = time.perf_counter()
        statuses = list(pool.map(one, range(count)))
        elapsed = time.perf_counter() - started
    assert set(statuses) == {200}
    return count / elapsed


def prepare(store: Store, url: str, count: int) -> None:
    store.upgrade()
    store.create_tenant("bench")
    add_endpoint(store, POLICY, "bench", url)
    now = datetime.now(UTC)
    events = [OutboxEvent("bench", f"evt-{i}", "bench.event", now, {"n": i}) for i in range(count)]
    for start in range(0, count, 1000):
        store.publish_events(events[start : start + 1000])


def one_deliverer(store: Store, count: int, concurrency: int) -> float:
    settings = WebhookSettings(
        policy=POLICY, schedule=schedule_of([]), concurrency=concurrency, batch_size=64
    )
    deliverer = Deliverer(store, settings)
    started = time.perf_counter()
    handled = deliverer.drain()
    elapsed = time.perf_counter() - started
    deliverer.stop()
    delivered = store.delivery_counts("bench")["delivered"]
    assert handled == count == delivered, (handled, count, delivered)
    return count / elapsed


def two_processes(url: str, store: Store, count: int, concurrency: int) -> float:
    env = {**os.environ, "NEXTBEST_API_KEY_PEPPER": PEPPER.decode(), "NEXTBEST_DATABASE_URL": url}
    cmd = [sys.executable, "-m", "nextbest.cli", "webhooks", "deliver", "--once",
           "--allow-private-targets", "--retry-schedule", "", "--batch-size", "64",
           "--concurrency", str(concurrency)]  # fmt: skip
    started = time.perf_counter()
    workers = [subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL) for _ in range(2)]
    for worker in workers:
        worker.wait()
    elapsed = time.perf_counter() - started  # includes both processes' start-up
    assert store.delivery_counts("bench")["delivered"] == count
    with store._read() as cur:  # type: ignore[attr-defined]
        first, last = cur.execute(
            "SELECT min(delivered_at), max(delivered_at) FROM webhook_deliveries"
        ).fetchone()
    print(f"  (between the first and the last delivery: {count / (last - first):.0f} /s)")
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    receiver, url = start_receiver()
    try:
        print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores)")
        base = baseline(url, args.events, args.concurrency)
        print(f"{'baseline, bare signed POSTs, no database:':<42}{base:8.0f} /s")
        with (
            tempfile.TemporaryDirectory() as tmp,
            open_store(f"sqlite:///{Path(tmp) / 'bench.db'}", pepper=PEPPER) as store,
        ):
            prepare(store, url, args.events)
            rate = one_deliverer(store, args.events, args.concurrency)
        print(f"{'one deliverer, SQLite:':<42}{rate:8.0f} /s  ({rate / base:.2f}x baseline)")
        pg = os.environ.get("NEXTBEST_TEST_POSTGRES_URL")
        if pg:
            for label, two in (
                ("one deliverer, PostgreSQL:", False),
                ("two deliverer processes, PostgreSQL, wall:", True),
            ):
                schema = f"nbbench_{uuid.uuid4().hex[:10]}"
                scoped = f"{pg}{'&' if '?' in pg else '?'}options=-csearch_path%3D{schema}"
                with open_store(pg, schema=schema, pepper=PEPPER) as store:
                    try:
                        prepare(store, url, args.events)
                        if two:
                            rate = two_processes(scoped, store, args.events, args.concurrency)
                        else:
                            rate = one_deliverer(store, args.events, args.concurrency)
                    finally:
                        with store._transaction() as cur:  # type: ignore[attr-defined]
                            cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
                print(f"{label:<42}{rate:8.0f} /s  ({rate / base:.2f}x baseline)")
        else:
            print("PostgreSQL figures skipped: NEXTBEST_TEST_POSTGRES_URL is not set")
        print(f"load average after: {os.getloadavg()[0]:.2f}; {args.events} events per run, "
              f"concurrency {args.concurrency}")  # fmt: skip
    finally:
        receiver.terminate()


if __name__ == "__main__":
    main()
