"""The Simulations page: the tenant's stored population simulations (``nextbest simulate``,
``POST /api/v1/simulations``), newest first, and one run (``?run=<id>``, else the newest
finished one): its status and progress, its error, or its result (``simulation_blocks``).

Runs are read through ``nextbest.simulate.jobs``, as the API reads them, so a run whose
process died shows as failed (interrupted) here too. Runs are listed whatever the page's
``asOf``: each run has its own."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..errors import PageInputError, PageNotFoundError
from ..plugin_api import PageRequest
from ..report_blocks import Block, Column, Form, FormField, Section, Stat, Stats, Table, Text
from ..simulate.jobs import get_simulation, list_simulations
from ..store import SimulationRecord, Store
from ..store.limits import id_problem
from .simulation_blocks import flow_label, result_blocks

#: The newest runs listed (the store's largest page); an older run opens by its id.
MAX_RUNS = 1000
RUN_PARAM = "run"


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _flow_of(record: SimulationRecord, index: int) -> str | None:
    """``key@version`` of the run's first (0) or compared (1) flow: the versions the result
    used, else the inputs (a published version not yet resolved shows as ``key``)."""
    result = record.result
    if result is not None and len(result["flows"]) > index:
        return flow_label(result["flows"][index])
    inputs = record.inputs
    if index == 1:
        return inputs.get("compare")
    version = inputs.get("version")
    return f"{inputs['flow']}@{version}" if version is not None else str(inputs["flow"])


def _chosen(inputs: dict[str, Any]) -> str:
    """Which customers a run was asked for, in words."""
    parts = []
    if inputs.get("segment") is not None:
        parts.append(f"segment {inputs['segment']}")
    if inputs.get("sample") is not None:
        parts.append(f"sample {inputs['sample']:,} (seed {inputs['seed']})")
    if inputs.get("by") is not None:
        parts.append(f"by {inputs['by']}")
    return ", ".join(parts) if parts else "all"


def _status(record: SimulationRecord) -> str:
    """The status with the progress of a run under way."""
    if record.status in ("queued", "running") and record.total:
        return f"{record.status} ({100.0 * record.done / record.total:.0f} %)"
    return record.status


def _run_row(record: SimulationRecord) -> list[Any]:
    result = record.result
    figures: list[Any] = [None, None, None, None]
    customers = record.total
    if result is not None:
        customers = result["customers"]
        for i, flow in enumerate(result["flows"][:2]):
            coverage = flow["overall"]["coverage"]
            figures[i] = None if coverage is None else 100.0 * coverage
            figures[2 + i] = flow["overall"]["expectedValue"]
    return [
        record.simulation_id,
        _when(record.created_at),
        _flow_of(record, 0),
        _flow_of(record, 1),
        _chosen(record.inputs),
        _status(record),
        customers,
        figures[0],
        figures[2],
        figures[1],
        figures[3],
    ]


def _runs_table(request: PageRequest, store: Store, runs: list[SimulationRecord]) -> Table:
    """The runs, newest first, with the figures of the shown page's finished runs (their
    results are read for those rows only)."""
    query = request.table("runs", sortable=("created",), default_sort="created")
    ordered = runs if query.descending else runs[::-1]
    page = ordered[query.offset : query.offset + query.page_size]
    rows = []
    for record in page:
        if record.status == "done":
            record = get_simulation(store, request.tenant_id, record.simulation_id) or record
        rows.append(_run_row(record))
    return Table(
        "runs",
        "Simulation runs of the tenant, newest first",
        [
            Column("id", "Run"),
            Column("created", "Started", "UTC", sortable=True),
            Column("flow", "Flow"),
            Column("compare", "Compared with"),
            Column("customers_chosen", "Customers chosen"),
            Column("status", "Status"),
            Column("customers", "Customers", "count", True),
            Column("coverage", "Coverage", "%", True),
            Column("value", "Expected value", "money", True),
            Column("coverage2", "Coverage, compared", "%", True),
            Column("value2", "Expected value, compared", "money", True),
        ],
        rows,
        query,
        len(runs),
    )


def _option(record: SimulationRecord) -> tuple[str, str]:
    compare = _flow_of(record, 1)
    flows = f"{_flow_of(record, 0)}" + (f" vs {compare}" if compare else "")
    when = _when(record.created_at).strftime("%Y-%m-%d %H:%M")
    return record.simulation_id, f"{when} · {flows} · {record.status}"


def _pick(
    request: PageRequest, store: Store, runs: list[SimulationRecord]
) -> SimulationRecord | None:
    """The run asked for (``?run=``: 400 for no id, 404 for none of the tenant's), else the
    newest finished run, else None."""
    asked = request.param(RUN_PARAM)
    if asked is None:
        done = next((r for r in runs if r.status == "done"), None)
        if done is None:
            return None
        return get_simulation(store, request.tenant_id, done.simulation_id)
    problem = id_problem(asked)
    if problem is not None:
        raise PageInputError(f"query.{RUN_PARAM}", f"a simulation id {problem}")
    record = get_simulation(store, request.tenant_id, asked)
    if record is None:
        raise PageNotFoundError(f"no simulation {asked!r}")
    return record


def run_blocks(record: SimulationRecord) -> list[Block]:
    """One run: its status and progress, its error, or its result."""
    compare = _flow_of(record, 1)
    title = f"Run {record.simulation_id}: {_flow_of(record, 0)}" + (
        f" and {compare}" if compare else ""
    )
    if record.status == "done" and record.result is not None:
        return [Section(title, result_blocks(record.result))]
    items = [
        Stat("Status", record.status),
        Stat("Started", _when(record.created_at), "UTC"),
        Stat("Customers done", record.done, "count"),
        Stat("Customers in all", record.total, "count"),
    ]
    if record.total:
        items.append(Stat("Progress", 100.0 * record.done / record.total, "%"))
    blocks: list[Block] = [Stats(items)]
    if record.status == "failed":
        blocks.append(Text(record.error or "no reason was recorded", title="Failed", kind="note"))
    else:
        blocks.append(
            Text(
                f"The run is {record.status}; last heartbeat "
                f"{_when(record.updated_at):%Y-%m-%d %H:%M:%S} UTC. Reload the page to follow "
                "it: the result shows once it is done.",
                kind="note",
            )
        )
    return [Section(title, blocks)]


def render_simulations(request: PageRequest) -> list[Block]:
    """The Simulations page (see the module docstring)."""
    store = request.host.store
    assert store is not None
    runs = list(list_simulations(store, request.tenant_id, limit=MAX_RUNS).items)
    record = _pick(request, store, runs)
    if not runs:
        return [
            Text(
                "The tenant has no simulation runs yet: start one with `nextbest simulate "
                "--tenant T --flow KEY [--compare KEY@N]` or POST /api/v1/simulations.",
                kind="note",
            )
        ]
    options = [_option(r) for r in runs]
    if record is not None and all(value != record.simulation_id for value, _ in options):
        options.append(_option(record))  # older than the listed runs, opened by its id
    blocks: list[Block] = [
        Form(
            [
                FormField(
                    RUN_PARAM,
                    "Run",
                    "select",
                    record.simulation_id if record is not None else "",
                    options,
                )
            ],
            submit="Open",
        ),
        _runs_table(request, store, runs),
    ]
    if len(runs) == MAX_RUNS:
        blocks.append(Text(f"The newest {MAX_RUNS} runs are listed.", kind="note"))
    if record is None:
        blocks.append(Text("No run has finished yet.", kind="note"))
    else:
        blocks += run_blocks(record)
    return blocks


__all__ = ["render_simulations", "run_blocks"]
