"""The decision engine: flow compilation and the per-decision runner.

Read it bottom-up, in the direction of its imports: ``names`` and ``catalog`` (offers and the
names formulas see), ``plan`` (what a decision knows of its flow), ``state`` (one decision in
progress), ``formulas`` (compiling and evaluating formulas), ``nodes/`` (one executor per node
type), ``node_types`` (the registry of node types), ``schema`` (the flow document model),
``compiler`` (document → CompiledFlow) and ``runner`` (a CompiledFlow run over a catalog →
Decision).
"""

from .catalog import CompiledCatalog
from .compiler import CompiledFlow, compile_flow
from .runner import run_decision
from .state import DecisionView

__all__ = ["CompiledCatalog", "CompiledFlow", "DecisionView", "compile_flow", "run_decision"]
