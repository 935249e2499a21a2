"""Management writes under real concurrency (threads over several store handles, as several
server processes would be), on SQLite and PostgreSQL: creating one offer id has one winner,
saves of one flow get consecutive versions, publishes leave exactly one published version, and
writes the database gives up on are retried, then reported as StoreBusyError, never a driver
error (issue 9)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from nextbest.store import (
    ConflictError,
    FlowVersion,
    OfferExistsError,
    Store,
    StoreBusyError,
)
from nextbest.store.postgres import PostgresStore
from nextbest.store.sqlite import SqliteStore

HANDLES = 4  # store handles (processes); the threads share them round-robin
StoreFactory = Callable[[], Store]


def race(store_factory: StoreFactory, threads: int, work: Callable[[Store, int], Any]) -> list[Any]:
    """Run ``work(store, i)`` in ``threads`` threads released at the same moment; return each
    thread's result or the exception it raised."""
    stores = [store_factory() for _ in range(HANDLES)]
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * threads

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(stores[i % HANDLES], i)
        except Exception as exc:  # the assertions look at what each thread got
            results[i] = exc

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return results


def published_rows(store: Store, tenant_id: str, key: str) -> list[int]:
    with store._read() as cur:  # type: ignore[attr-defined]
        rows = cur.execute(
            "SELECT version FROM flows WHERE tenant_id = ? AND flow_key = ? AND published = 1",
            (tenant_id, key),
        ).fetchall()
    return [int(r[0]) for r in rows]


def test_concurrent_creates_of_one_offer_id_have_exactly_one_winner(
    store: Store, store_factory: StoreFactory
) -> None:
    results = race(store_factory, 16, lambda s, i: s.create_offer("acme", {"id": "race", "by": i}))
    winners = [i for i, r in enumerate(results) if r is None]
    assert len(winners) == 1, results
    losers = [r for r in results if r is not None]
    assert all(isinstance(r, OfferExistsError) and r.offer_id == "race" for r in losers), losers
    assert "'race' already exists" in str(losers[0])
    assert store.get_offer("acme", "race") == {"id": "race", "by": winners[0]}


def test_concurrent_puts_of_a_new_offer_report_one_creation(
    store: Store, store_factory: StoreFactory
) -> None:
    results = race(store_factory, 12, lambda s, i: s.put_offer("acme", {"id": "new", "by": i}))
    assert sorted(results, key=repr) == [False] * 11 + [True], results
    assert store.get_offer("acme", "new")["id"] == "new"  # type: ignore[index]


def test_concurrent_saves_of_one_flow_get_consecutive_versions(
    store: Store, store_factory: StoreFactory
) -> None:
    def save_three(s: Store, i: int) -> list[int]:
        return [s.save_flow("acme", "race", {"key": "race", "by": i, "n": n}) for n in range(3)]

    results = race(store_factory, 8, save_three)
    assert not [r for r in results if isinstance(r, Exception)], results
    versions = sorted(v for r in results for v in r)
    assert versions == list(range(1, 25))
    for i, mine in enumerate(results):
        assert mine == sorted(mine)  # each thread's saves are in its own order
        for n, version in enumerate(mine):
            assert store.get_flow("acme", "race", version).document == {  # type: ignore[union-attr]
                "key": "race",
                "by": i,
                "n": n,
            }


def test_concurrent_publishes_leave_exactly_one_published_version(
    store: Store, store_factory: StoreFactory
) -> None:
    for n in range(8):
        store.save_flow("acme", "race", {"key": "race", "n": n})

    def publish_all(s: Store, i: int) -> list[FlowVersion]:
        # Every thread publishes every version, starting at a different one.
        return [s.publish_flow("acme", "race", (i + k) % 8 + 1) for k in range(8)]

    results = race(store_factory, 8, publish_all)
    assert not [r for r in results if isinstance(r, Exception)], results
    for i, answers in enumerate(results):
        assert [a.version for a in answers] == [(i + k) % 8 + 1 for k in range(8)]
        assert all(a.published and a.published_at is not None for a in answers)
    (published,) = published_rows(store, "acme", "race")
    assert store.get_flow("acme", "race", published_only=True).version == published  # type: ignore[union-attr]
    assert store.list_flows("acme").items[0].published_version == published


def test_concurrent_saves_and_publishes_of_one_flow(
    store: Store, store_factory: StoreFactory
) -> None:
    def save_and_publish(s: Store, i: int) -> int:
        version = s.save_flow("acme", "race", {"key": "race", "by": i})
        assert s.publish_flow("acme", "race", version).published
        return version

    results = race(store_factory, 8, save_and_publish)
    assert sorted(results) == list(range(1, 9)), results
    (published,) = published_rows(store, "acme", "race")
    assert published in results
    assert published_rows(store, "globex", "race") == []


def transient_error(store: Store) -> Exception:
    """What the database raises when it gives up on a transaction because of concurrent ones."""
    if store.url.startswith("postgresql"):
        return psycopg.errors.DeadlockDetected("deadlock detected")
    # SQLite runs one writer at a time and never deadlocks: raise what a dialect raises.
    return StoreBusyError("simulated collision", retryable=True)


def test_writes_are_retried_on_deadlocks_then_reported_as_busy(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"failures": 2, "attempts": 0}
    lock = store._lock  # type: ignore[attr-defined]

    def colliding_lock(cur: Any, scope: str, *parts: str) -> None:
        calls["attempts"] += 1
        if calls["failures"]:
            calls["failures"] -= 1
            raise transient_error(store)
        lock(cur, scope, *parts)

    monkeypatch.setattr(store, "_lock", colliding_lock)
    assert store.save_flow("acme", "f", {"key": "f"}) == 1
    assert calls["attempts"] == 3
    calls.update(failures=1000, attempts=0)
    with pytest.raises(StoreBusyError, match="tried 5 times") as caught:
        store.publish_flow("acme", "f", 1)
    assert caught.value.retryable and isinstance(caught.value, ConflictError)
    assert calls["attempts"] == 5  # bounded
    assert store.get_flow("acme", "f").published is False  # type: ignore[union-attr]


def test_a_locked_sqlite_database_is_busy_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    store = SqliteStore(path, pepper=b"p", busy_timeout=0.2)
    store.upgrade()
    store.create_tenant("acme")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        writes: list[Callable[[], object]] = [
            lambda: store.create_offer("acme", {"id": "o1"}),
            lambda: store.save_flow("acme", "f", {"key": "f"}),
            lambda: store.put_documents("ns", "acme", {"k": 1}),
        ]
        for write in writes:
            with pytest.raises(StoreBusyError, match="stayed locked by another writer") as caught:
                write()
            assert not caught.value.retryable  # it already waited the whole busy timeout
        assert store.get_offer("acme", "o1") is None  # reads go on under WAL
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    store.create_offer("acme", {"id": "o1"})
    assert store.get_offer("acme", "o1") == {"id": "o1"}
    store.close()


@pytest.mark.postgres
def test_an_exhausted_postgres_pool_is_busy_not_a_crash(pg_schema: tuple[str, str]) -> None:
    url, schema = pg_schema
    store = PostgresStore(url, schema=schema, pepper=b"p", max_size=1)
    store._pool.timeout = 0.2  # instead of the default 30 s wait for a free connection
    try:
        with store._pool.connection():  # every connection is in use
            with pytest.raises(StoreBusyError, match="the database is busy") as caught:
                store.create_offer("acme", {"id": "o1"})
            assert not caught.value.retryable
            with pytest.raises(StoreBusyError):
                store.get_offer("acme", "o1")
    finally:
        store.close()
