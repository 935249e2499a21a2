"""Simulations run in the background of a server process, their state in the store (table
``simulations``) so any worker answers for them and runs can be compared later.

:func:`submit` checks the inputs that need no customer (the flows and versions exist), stores
the run ``queued`` and starts a thread that runs it: ``running`` with its progress, then
``done`` with the result or ``failed`` with the error (an input only the customers can refute,
such as a segment nobody has, fails the run with an error naming the field). While it runs, a
heartbeat updates the row every :data:`HEARTBEAT_SECONDS`; a queued or running run without one
for :data:`STALE_SECONDS` (its process died or was stopped) is marked failed, interrupted, the
next time runs are read (:func:`get_simulation`, :func:`list_simulations`).

A tenant runs one simulation at a time, and a process at most :func:`max_process_simulations`
(each loads a whole tenant): :func:`submit` and :func:`run_here` raise
:class:`SimulationBusyError` otherwise. The tenant's limit is checked in the store (a run of
another process counts); two processes starting a run for one tenant in the same instant may
both pass it.

:func:`run_here` stores a run and runs it in the caller's thread (``nextbest simulate``).
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any

from ..errors import UnknownFlowError
from ..service import DecisionService
from ..store import InvalidInputError, Page, SimulationRecord, Store
from .options import SimulationOptions
from .run import Progress, load_flow, run_simulation

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
#: The statuses of a run not finished yet.
_ACTIVE = ("queued", "running")
#: Simulations one process runs at once, all tenants together, unless
#: ``NEXTBEST_MAX_SIMULATIONS`` says otherwise.
DEFAULT_MAX_PROCESS_SIMULATIONS = 2
MAX_SIMULATIONS_ENV = "NEXTBEST_MAX_SIMULATIONS"
#: The runs this process is running (id -> tenant), guarded by ``_lock``; the lock also makes
#: the check of the limits and the creation of the run one step within the process.
_lock = threading.Lock()
_active: dict[str, str] = {}

__all__ = [
    "DEFAULT_MAX_PROCESS_SIMULATIONS",
    "HEARTBEAT_SECONDS",
    "INTERRUPTED",
    "MAX_SIMULATIONS_ENV",
    "STALE_SECONDS",
    "SimulationBusyError",
    "get_simulation",
    "list_simulations",
    "mark_interrupted",
    "max_process_simulations",
    "new_simulation_id",
    "run_here",
    "simulation_json",
    "submit",
]


class SimulationBusyError(Exception):
    """A run cannot start now: the tenant's run ``running_id`` is not finished, or (``running_id``
    None) this process runs as many simulations as it may."""

    def __init__(self, message: str, running_id: str | None = None) -> None:
        super().__init__(message)
        self.running_id = running_id


def max_process_simulations() -> int:
    """How many simulations this process runs at once: ``NEXTBEST_MAX_SIMULATIONS`` (a whole
    number >= 1), else :data:`DEFAULT_MAX_PROCESS_SIMULATIONS` (a bad value is logged)."""
    raw = os.environ.get(MAX_SIMULATIONS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PROCESS_SIMULATIONS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        _log.warning(
            "%s=%r is not a whole number >= 1; using %d",
            MAX_SIMULATIONS_ENV,
            raw,
            DEFAULT_MAX_PROCESS_SIMULATIONS,
        )
        return DEFAULT_MAX_PROCESS_SIMULATIONS
    return value


def _claim(store: Store, tenant_id: str, options: SimulationOptions) -> SimulationRecord:
    """Store a new queued run if the limits allow it (else SimulationBusyError) and count it
    as this process's until :func:`_release`."""
    with _lock:
        mark_interrupted(store)
        # the tenant's unfinished run, if any, is among its newest: no run starts beside it
        for run in store.list_simulations(tenant_id, limit=50).items:
            if run.status in _ACTIVE:
                raise SimulationBusyError(
                    f"simulation {run.simulation_id!r} of the tenant is {run.status}: a tenant "
                    "runs one simulation at a time; start this one when it has finished",
                    run.simulation_id,
                )
        cap = max_process_simulations()
        if len(_active) >= cap:
            raise SimulationBusyError(
                f"the server is running as many simulations as it may (at most {cap}, "
                f"{MAX_SIMULATIONS_ENV}); start this one when one has finished"
            )
        record = store.create_simulation(
            tenant_id, new_simulation_id(time.time()), options.to_dict()
        )
        _active[record.simulation_id] = tenant_id
        return record


