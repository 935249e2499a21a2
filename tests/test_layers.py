"""The layering rules of docs/architecture.md, checked on the source.

- The host (src/nextbest) never imports the CLV plugin and never mentions CLV.
- The CLV plugin imports only the host's public modules: ``nextbest`` (the package's exports),
  ``nextbest.store`` (the store protocol) and ``nextbest.api`` (auth and errors for routes).
- The numeric core (``nextbest_clv.core``) imports nothing from the host.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = ROOT / "src" / "nextbest"
PLUGIN = ROOT / "plugins" / "clv" / "nextbest_clv"
PUBLIC_HOST_MODULES = {"nextbest", "nextbest.store", "nextbest.api"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_host_never_mentions_clv() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted(HOST.rglob("*"))
        if path.suffix in {".py", ".sql"}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if re.search(r"clv|lifetime.value", line, re.IGNORECASE)
    ]
    assert offenders == []


def test_plugin_uses_only_public_host_modules() -> None:
    offenders = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in PLUGIN.rglob("*.py")
        for module in imported_modules(path)
        if (module == "nextbest" or module.startswith("nextbest."))
        and module not in PUBLIC_HOST_MODULES
    }
    assert offenders == set()


def test_numeric_cores_are_pure() -> None:
    pure = sorted((PLUGIN / "core").rglob("*.py"))
    offenders = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in pure
        for module in imported_modules(path)
        if module == "nextbest" or module.startswith("nextbest.")
    }
    assert offenders == set()
