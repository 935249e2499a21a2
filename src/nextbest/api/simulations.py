"""Population simulations: ``/api/v1/simulations`` (submit, read, list; docs/simulation.md).

A run is submitted by an editor (202 with its id and a ``Location``), runs in the background of
the server process and is read by any viewer of the tenant from the store (status, progress,
result or error). Another tenant's run is a 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.responses import JSONResponse

from ..errors import UnknownFlowError
from ..simulate import parse_options
from ..simulate.jobs import (
    SimulationBusyError,
    get_simulation,
    list_simulations,
    simulation_json,
    submit,
)
from ..store import InvalidInputError
from .auth import READ_ROLES, WRITE_ROLES, AuthContext, require_role
from .decisions import Service
from .errors import ApiError, field_error
from .routing import JsonRoute
from .schemas import Id

router = APIRouter(prefix="/api/v1/simulations", tags=["simulations"], route_class=JsonRoute)
Reader = Annotated[AuthContext, Depends(require_role(*READ_ROLES))]
Writer = Annotated[AuthContext, Depends(require_role(*WRITE_ROLES))]
Options = Annotated[
    dict[str, Any],
    Body(
        description="`flow` (required), `version`, `compare` (`KEY` or `KEY@VERSION`), "
        "`segment` (a value of the breakdown `by`), `sample` with `seed`, `asOf` (ISO-8601, "
        "default now), `by` (a context name; default: the plugins' suggestion)",
        examples=[{"flow": "retention", "compare": "retention@1", "sample": 1000, "seed": 7}],
    ),
]


@router.post(
    "",
    summary="Start a population simulation",
    status_code=202,
    responses={
        202: {"description": "Accepted: the run's id; `Location` is where to read it"},
        409: {
            "description": "`simulation_running`: the tenant's run named in the message has "
            "not finished (one at a time per tenant); `simulations_busy`: the server runs as "
            "many simulations as it may (`NEXTBEST_MAX_SIMULATIONS`)"
        },
    },
)
def start_simulation(body: Options, auth: Writer, service: Service) -> Any:
    """Check the options (400 naming the field) and that the flows exist (404), store the run
    and start it in the background. Read it at `Location` until its status is `done` or
    `failed`."""
    try:
        options = parse_options(body, now=datetime.now(UTC))
        record = submit(service, auth.tenant_id, options)
    except InvalidInputError as exc:
        raise field_error(f"body.{exc.field or 'flow'}", str(exc)) from None
    except UnknownFlowError as exc:
        raise ApiError(404, str(exc), code="flow_not_found") from None
    except SimulationBusyError as exc:
        code = "simulations_busy" if exc.running_id is None else "simulation_running"
        raise ApiError(409, str(exc), code=code) from None
    location = f"{router.prefix}/{record.simulation_id}"
    return JSONResponse(simulation_json(record), status_code=202, headers={"Location": location})


@router.get("", summary="List simulations, newest first (cursor pagination)")
def list_runs(
    auth: Reader,
    service: Service,
    cursor: Annotated[str | None, Query(min_length=1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """The tenant's runs with their inputs, status and progress (results left out: read a run
    for its result)."""
    try:
        page = list_simulations(service.store, auth.tenant_id, cursor=cursor, limit=limit)
    except InvalidInputError as exc:
        raise field_error("query.cursor", str(exc)) from None
    return {
        "items": [simulation_json(r, with_result=False) for r in page.items],
        "nextCursor": page.next_cursor,
    }


@router.get("/{simulation_id}", summary="A simulation: status, progress, result or error")
def read_run(
    simulation_id: Annotated[Id, Path()], auth: Reader, service: Service
) -> dict[str, Any]:
    """`status` is queued, running, done or failed; `progress` counts customers; `result`
    (when done) is described in docs/simulation.md; `error` (when failed) says why, e.g.
    interrupted when the process running it stopped. 404 for an unknown id (or another
    tenant's)."""
    record = get_simulation(service.store, auth.tenant_id, simulation_id)
    if record is None:
        raise ApiError(404, f"simulation {simulation_id!r} not found", code="simulation_not_found")
    return simulation_json(record)


__all__ = ["router"]
