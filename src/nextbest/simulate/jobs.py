"""Simulations run in the background of a server process, their state in the store (table
``simulations``) so any worker answers for them and runs can be compared later.

:func:`submit` checks the inputs that need no customer (the flows and versions exist), stores
the run ``queued`` and starts a thread that runs it: ``running`` with its progress, then
``done`` with the result or ``failed`` with the error (an input only the customers can refute,
such as a segment nobody has, fails the run with an error naming the field). While it runs, a
heartbeat updates the row every :data:`HEARTBEAT_SECONDS`; a queued or running run without one
for :data:`STALE_SECONDS` (its process died or was stopped) is marked failed, interrupted, the
next time runs are read (:func:`get_simulation`, :func:`list_simulations`).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any

from ..errors import UnknownFlowError
from ..service import DecisionService
from ..store import InvalidInputError, Page, SimulationRecord, Store
from .options import SimulationOptions
from .run import load_flow, run_simulation

#: Seconds between two heartbeats of a running simulation.
HEARTBEAT_SECONDS = 5.0
#: A queued or running simulation without a heartbeat for this long is failed, interrupted.
STALE_SECONDS = 60.0
#: The error of a run whose process stopped.
INTERRUPTED = (
    "interrupted: the process running it stopped (no heartbeat for "
    f"{STALE_SECONDS:.0f} s); submit it again"
)
#: Progress is written at most this often (seconds).
_PROGRESS_EVERY = 1.0
_log = logging.getLogger("nextbest.simulate")

__all__ = [
    "HEARTBEAT_SECONDS",
    "INTERRUPTED",
    "STALE_SECONDS",
    "get_simulation",
    "list_simulations",
    "mark_interrupted",
    "new_simulation_id",
    "simulation_json",
    "submit",
]


def new_simulation_id(now: float) -> str:
    """A new run id that sorts by creation time (milliseconds, then 48 random bits)."""
    return f"sim_{int(now * 1000):013x}{secrets.token_hex(6)}"


def mark_interrupted(store: Store, now: float | None = None) -> int:
    """Fail every queued or running run whose heartbeat stopped :data:`STALE_SECONDS` ago."""
    if now is None:  # the store's clock (tests may set it), else the wall clock
        now = float(getattr(store, "clock", time.time)())
    return store.fail_stale_simulations(now - STALE_SECONDS, INTERRUPTED)


def get_simulation(store: Store, tenant_id: str, simulation_id: str) -> SimulationRecord | None:
    """A run of the tenant with its result (None: no such run of this tenant); a run whose
    process died is reported failed, interrupted."""
    record = store.get_simulation(tenant_id, simulation_id)
    stale = record is not None and record.status in ("queued", "running")
    if stale and mark_interrupted(store):
        record = store.get_simulation(tenant_id, simulation_id)
    return record


def list_simulations(
    store: Store, tenant_id: str, cursor: str | None = None, limit: int = 50
) -> Page[SimulationRecord]:
    """The tenant's runs, newest first, without their results (stale ones marked first)."""
    mark_interrupted(store)
    return store.list_simulations(tenant_id, cursor=cursor, limit=limit)


def simulation_json(record: SimulationRecord, *, with_result: bool = True) -> dict[str, Any]:
    """The JSON of a run (the API's and the report's)."""
    out: dict[str, Any] = {
        "id": record.simulation_id,
        "status": record.status,
        "inputs": record.inputs,
        "progress": {"done": record.done, "total": record.total},
        "createdAt": _iso(record.created_at),
        "updatedAt": _iso(record.updated_at),
        "finishedAt": None if record.finished_at is None else _iso(record.finished_at),
    }
    if record.error is not None:
        out["error"] = record.error
    if with_result and record.result is not None:
        out["result"] = record.result
    return out


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def submit(
    service: DecisionService,
    tenant_id: str,
    options: SimulationOptions,
    *,
    background: bool = True,
) -> SimulationRecord:
    """Check the flows exist (UnknownFlowError naming ``flow``/``version``/``compare``), store
    the run queued and run it in a daemon thread (``background=False``: here, before
    returning). Returns the stored run as submitted."""
    load_flow(service, tenant_id, options.flow, "flow")
    if options.compare is not None:
        load_flow(service, tenant_id, options.compare, "compare")
    store = service.store
    record = store.create_simulation(tenant_id, new_simulation_id(time.time()), options.to_dict())
    if background:
        thread = threading.Thread(
            target=execute,
            args=(service, tenant_id, record.simulation_id, options),
            name=f"simulation-{record.simulation_id}",
            daemon=True,
        )
        thread.start()
    else:
        execute(service, tenant_id, record.simulation_id, options)
    return record


def execute(
    service: DecisionService, tenant_id: str, simulation_id: str, options: SimulationOptions
) -> None:
    """Run a stored simulation to its end, keeping its row up to date (status, progress,
    heartbeat, result or error). Never raises: a failure is the run's error."""
    store = service.store
    store.update_simulation(tenant_id, simulation_id, status="running")
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                store.update_simulation(tenant_id, simulation_id)
            except Exception:  # a missed beat; the next one may pass
                _log.warning("heartbeat of simulation %s failed", simulation_id, exc_info=True)

    heart = threading.Thread(target=beat, name=f"{simulation_id}-heartbeat", daemon=True)
    heart.start()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= _PROGRESS_EVERY or done == total:
            last[0] = now
            store.update_simulation(tenant_id, simulation_id, done=done, total=total)

    try:
        result = run_simulation(service, tenant_id, options, progress)
    except (InvalidInputError, UnknownFlowError) as exc:
        store.update_simulation(tenant_id, simulation_id, status="failed", error=str(exc))
    except Exception as exc:
        _log.exception("simulation %s of tenant %r failed", simulation_id, tenant_id)
        store.update_simulation(
            tenant_id, simulation_id, status="failed", error=f"{type(exc).__name__}: {exc}"
        )
    else:
        store.update_simulation(
            tenant_id,
            simulation_id,
            status="done",
            done=result["customers"],
            total=result["customers"],
            result=result,
        )
    finally:
        stop.set()
