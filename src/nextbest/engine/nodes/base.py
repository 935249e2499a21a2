"""What every node type declares, and what its executor (a step) looks like.

A flow document is a list of typed nodes. Each node type is a :class:`NodeType`: the phase it
belongs to, its config's place in the flow schema, where its config keeps formulas (checked
even when the document is structurally invalid) and a builder that turns a validated node
into a :class:`Step`, built once per flow and run once per decision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import Field

from ...errors import FlowIssue
from ...models.flows import RankingProfile
from ...plugin_api import Registry
from ..formulas import ExpressionCompiler
from ..state import DecisionState

#: Phases, in the order a flow runs them: select and qualify offers, score and rank them, then
#: shape the output. A node of an earlier phase may not follow one of a later phase.
SELECTION, RANKING, OUTPUT = 1, 2, 3


class Step(Protocol):
    """A runnable node: built once per flow, ``run`` once per decision."""

    node_id: str
    node_type: str

    def run(self, state: DecisionState) -> None: ...


@dataclass(slots=True)
class BuildContext:
    """What a node type's builder receives while a flow is compiled."""

    #: where the node sits in the document, e.g. ``nodes[3]``
    path: str
    #: compiles the node's formulas with the names visible at this point of the flow
    compiler: ExpressionCompiler
    registry: Registry
    #: the flow's named ranking profiles
    profiles: Mapping[str, RankingProfile]
    #: problems found so far; a builder appends to it rather than raising
    issues: list[FlowIssue] = field(default_factory=list)

    def problem(self, where: str, message: str) -> None:
        """Record a problem at ``path + where`` (``where`` starts with a dot, e.g. ``.config``)."""
        self.issues.append(FlowIssue(f"{self.path}{where}", message))


@dataclass(frozen=True, slots=True)
class SchemaParts:
    """The flow-schema pieces that depend on what plugins registered, built once per host."""

    registry: Registry
    #: the ranking-profile model with the value providers' config fields
    profile_model: Any
    #: value providers' config fields, each optional (name -> (annotation, FieldInfo))
    provider_fields: Mapping[str, Any]
    #: the discriminated union of rule models (one per rule type)
    rule_union: Any


#: A node config's annotation and pydantic field for the flow schema.
ConfigField = tuple[Any, Any]
#: (path below the node, formula source) pairs found in a raw node config.
RawFormulas = Iterable[tuple[str, str]]


def static_config(model: type[Any], *, required: bool = False) -> Callable[[SchemaParts], Any]:
    """A config model that does not depend on plugins: required, or defaulted when omitted."""
    if required:
        return lambda parts: (model, ...)
    return lambda parts: (model, Field(default_factory=model))


#: (path below the node, message) pairs: where a node sits wrongly in the flow and why.
Misplacements = Iterable[tuple[str, str]]


def no_formulas(config: Mapping[str, Any]) -> RawFormulas:
    """For node types whose config holds no formulas."""
    return ()


def defines_nothing(node: Any) -> Iterable[tuple[str, str]]:
    """For node types that define no names."""
    return ()


def anywhere(types: Sequence[str], index: int, node: Any) -> Misplacements:
    """For node types whose phase alone says where they may sit."""
    return ()


@dataclass(frozen=True)
class NodeType:
    """One node type of flow documents.

    ``phases``: the phases a node of this type may run in, ascending (``compute`` runs before
    scoring or after ranking; an extension point anywhere). ``config(parts)`` gives the node's
    config annotation and field for the flow schema. ``build(node, ctx)`` returns the node's
    step, or None when it has nothing to do at decision time. ``raw_formulas(config)`` lists the
    formulas of an unvalidated config so syntax errors are reported with structural ones.
    ``placement(types, index, node)`` names what is wrong with the node's position beyond its
    phase, given every node's type (``node`` may be an unvalidated stand-in with ``type``,
    ``id`` and ``config.hook``). ``defines(node)`` lists the names the node makes visible to
    later formulas, as (path below the node, name). ``first``: every flow starts with this
    node type; ``unique``: at most one per flow; ``required``: at least one.
    """

    name: str
    phases: tuple[int, ...]
    config: Callable[[SchemaParts], ConfigField]
    build: Callable[[Any, BuildContext], Step | None]
    raw_formulas: Callable[[Mapping[str, Any]], RawFormulas] = no_formulas
    placement: Callable[[Sequence[str], int, Any], Misplacements] = anywhere
    defines: Callable[[Any], Iterable[tuple[str, str]]] = defines_nothing
    first: bool = False
    unique: bool = False
    required: bool = False
    description: str = ""

    def phase_at(self, current: int) -> int:
        """The phase a node of this type takes when the flow has reached ``current``: the first
        allowed phase at or after it (an earlier one when none is left: an ordering error)."""
        return next((p for p in self.phases if p >= current), self.phases[-1])
