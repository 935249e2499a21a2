"""Flow loading: validate a flow document, check phases and formulas, build runnable steps.

Everything that can be checked is checked here, so a bad flow fails when it is loaded (with
every problem named by its path) and never at decision time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from ..errors import FlowIssue, FlowValidationError
from ..expressions import CompiledExpression, ExpressionError, compile_expression
from ..models.flows import FlowSettings
from ..models.schema import tag_values
from .names import OUTPUT_NAMES, is_offer_name, is_static_offer_name

if TYPE_CHECKING:
    from ..registry import ContextProvider, Registry
    from .steps import Step

PHASE_OF = {"inventory": 1, "filter": 1, "qualify": 1, "score": 2, "rank": 2, "response": 3}


def format_loc(loc: tuple[Any, ...], tags: frozenset[str]) -> str:
    """Turn a pydantic error location into ``nodes[3].config.rules[1].config.minScore``."""
    out = ""
    prev: Any = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(prev, int) and part in tags:
            pass  # the discriminator tag pydantic inserts after a list index
        else:
            out += f".{part}" if out else str(part)
        prev = part
    return out


def validation_issues(
    exc: ValidationError, tags: frozenset[str], prefix: str = ""
) -> list[FlowIssue]:
    """Every error of a pydantic ValidationError as a FlowIssue with a readable path."""
    issues = []
    for err in exc.errors(include_url=False):
        path = format_loc(tuple(err["loc"]), tags)
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        issues.append(FlowIssue(path, err["msg"]))
    return issues


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


@dataclass(frozen=True)
class CompiledFlow:
    """A validated, compiled flow: immutable and safe to share between threads."""

    key: str
    name: str
    document: BaseModel
    settings: FlowSettings
    steps: tuple[Step, ...]
    customer_names: frozenset[str]
    offer_names: frozenset[str]
    registry: Registry
    #: each context provider the flow needs, with the names wanted from it
    context_plan: tuple[tuple[ContextProvider, frozenset[str]], ...] = ()

    @property
    def uses_offer_history(self) -> bool:
        """Whether the flow reads per-offer customer history (recency rules, lastSeenDays)."""
        return "offer.lastSeenDays" in self.offer_names


def compile_flow(
    data: Mapping[str, Any],
    *,
    registry: Registry,
    functions: Mapping[str, Callable[..., Any]],
    flow_model: type[BaseModel],
    source: str | None = None,
) -> CompiledFlow:
    """Validate ``data`` and build a CompiledFlow; raise FlowValidationError with every issue."""
    from .steps import build_step  # steps import this module's types

    tags = tag_values(registry)
    try:
        doc = flow_model.model_validate(data)
    except ValidationError as exc:
        issues = validation_issues(exc, tags)
        # report what can still be checked on the raw document (node order, formula syntax)
        # so one run names as many problems as possible
        seen = {issue.path for issue in issues}
        issues += [i for i in raw_issues(data, functions) if i.path not in seen]
        raise FlowValidationError(issues, source=source) from None

    nodes = list(doc.nodes)  # type: ignore[attr-defined]
    issues = check_phases(nodes)
    profiles = dict(doc.profiles)  # type: ignore[attr-defined]
    computed: set[str] = set()
    referenced: set[str] = set()
    steps: list[Step] = []
    phase = 1
    for index, node in enumerate(nodes):
        path = f"nodes[{index}]"
        if node.type in PHASE_OF:
            phase = max(phase, PHASE_OF[node.type])
        elif node.type == "compute" and phase == 2:
            phase = 3
        compiler = ExpressionCompiler(registry, functions, frozenset(computed), phase == 3)
        try:
            step = build_step(node, path, compiler, registry, profiles, issues)
        except ExpressionError as exc:
            issues.append(FlowIssue(f"{path}.config", str(exc)))
            continue
        referenced |= compiler.referenced
        if step is not None:
            steps.append(step)
        if node.type == "compute":
            for field in node.config.fields:
                if field.name in computed or is_static_offer_name(field.name):
                    issues.append(
                        FlowIssue(f"{path}.config.fields", f"field {field.name!r} is defined twice")
                    )
                computed.add(field.name)
    if issues:
        raise FlowValidationError(issues, source=source)
    customer_names = frozenset(n for n in referenced if not is_offer_name(n))
    plan: dict[str, tuple[ContextProvider, set[str]]] = {}
    for name in sorted(customer_names):
        provider = registry.provider_for(name)
        if provider is not None:  # compile-time checks let no unknown name through
            plan.setdefault(provider.name, (provider, set()))[1].add(name)
    return CompiledFlow(
        key=doc.key,  # type: ignore[attr-defined]
        name=doc.name or doc.key,  # type: ignore[attr-defined]
        document=doc,
        settings=doc.settings,  # type: ignore[attr-defined]
        steps=tuple(steps),
        customer_names=customer_names,
        offer_names=frozenset(n for n in referenced if is_offer_name(n)),
        registry=registry,
        context_plan=tuple((p, frozenset(names)) for p, names in plan.values()),
    )


def raw_issues(
    data: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]]
) -> list[FlowIssue]:
    """Checks that need no valid structure: node order and formula syntax, on the raw document.

    Used only when the structure itself is invalid; unknown names are checked later, once the
    structure is valid (they depend on computed fields and plugins' names)."""
    nodes = data.get("nodes") if isinstance(data, Mapping) else None
    if not isinstance(nodes, list):
        return []
    issues: list[FlowIssue] = []
    shaped = [_raw_node(n) for n in nodes]
    if all(n is not None for n in shaped):
        issues += check_phases(shaped)
    for path, source in _raw_formulas(nodes):
        try:
            compile_expression(source, functions=functions)
        except ExpressionError as exc:
            issues.append(FlowIssue(path, str(exc)))
    return issues


def _raw_node(node: Any) -> SimpleNamespace | None:
    """A node with just what the order check reads, or None when it lacks a known type or id."""
    if not isinstance(node, Mapping):
        return None
    config = node.get("config") or {}
    kind, node_id = node.get("type"), node.get("id")
    known = kind in PHASE_OF or kind in ("compute", "extension_point")
    if not (known and isinstance(node_id, str) and isinstance(config, Mapping)):
        return None
    return SimpleNamespace(type=kind, id=node_id, config=SimpleNamespace(hook=config.get("hook")))


def _raw_formulas(nodes: list[Any]) -> list[tuple[str, str]]:
    """(path, source) of every formula string found where flows keep formulas."""
    found = []
    for i, node in enumerate(nodes):
        config = node.get("config") if isinstance(node, Mapping) else None
        if not isinstance(config, Mapping):
            continue
        base = f"nodes[{i}].config"
        if isinstance(config.get("expression"), str):
            found.append((f"{base}.expression", config["expression"]))
        for j, field in enumerate(config.get("fields") or []):
            if isinstance(field, Mapping) and isinstance(field.get("formula"), str):
                found.append((f"{base}.fields[{j}].formula", field["formula"]))
        formulas = config.get("formulas")
        if isinstance(formulas, Mapping):
            found += [
                (f"{base}.formulas.{k}", v) for k, v in formulas.items() if isinstance(v, str)
            ]
        for j, rule in enumerate(config.get("rules") or []):
            if not isinstance(rule, Mapping) or rule.get("ruleType") != "expression":
                continue
            cfg = rule.get("config")
            if isinstance(cfg, Mapping) and isinstance(cfg.get("expression"), str):
                found.append((f"{base}.rules[{j}].config.expression", cfg["expression"]))
    return found


def check_phases(nodes: list[Any]) -> list[FlowIssue]:
    """Exactly one inventory, first; nodes in phase order; one score before one rank."""
    issues: list[FlowIssue] = []
    seen_ids: dict[str, int] = {}
    counts: dict[str, int] = {}
    phase = 1
    for index, node in enumerate(nodes):
        where = f"nodes[{index}]"
        if node.id in seen_ids:
            issues.append(FlowIssue(f"{where}.id", f"node id {node.id!r} is used twice"))
        seen_ids[node.id] = index
        counts[node.type] = counts.get(node.type, 0) + 1
        if node.type == "inventory" and index != 0:
            issues.append(FlowIssue(where, f"node {node.id!r}: the inventory node must be first"))
        if index == 0 and node.type != "inventory":
            issues.append(FlowIssue(where, f"node {node.id!r}: a flow must start with inventory"))
        wanted = PHASE_OF.get(node.type)
        if node.type == "compute":
            wanted = 3 if phase >= 2 else 1
        if wanted is None:  # extension_point: any phase
            continue
        if wanted < phase:
            issues.append(
                FlowIssue(
                    where,
                    f"node {node.id!r} ({node.type}) belongs to phase {wanted} but comes after a "
                    f"phase {phase} node; order: inventory, filter/qualify/compute, score, rank, "
                    "compute/response",
                )
            )
        if node.type == "score" and counts.get("rank"):
            issues.append(FlowIssue(where, f"node {node.id!r}: score must come before rank"))
        if node.type == "rank" and not counts.get("score"):
            issues.append(FlowIssue(where, f"node {node.id!r}: rank needs a score node before it"))
        if node.type == "compute" and phase == 2 and not counts.get("rank"):
            issues.append(
                FlowIssue(where, f"node {node.id!r}: an output compute node must come after rank")
            )
        phase = max(phase, wanted)
    issues += _check_extension_points(nodes)
    for node_type in ("score", "rank"):
        if nodes and not counts.get(node_type):
            issues.append(FlowIssue("nodes", f"a flow needs a {node_type} node"))
    for node_type in ("inventory", "score", "rank", "response"):
        if counts.get(node_type, 0) > 1:
            issues.append(FlowIssue("nodes", f"at most one {node_type} node is allowed"))
    if nodes and not counts.get("inventory"):
        issues.append(FlowIssue("nodes", "a flow needs exactly one inventory node"))
    return issues


def _check_extension_points(nodes: list[Any]) -> list[FlowIssue]:
    issues = []
    types = [n.type for n in nodes]
    score_at = types.index("score") if "score" in types else None
    rank_at = types.index("rank") if "rank" in types else None
    for index, node in enumerate(nodes):
        if node.type != "extension_point":
            continue
        hook = node.config.hook
        where = f"nodes[{index}].config.hook"
        if hook == "pre_score" and score_at is not None and index > score_at:
            issues.append(FlowIssue(where, f"node {node.id!r}: pre_score must come before score"))
        if hook == "score_override" and (
            score_at is None or index < score_at or (rank_at is not None and index > rank_at)
        ):
            issues.append(
                FlowIssue(
                    where, f"node {node.id!r}: score_override must sit between score and rank"
                )
            )
        if hook == "post_rank" and (rank_at is None or index < rank_at):
            issues.append(FlowIssue(where, f"node {node.id!r}: post_rank must come after rank"))
    return issues
