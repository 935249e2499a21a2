"""Population simulation (docs/simulation.md): a flow run over every customer of a tenant (or a
segment, or a reproducible sample) as of a time, with the store's context read in bulk and
nothing recorded; the offer mix, coverage, expected value and conversions, by a breakdown, and
the comparison of two flows. ``options`` parses what is asked, ``population`` reads the tenant,
``run`` decides in chunks, ``result`` tallies, ``jobs`` runs simulations (in the background or in
the caller's thread) with their state in the store, one per tenant at a time."""

from .jobs import (
    SimulationBusyError,
    get_simulation,
    list_simulations,
    run_here,
    simulation_json,
    submit,
)
from .options import FlowRef, SimulationOptions, parse_flow_ref, parse_options
from .run import CHUNK, run_simulation

__all__ = [
    "CHUNK",
    "FlowRef",
    "SimulationBusyError",
    "SimulationOptions",
    "get_simulation",
    "list_simulations",
    "parse_flow_ref",
    "parse_options",
    "run_here",
    "run_simulation",
    "simulation_json",
    "submit",
]
