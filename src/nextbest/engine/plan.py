"""What a running decision needs to know about its flow (the compiled flow's lower half).

A :class:`FlowPlan` sits below the per-decision state and the node executors; the compiler
builds the full :class:`~nextbest.engine.compiler.CompiledFlow` (a FlowPlan with its steps and
document) on top of it, so nothing the executors import depends on the compiler.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models.flows import FlowSettings
from ..plugin_api import ContextProvider, Registry


@dataclass(frozen=True)
class FlowPlan:
    """A flow's identity, settings and the names it reads, resolved at load time."""

    key: str
    name: str
    settings: FlowSettings
    #: customer-level names the flow's rules and formulas read (resolved once per decision)
    customer_names: frozenset[str]
    #: names resolved per offer (offer fields, computed fields, ``offer.lastSeenDays``, ...)
    offer_names: frozenset[str]
    registry: Registry
    #: each context provider the flow needs, with the names wanted from it
    context_plan: tuple[tuple[ContextProvider, frozenset[str]], ...] = ()

    @property
    def uses_offer_history(self) -> bool:
        """Whether the flow reads per-offer customer history (recency rules, lastSeenDays)."""
        return "offer.lastSeenDays" in self.offer_names
