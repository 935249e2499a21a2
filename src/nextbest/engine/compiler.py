"""Flow loading: validate a flow document, check phases and formulas, build runnable steps.

Everything that can be checked is checked here, so a bad flow fails when it is loaded (with
every problem named by its path) and never at decision time. The node types come from
:data:`~nextbest.engine.node_types.NODE_TYPES`; each builds its own step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import FlowIssue, FlowValidationError
from ..expressions import ExpressionError, compile_expression
from ..plugin_api import ContextProvider, Registry
from ..store.limits import document_problem
from .formulas import ExpressionCompiler
from .names import is_offer_name, is_static_offer_name
from .node_types import NODE_TYPES
from .nodes.base import OUTPUT, SELECTION, BuildContext, Step
from .plan import FlowPlan
from .schema import tag_values


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


@dataclass(frozen=True, kw_only=True)
class CompiledFlow(FlowPlan):
    """A validated, compiled flow: immutable and safe to share between threads."""

    document: BaseModel
    steps: tuple[Step, ...]


def compile_flow(
    data: Mapping[str, Any],
    *,
    registry: Registry,
    functions: Mapping[str, Callable[..., Any]],
    flow_model: type[BaseModel],
    source: str | None = None,
) -> CompiledFlow:
    """Validate ``data`` and build a CompiledFlow; raise FlowValidationError with every issue."""
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
    # what the store accepts, so a flow file that validates can also be saved; the typed fields
    # were checked above with their own paths, this catches the free-form ones (plugin configs)
    problem = document_problem(data)
    if problem is not None:
        raise FlowValidationError([FlowIssue("", f"the flow document {problem}")], source=source)

    nodes = list(doc.nodes)  # type: ignore[attr-defined]
    issues = check_phases(nodes)
    profiles = dict(doc.profiles)  # type: ignore[attr-defined]
    computed: set[str] = set()
    referenced: set[str] = set()
    steps: list[Step] = []
    phase = SELECTION
    for index, node in enumerate(nodes):
        path = f"nodes[{index}]"
        node_type = NODE_TYPES[node.type]
        phase = max(phase, node_type.phase_at(phase))
        compiler = ExpressionCompiler(registry, functions, frozenset(computed), phase == OUTPUT)
        ctx = BuildContext(path, compiler, registry, profiles, issues)
        try:
            step = node_type.build(node, ctx)
        except ExpressionError as exc:
            issues.append(FlowIssue(f"{path}.config", str(exc)))
            continue
        referenced |= compiler.referenced
        if step is not None:
            steps.append(step)
        for below, name in node_type.defines(node):
            if name in computed or is_static_offer_name(name):
                issues.append(FlowIssue(f"{path}{below}", f"field {name!r} is defined twice"))
            computed.add(name)
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
    if not (kind in NODE_TYPES and isinstance(node_id, str) and isinstance(config, Mapping)):
        return None
    return SimpleNamespace(type=kind, id=node_id, config=SimpleNamespace(hook=config.get("hook")))


def _raw_formulas(nodes: list[Any]) -> list[tuple[str, str]]:
    """(path, source) of every formula string found where node types keep formulas."""
    found = []
    for i, node in enumerate(nodes):
        if not isinstance(node, Mapping) or node.get("type") not in NODE_TYPES:
            continue
        config = node.get("config")
        if not isinstance(config, Mapping):
            continue
        node_type = NODE_TYPES[node["type"]]
        found += [(f"nodes[{i}].config.{sub}", src) for sub, src in node_type.raw_formulas(config)]
    return found


def check_phases(nodes: list[Any]) -> list[FlowIssue]:
    """The first node type first; nodes in phase order; each node type's own placement rules;
    unique and required node types."""
    issues: list[FlowIssue] = []
    seen_ids: dict[str, int] = {}
    counts: dict[str, int] = {}
    types = [node.type for node in nodes]
    first = next(t.name for t in NODE_TYPES.values() if t.first)
    phase = SELECTION
    for index, node in enumerate(nodes):
        where = f"nodes[{index}]"
        node_type = NODE_TYPES[node.type]
        if node.id in seen_ids:
            issues.append(FlowIssue(f"{where}.id", f"node id {node.id!r} is used twice"))
        seen_ids[node.id] = index
        counts[node.type] = counts.get(node.type, 0) + 1
        if node_type.first and index != 0:
            issues.append(FlowIssue(where, f"node {node.id!r}: the {first} node must be first"))
        if index == 0 and not node_type.first:
            issues.append(FlowIssue(where, f"node {node.id!r}: a flow must start with {first}"))
        wanted = node_type.phase_at(phase)
        if wanted < phase:
            issues.append(
                FlowIssue(
                    where,
                    f"node {node.id!r} ({node.type}) belongs to phase {wanted} but comes after a "
                    f"phase {phase} node; order: inventory, filter/qualify/compute, score, rank, "
                    "compute/response",
                )
            )
        for below, message in node_type.placement(types, index, node):
            issues.append(FlowIssue(f"{where}{below}", f"node {node.id!r}: {message}"))
        phase = max(phase, wanted)
    for node_type in NODE_TYPES.values():
        missing = nodes and not counts.get(node_type.name)
        if missing and node_type.required and not node_type.first:
            issues.append(FlowIssue("nodes", f"a flow needs a {node_type.name} node"))
    for node_type in NODE_TYPES.values():
        if node_type.unique and counts.get(node_type.name, 0) > 1:
            issues.append(FlowIssue("nodes", f"at most one {node_type.name} node is allowed"))
    if nodes and not counts.get(first):
        issues.append(FlowIssue("nodes", f"a flow needs exactly one {first} node"))
    return issues
