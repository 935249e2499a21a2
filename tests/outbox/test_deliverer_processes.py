"""Deliverer processes (``nextbest webhooks deliver``) against a real receiver: one killed
with SIGKILL mid-delivery and restarted (every event delivered; the receiver sees each id),
and two sharing a PostgreSQL database (no event sent twice). Waits have generous deadlines;
no assertion depends on time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from outboxkit import PEPPER, drop_schema, postgres_url
from receiver import Receiver, running

from nextbest.outbox import TargetPolicy, add_endpoint
from nextbest.store import OutboxEvent, Store, open_store

PEPPER_ENV = "NEXTBEST_API_KEY_PEPPER"


def deliverer(url: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, PEPPER_ENV: PEPPER.decode(), "NEXTBEST_DATABASE_URL": url}
    return subprocess.Popen(
        [sys.executable, "-m", "nextbest.cli", "webhooks", "deliver", "--allow-private-targets",
         "--retry-schedule", "0s,0s,0s", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("gave up waiting")
        time.sleep(0.05)


def publish(store: Store, count: int) -> list[str]:
    ids = [f"evt-{i:04d}" for i in range(count)]
    now = datetime.now(UTC)
    store.publish_events([OutboxEvent("acme", i, "thing.happened", now, {"n": i}) for i in ids])
    return ids


@pytest.mark.slow
def test_a_killed_deliverer_loses_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    with open_store(url, pepper=PEPPER) as store:
        store.upgrade()
        store.create_tenant("acme")
        receiver = Receiver()
        receiver.hang_first = True  # the first request hangs: the process dies meanwhile
        with running(receiver):
            add_endpoint(store, TargetPolicy(allow_private=True), "acme", receiver.url)
            ids = publish(store, 20)
            first = deliverer(url, "--lease-seconds", "2", "--poll-seconds", "0.05")
            try:
                assert receiver.first_arrived.wait(60), first.stderr
                first.send_signal(signal.SIGKILL)
                first.wait(30)
            finally:
                first.kill()
            receiver.release()
            assert store.delivery_counts("acme")["delivered"] < 20  # its batch was lost
            second = deliverer(url, "--lease-seconds", "2", "--poll-seconds", "0.05")
            try:
                wait_for(lambda: store.delivery_counts("acme")["delivered"] == 20)
            finally:
                second.send_signal(signal.SIGTERM)
                second.wait(30)
            assert second.returncode == 0
        assert set(receiver.ids()) == set(ids)  # deduped by webhook-id: every event arrived
        assert store.delivery_counts("acme") == {"pending": 0, "delivered": 20, "failed": 0}


@pytest.mark.slow
@pytest.mark.postgres
def test_two_deliverers_on_postgres_never_send_twice() -> None:
    url = postgres_url()
    schema = f"nbtwo_{uuid.uuid4().hex[:12]}"
    scoped = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    try:
        with open_store(url, schema=schema, pepper=PEPPER) as store:
            store.upgrade()
            store.create_tenant("acme")
            with running(Receiver()) as receiver:
                add_endpoint(store, TargetPolicy(allow_private=True), "acme", receiver.url)
                ids = publish(store, 300)
                workers = [deliverer(scoped, "--once", "--batch-size", "5") for _ in range(2)]
                for worker in workers:
                    worker.wait(120)
                    assert worker.returncode == 0, worker.stderr.read() if worker.stderr else ""
            assert sorted(receiver.ids()) == sorted(ids)  # each exactly once
            assert store.delivery_counts("acme")["delivered"] == 300
    finally:
        drop_schema(url, schema)
