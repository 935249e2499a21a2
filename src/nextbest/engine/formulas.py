"""Formulas in flows: compiled at load time for one place in a flow, evaluated per candidate.

:class:`ExpressionCompiler` knows the names visible at a node (offer fields, computed fields
defined so far, context providers' names, output names after ranking); the helpers below
evaluate a compiled formula for a candidate and turn a failure into null plus a trace entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..expressions import CompiledExpression, EvaluationError, compile_expression
from ..models.decision import Candidate, PluginFailure
from ..plugin_api import Registry
from .names import OUTPUT_NAMES, is_offer_name, is_static_offer_name
from .state import BUILTIN_PLUGIN, DecisionState


class ExpressionCompiler:
    """Compiles formulas for one place in a flow: knows the names visible there."""

    def __init__(
        self,
        registry: Registry,
        functions: Mapping[str, Callable[..., Any]],
        computed: frozenset[str],
        output_phase: bool,
    ) -> None:
        self._registry = registry
        self._functions = functions
        self._computed = set(computed)
        self.output_phase = output_phase
        self.referenced: set[str] = set()

    def define(self, name: str) -> None:
        """Make a computed field visible to the formulas compiled after it."""
        self._computed.add(name)

    def is_known(self, name: str) -> bool:
        """Whether a formula at this point may use ``name``."""
        if name in self._computed or is_static_offer_name(name):
            return True
        if name in ("offer.lastSeenDays", "fitMultiplier"):
            return True
        if name in OUTPUT_NAMES:
            return self.output_phase
        return self._registry.provider_for(name) is not None

    def compile(self, source: str) -> CompiledExpression:
        """Compile a formula; raises ExpressionError naming unknown names or functions."""
        compiled = compile_expression(
            source, functions=self._functions, is_known_name=self.is_known
        )
        self.referenced.update(compiled.names)
        return compiled


def evaluate(state: DecisionState, expr: CompiledExpression, cand: Candidate, what: str) -> Any:
    """Evaluate a formula for one candidate; a failure is null plus a trace entry."""
    try:
        return expr.evaluate(cand.scope)
    except EvaluationError as exc:
        formula_failed(state, cand, what, exc)
        return None


def formula_failed(state: DecisionState, cand: Candidate, what: str, exc: EvaluationError) -> None:
    """A formula failed at decision time: its value becomes null.

    When a function registered by a plugin (other than the built-in one) raised, the failure is
    the plugin's: it is recorded under the plugin's name and the flow's plugin-error policy
    applies (``fail`` fails the decision). Any other failure (division by zero, ``log(0)``, null
    arithmetic) is a formula error: null plus a trace entry, never an exception.
    """
    owner = function_owner(state, exc)
    if owner is not None:
        state.plugin_failed(owner, f"function {exc.function}", exc, cand.offer.id,
                            f"{what}: value is null")  # fmt: skip
    elif state.trace is not None:
        state.trace.failures.append(
            PluginFailure("formula", what, exc.reason, cand.offer.id, "value is null")
        )


def function_owner(state: DecisionState, exc: BaseException) -> str | None:
    """The plugin whose formula function raised ``exc``, unless it is the built-in plugin."""
    function = getattr(exc, "function", None)
    if not isinstance(exc, EvaluationError) or function is None:
        return None
    owner = state.flow.registry.owner("function", function)
    return None if owner == BUILTIN_PLUGIN else owner


def lookup_for(state: DecisionState, cand: Candidate) -> Callable[[str], Any]:
    """Name lookup for rules and value providers: offer names from the candidate, the rest from
    the decision's customer context."""
    scope = cand.scope

    def lookup(name: str) -> Any:
        if is_offer_name(name):
            return scope.get(name)
        return state.customer_value(name)

    return lookup
