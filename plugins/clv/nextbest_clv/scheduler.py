"""Scheduled batch computes: each tenant's ``schedule`` (cron, UTC) in its CLV settings.

The API server runs one :class:`ClvScheduler` per process (started by the plugin's routes'
lifespan). Every ``interval`` seconds it looks for tenants whose next cron time since their
last run has passed; a due job is run by one process only: it takes the store lock
``clv-schedule.<tenant>`` (shared by every process on the database), re-reads the schedule state
under the lock (another process may have just run it), runs the batch and records the run.

One tenant never stops the others: a job that fails (a model never fitted, a store error) is
logged and recorded as that tenant's run with its error (``lastError``), like a cron job, so it
runs again at the next cron time and the other tenants' jobs run as usual. Times read from the
schedule state (``lastRun``, ``since``) and the clock go through the store's window of times
(``nextbest.store.epoch_problem``); a state time outside it (a hand-edited or corrupt document)
restarts the count from now.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from croniter import croniter

from nextbest.store import epoch_problem
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

    @staticmethod
    def _base(state: dict[str, Any]) -> float | None:
        """The time the next run is counted from (the last run, else when the schedule was
        set), or None when the state has no usable one (see the module doc)."""
        base = state.get("lastRun") or state.get("since")
        if isinstance(base, bool) or not isinstance(base, int | float):
            return None
        return float(base) if epoch_problem(float(base)) is None else None

    def _due(self, cron: str, state: dict[str, Any], now: float) -> bool:
        base = self._base(state)
        return base is not None and next_run(cron, base) <= now

    def run_due(self) -> list[BatchResult]:
        """Run every due job this process wins the lock for; return the results of those that
        succeeded (a failed job is logged and recorded in its tenant's schedule state)."""
        now = self.clock()
        problem = epoch_problem(now)
        if problem is not None:
            log.error("CLV scheduler: the clock's time %r %s; nothing scheduled runs", now, problem)
            return []
        results = []
        for tenant in self.service.store.list_tenants():
            try:
                result = self._run_tenant(tenant.tenant_id, now)
            except Exception:  # one tenant never stops the others; its state records why
                log.exception("scheduled CLV batch for tenant %r failed", tenant.tenant_id)
                continue
            if result is not None:
                results.append(result)
        return results

    def _run_tenant(self, tenant_id: str, now: float) -> BatchResult | None:
        """Run the tenant's job when it is due and this process wins its lock."""
        store = self.service.store
        cron = self.service.get_settings(tenant_id).schedule
        if cron is None:
            return None
        state = self._state(tenant_id)
        if self._base(state) is None:
            # A schedule set without the service (e.g. by hand), or a state time that is not a
            # usable time: start counting from now.
            state = {"since": now, "schedule": cron}
            store.put_documents(CONFIG_NAMESPACE, tenant_id, {SCHEDULE_STATE_KEY: state})
            return None
        if not self._due(cron, state, now):
            return None
        lock = store.try_lock(f"clv-schedule.{tenant_id}", self.lock_ttl)
        if lock is None:
            return None  # another process is running it
        with lock:
            state = self._state(tenant_id)
            if not self._due(cron, state, now):
                return None  # another process ran it since we looked
            try:
                # the same path as the CLI and the API: RFM records plus, for a probabilistic
                # model, the model fields; as of the time the tenant's turn comes (tenants
                # before it may have taken long), so its records, and the crossings the
                # host's triggers see in them, are of the present
                as_of = max(now, self.clock())
                result, model_result = compute_records(self.service, tenant_id, as_of=as_of)
            except Exception as exc:
                # Recorded as the run (retried at the next cron time, not every check).
                state.update(
                    {"lastRun": now, "schedule": cron, "lastError": f"{type(exc).__name__}: {exc}"}
                )
                store.put_documents(CONFIG_NAMESPACE, tenant_id, {SCHEDULE_STATE_KEY: state})
                raise
            state.pop("lastError", None)
            state.update(
                {"lastRun": now, "schedule": cron, "lastResult": result_json(result, model_result)}
            )
            store.put_documents(CONFIG_NAMESPACE, tenant_id, {SCHEDULE_STATE_KEY: state})
        log.info(
            "scheduled CLV batch for tenant %r: %d records in %.2f s",
            tenant_id,
            result.computed,
            result.duration_seconds,
        )
        return result

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
