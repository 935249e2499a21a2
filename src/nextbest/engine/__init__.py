"""The decision engine: flow compilation and the per-decision runner."""

from .compiler import CompiledFlow, compile_flow
from .runner import CompiledCatalog, run_decision
from .state import DecisionView

__all__ = ["CompiledCatalog", "CompiledFlow", "DecisionView", "compile_flow", "run_decision"]
