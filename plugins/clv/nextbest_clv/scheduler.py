"""Scheduled batch computes: each tenant's ``schedule`` (cron, UTC) in its CLV settings.

The API server runs one :class:`ClvScheduler` per process (started by the plugin's routes'
lifespan). Every ``interval`` seconds it looks for tenants whose next cron time since their
last run has passed; a due job is run by one process only: it takes the store lock
``clv-schedule.<tenant>`` (shared by every process on the database), re-reads the schedule state
under the lock (another process may have just run it), runs the batch and records the run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from croniter import croniter

from nextbest_clv.service import CONFIG_NAMESPACE, SCHEDULE_STATE_KEY, BatchResult, ClvService
from nextbest_clv.service.batch_compute import compute_records, result_json

__all__ = ["ClvScheduler", "next_run"]

log = logging.getLogger("nextbest_clv.scheduler")


def next_run(cron: str, after: float) -> float:
    """The first time (epoch seconds) strictly after ``after`` that matches ``cron`` (UTC)."""
    start = datetime.fromtimestamp(after, UTC)
    return float(croniter(cron, start).get_next(datetime).timestamp())


class ClvScheduler:
    """Runs due scheduled batch computes for every tenant of the service's store.

    Args:
        service: the CLV service (its store lists the tenants and holds the locks).
        interval: seconds between checks in the background thread.
        lock_ttl: seconds a process holds a tenant's job lock (longer than a batch takes).
        clock: epoch seconds now (tests pass a fake clock).
    """

    def __init__(
        self,
        service: ClvService,
        *,
        interval: float = 30.0,
        lock_ttl: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.interval = interval
        self.lock_ttl = lock_ttl
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _state(self, tenant_id: str) -> dict[str, Any]:
        doc = self.service.store.get_document(CONFIG_NAMESPACE, tenant_id, SCHEDULE_STATE_KEY)
        return dict(doc) if isinstance(doc, dict) else {}

    def _due(self, cron: str, state: dict[str, Any], now: float) -> bool:
        base = state.get("lastRun") or state.get("since")
        return base is not None and next_run(cron, float(base)) <= now

    def run_due(self) -> list[BatchResult]:
        """Run every due job this process wins the lock for; return their results."""
        store = self.service.store
        results = []
        for tenant in store.list_tenants():
            tenant_id = tenant.tenant_id
            cron = self.service.get_settings(tenant_id).schedule
            if cron is None:
                continue
            now = self.clock()
            state = self._state(tenant_id)
            if state.get("lastRun") is None and state.get("since") is None:
                # A schedule set without the service (e.g. by hand): start counting from now.
                state = {"since": now, "schedule": cron}
                store.put_documents(CONFIG_NAMESPACE, tenant_id, {SCHEDULE_STATE_KEY: state})
                continue
            if not self._due(cron, state, now):
                continue
            lock = store.try_lock(f"clv-schedule.{tenant_id}", self.lock_ttl)
            if lock is None:
                continue  # another process is running it
            with lock:
                state = self._state(tenant_id)
                if not self._due(cron, state, now):
                    continue  # another process ran it since we looked
                # the same path as the CLI and the API: RFM records plus, for a probabilistic
                # model, the model fields
                result, model_result = compute_records(self.service, tenant_id, as_of=now)
                state.update(
                    {
                        "lastRun": now,
                        "schedule": cron,
                        "lastResult": result_json(result, model_result),
                    }
                )
                store.put_documents(CONFIG_NAMESPACE, tenant_id, {SCHEDULE_STATE_KEY: state})
                results.append(result)
                log.info(
                    "scheduled CLV batch for tenant %r: %d records in %.2f s",
                    tenant_id,
                    result.computed,
                    result.duration_seconds,
                )
        return results

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_due()
            except Exception:  # keep the scheduler alive; the next check retries
                log.exception("CLV scheduler check failed")

    def start(self) -> None:
        """Start checking in a daemon thread."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="clv-scheduler", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread (waits for a running job to finish)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