def _release(simulation_id: str) -> None:
    with _lock:
        _active.pop(simulation_id, None)


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
    """Check the flows exist (UnknownFlowError naming ``flow``/``version``/``compare``) and
    the limits allow a run (SimulationBusyError), store the run queued and run it in a daemon
    thread (``background=False``: here, before returning). Returns the stored run as
    submitted."""
    _check_flows(service, tenant_id, options)
    record = _claim(service.store, tenant_id, options)
    if background:
        thread = threading.Thread(
            target=execute,
            args=(service, tenant_id, record.simulation_id, options),
            name=f"simulation-{record.simulation_id}",
            daemon=True,
        )
        try:
            thread.start()
        except BaseException:
            _release(record.simulation_id)
            raise
    else:
        execute(service, tenant_id, record.simulation_id, options)
    return record


def run_here(
    service: DecisionService,
    tenant_id: str,
    options: SimulationOptions,
    progress: Progress | None = None,
) -> tuple[SimulationRecord, dict[str, Any]]:
    """Store a run and run it in this thread, ``progress`` called as it goes: the stored run
    (as submitted) and its result. The checks of :func:`submit`; a failed run is stored
    failed and its exception raised (InvalidInputError naming the field, ...)."""
    _check_flows(service, tenant_id, options)
    record = _claim(service.store, tenant_id, options)
    result = execute(service, tenant_id, record.simulation_id, options, progress, reraise=True)
    assert result is not None  # reraise: a run that did not finish raised
    return record, result


def _check_flows(service: DecisionService, tenant_id: str, options: SimulationOptions) -> None:
    load_flow(service, tenant_id, options.flow, "flow")
    if options.compare is not None:
        load_flow(service, tenant_id, options.compare, "compare")


def execute(
    service: DecisionService,
    tenant_id: str,
    simulation_id: str,
    options: SimulationOptions,
    on_progress: Progress | None = None,
    *,
    reraise: bool = False,
) -> dict[str, Any] | None:
    """Run a stored simulation to its end, keeping its row up to date (status, progress,
    heartbeat, result or error) and calling ``on_progress`` too; its result. A failure is the
    run's error: None is returned, or with ``reraise`` the exception raised."""
    store = service.store
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                store.update_simulation(tenant_id, simulation_id)
            except Exception:  # a missed beat; the next one may pass
                _log.warning("heartbeat of simulation %s failed", simulation_id, exc_info=True)

    heart = threading.Thread(target=beat, name=f"{simulation_id}-heartbeat", daemon=True)
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= _PROGRESS_EVERY or done == total:
            last[0] = now
            store.update_simulation(tenant_id, simulation_id, done=done, total=total)
        if on_progress is not None:
            on_progress(done, total)

    try:  # from the first write on: whatever fails, the process's slot is released
        store.update_simulation(tenant_id, simulation_id, status="running")
        heart.start()
        result = run_simulation(service, tenant_id, options, progress)
    except (InvalidInputError, UnknownFlowError) as exc:
        store.update_simulation(tenant_id, simulation_id, status="failed", error=str(exc))
        if reraise:
            raise
        return None
    except BaseException as exc:  # KeyboardInterrupt too: the run must not stay "running"
        if isinstance(exc, Exception):
            _log.exception("simulation %s of tenant %r failed", simulation_id, tenant_id)
            error = f"{type(exc).__name__}: {exc}"
        else:  # Ctrl-C of the command, or the process exiting
            error = f"interrupted: {type(exc).__name__}"
        store.update_simulation(tenant_id, simulation_id, status="failed", error=error)
        if reraise or not isinstance(exc, Exception):
            raise
        return None
    else:
        store.update_simulation(
            tenant_id,
            simulation_id,
            status="done",
            done=result["customers"],
            total=result["customers"],
            result=result,
        )
        return result
    finally:
        stop.set()
        _release(simulation_id)
