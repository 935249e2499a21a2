"""The import graph of the host and the first-party plugins: no cycles, a host in layers and an
engine that reads in one direction (docs/architecture.md).

Every import statement counts: at module level, inside ``if TYPE_CHECKING:`` and inside
functions. A lazy or type-only import that closes a circle is still a circle for the reader.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Folders holding top-level packages: the host and every first-party plugin.
SOURCE_ROOTS = (ROOT / "src", *sorted(p for p in (ROOT / "plugins").iterdir() if p.is_dir()))

#: The host's modules and packages from the bottom up: each imports only from its own layer or
#: the layers below. Keep docs/architecture.md in step.
HOST_LAYERS: tuple[tuple[str, ...], ...] = (
    ("experiments",),  # pure: the store validates settings and aggregates with its types
    (
        "errors",
        "version",
        "documents",
        "expressions",
        "models",
        "store",
        "hookcalls",
        "report_blocks",
    ),
    ("plugin_api",),
    ("engine",),
    ("hookspecs", "plugins", "registration", "builtin"),
    ("host",),
    ("service", "ingest", "notebook", "outbox", "policies", "profiles"),
    ("triggers",),
    ("ui",),
    ("api",),
    ("commands", "cli"),
    ("",),  # the package itself: the public API
)

#: The engine's modules from the bottom up: each may import only modules of earlier entries
#: (so the node executors never import each other). Keep docs/architecture.md in step.
ENGINE_LAYERS: tuple[tuple[str, ...], ...] = (
    ("names",),
    ("catalog",),
    ("plan",),
    ("state",),
    ("formulas",),
    ("policies",),
    ("nodes", "nodes.base"),
    (
        "nodes.inventory",
        "nodes.filter",
        "nodes.qualify",
        "nodes.compute",
        "nodes.score",
        "nodes.rank",
        "nodes.response",
        "nodes.extension",
    ),
    ("node_types",),
    ("schema",),
    ("compiler",),
    ("runner",),
    ("",),  # the package itself (nextbest.engine)
)


def modules_under(roots: Iterable[Path]) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package) for every .py file below ``roots``."""
    found: dict[str, tuple[Path, bool]] = {}
    for root in roots:
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            if parts and all(part.isidentifier() for part in parts):
                found[".".join(parts)] = (path, is_package)
    return found


def import_graph(modules: Mapping[str, tuple[Path, bool]]) -> dict[str, set[str]]:
    """Module -> the modules among ``modules`` it imports (``from pkg import sub`` counts as an
    import of ``pkg.sub`` when that is a module, else of ``pkg``)."""
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names if alias.name in modules)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in modules:
                        edges.add(sub)
                    elif target in modules:
                        edges.add(target)
        edges.discard(name)
        graph[name] = edges
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def describe(component: list[str], graph: Mapping[str, set[str]]) -> str:
    members = set(component)
    return "; ".join(f"{m} -> {', '.join(sorted(graph[m] & members))}" for m in component)


def test_no_import_cycles_in_the_host_and_plugins() -> None:
    graph = import_graph(modules_under(SOURCE_ROOTS))
    assert "nextbest.engine.compiler" in graph and "nextbest_clv.plugin" in graph
    assert [describe(c, graph) for c in cycles(graph)] == []


def test_no_cycles_between_the_hosts_packages() -> None:
    """Seen from above, the host is layered too: grouping each subpackage of ``nextbest`` into
    one node (``nextbest.engine``, ``nextbest.store``, ...) leaves no cycle."""
    graph = import_graph(modules_under([ROOT / "src"]))

    def group(module: str) -> str:
        parts = module.split(".")
        return ".".join(parts[:2])

    grouped: dict[str, set[str]] = {}
    for module, targets in graph.items():
        grouped.setdefault(group(module), set()).update(
            group(t) for t in targets if group(t) != group(module)
        )
    assert {"nextbest.engine", "nextbest.store", "nextbest.api"} <= set(grouped)
    assert [describe(c, grouped) for c in cycles(grouped)] == []


def test_the_host_is_layered() -> None:
    """A host module imports only from its own layer of HOST_LAYERS or the layers below."""
    modules = modules_under([ROOT / "src"])
    layer_of = {
        f"nextbest.{name}" if name else "nextbest": level
        for level, names in enumerate(HOST_LAYERS)
        for name in names
    }

    def layer(module: str) -> int:
        return layer_of[".".join(module.split(".")[:2])]

    unplaced = {".".join(m.split(".")[:2]) for m in modules} - set(layer_of)
    assert unplaced == set(), "add new host modules to HOST_LAYERS"
    graph = import_graph(modules)
    upward = [
        f"{module} imports {target}"
        for module in sorted(graph)
        for target in sorted(graph[module])
        if layer(target) > layer(module)
    ]
    assert upward == []


def test_the_cycle_check_finds_cycles_of_every_kind(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import B\n")
    (pkg / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.c\n"
    )
    (pkg / "c.py").write_text("def f():\n    from pkg import a\n")
    (pkg / "d.py").write_text("from . import a\n")  # imports the knot, is not part of it
    graph = import_graph(modules_under([tmp_path]))
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_the_engine_reads_in_one_direction() -> None:
    """A module of the engine imports only modules of the layers below its own."""
    modules = modules_under([ROOT / "src"])
    prefix = "nextbest.engine"
    layer_of = {
        f"{prefix}.{name}" if name else prefix: level
        for level, names in enumerate(ENGINE_LAYERS)
        for name in names
    }
    engine = {m for m in modules if m == prefix or m.startswith(prefix + ".")}
    assert engine == set(layer_of), "add new engine modules to ENGINE_LAYERS"
    graph = import_graph(modules)
    upward = [
        f"{module} imports {target}"
        for module in sorted(engine)
        for target in sorted(graph[module] & engine)
        if layer_of[target] >= layer_of[module]
    ]
    assert upward == []
