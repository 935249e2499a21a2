"""The adaptive plugin's boundaries: only the host's public modules; a pure numeric core
(numpy, scipy, pydantic, the standard library); the service imports no edge; the host never
mentions the plugin."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "plugins" / "adaptive" / "nextbest_adaptive"
PUBLIC_HOST_MODULES = {"nextbest", "nextbest.store", "nextbest.api"}
EDGES = ("nextbest_adaptive.plugin", "nextbest_adaptive.cli")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PLUGIN.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PLUGIN.rglob("*.py"))}


def imports(path: Path) -> set[str]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                found.add(".".join([*base, node.module] if node.module else base))
            else:
                found.add(node.module or "")
    return found


def within(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_only_public_host_modules() -> None:
    bad = {
        f"{name}: {m}"
        for name, path in MODULES.items()
        for m in imports(path)
        if within(m, "nextbest") and m not in PUBLIC_HOST_MODULES
    }
    assert bad == set()


def test_the_core_is_pure() -> None:
    allowed = {"numpy", "scipy", "pydantic"}
    bad = {
        f"{name}: {m}"
        for name, path in MODULES.items()
        if within(name, "nextbest_adaptive.core")
        for m in imports(path)
        if not (
            m.split(".")[0] in sys.stdlib_module_names
            or m.split(".")[0] in allowed
            or within(m, "nextbest_adaptive.core")
        )
    }
    assert bad == set()


def test_the_service_imports_no_edge() -> None:
    bad = {
        f"{name}: {m}"
        for name, path in MODULES.items()
        if within(name, "nextbest_adaptive.service", "nextbest_adaptive.core")
        for m in imports(path)
        if within(m, *EDGES)
    }
    assert bad == set()


def test_every_module_has_a_layer() -> None:
    layers = ("nextbest_adaptive.core", "nextbest_adaptive.service", *EDGES)
    assert [n for n in MODULES if n != "nextbest_adaptive" and not within(n, *layers)] == []


def test_the_host_never_mentions_the_plugin() -> None:
    hits = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "src" / "nextbest").rglob("*"))
        if path.suffix in {".py", ".sql"}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if re.search(r"nextbest_adaptive|thompson", line, re.IGNORECASE)
    ]
    assert hits == []
