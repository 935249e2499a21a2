"""The layering rules of docs/architecture.md, checked on the source.

- The host (src/nextbest) never imports the CLV plugin and never mentions CLV.
- The CLV plugin imports only the host's public modules: ``nextbest`` (the package's exports),
  ``nextbest.store`` (the store protocol) and ``nextbest.api`` (auth and errors for routes).
- The plugin's layers, from the bottom: the numeric core (``nextbest_clv.core``), the
  tenant-level service (``nextbest_clv.service``), back-testing (``nextbest_clv.backtest``) and
  the edges (``plugin``, ``api``, ``cli``, ``scheduler``, ``decisions``, ``notebook``,
  ``report_pages``);
  ``nextbest_clv.errors`` is shared and ``nextbest_clv.datasets`` (reference data read from
  files) stands alone. The core imports nothing from the host and nothing of the plugin outside
  the core (so does the pure back-test evaluation, ``nextbest_clv.backtest.evaluate``), uses
  only numpy, scipy and pydantic besides the standard library, and reads no files; the service
  imports no edge and no back-test module; the back-tests import no edge.

Every import statement counts (module level, under ``if TYPE_CHECKING:``, inside functions);
relative imports are resolved, and ``from package import module`` names the module.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = ROOT / "src" / "nextbest"
PLUGIN = ROOT / "plugins" / "clv" / "nextbest_clv"
PUBLIC_HOST_MODULES = {"nextbest", "nextbest.store", "nextbest.api"}

CORE = "nextbest_clv.core"
SERVICE = "nextbest_clv.service"
BACKTEST = "nextbest_clv.backtest"
PURE_EVALUATION = "nextbest_clv.backtest.evaluate"
EDGES = (
    "nextbest_clv.plugin",
    "nextbest_clv.api",
    "nextbest_clv.cli",
    "nextbest_clv.scheduler",
    "nextbest_clv.decisions",
    "nextbest_clv.notebook",
    "nextbest_clv.report_pages",
    "nextbest_clv.report_history",
)
SHARED = ("nextbest_clv", "nextbest_clv.errors")
#: Reference data sets (file readers): import nothing of the host or the rest of the plugin.
DATASETS = "nextbest_clv.datasets"
#: What the numeric core may use besides the standard library and itself.
CORE_THIRD_PARTY = {"numpy", "scipy", "pydantic"}


def module_name(path: Path) -> str:
    """The dotted name of a plugin source file (a package by its ``__init__.py``)."""
    parts = list(path.relative_to(PLUGIN.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


PLUGIN_MODULES = {module_name(path): path for path in sorted(PLUGIN.rglob("*.py"))}


def within(module: str, *packages: str) -> bool:
    """Whether ``module`` is one of ``packages`` or inside one of them."""
    return any(module == p or module.startswith(p + ".") for p in packages)


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement of the plugin file ``path`` names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(
                f"{module}.{alias.name}"
                for alias in node.names
                if f"{module}.{alias.name}" in PLUGIN_MODULES
            )
    return found


def offenders(layer: tuple[str, ...], forbidden: Callable[[str], bool]) -> set[str]:
    """``file: module`` for each import by a module of ``layer`` that ``forbidden`` rejects."""
    return {
        f"{path.relative_to(ROOT)}: {module}"
        for name, path in PLUGIN_MODULES.items()
        if within(name, *layer)
        for module in imported_modules(path)
        if forbidden(module)
    }


def outside_core(module: str) -> bool:
    """A module of the host, or of the plugin outside the numeric core."""
    return within(module, "nextbest", "nextbest_clv") and not within(module, CORE)


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


def test_every_plugin_module_has_a_layer() -> None:
    unplaced = [
        name
        for name in PLUGIN_MODULES
        if name not in SHARED and not within(name, CORE, SERVICE, BACKTEST, DATASETS, *EDGES)
    ]
    assert unplaced == []


def test_numeric_core_is_pure() -> None:
    # numpy, scipy, pydantic and the core itself; nothing of the host or the rest of the plugin
    assert any(within(name, CORE) for name in PLUGIN_MODULES)
    assert offenders((CORE,), outside_core) == set()


def test_numeric_core_uses_only_numpy_scipy_and_pydantic() -> None:
    def foreign(module: str) -> bool:
        top = module.split(".")[0]
        return not (
            top in sys.stdlib_module_names or top in CORE_THIRD_PARTY or within(module, CORE)
        )

    assert offenders((CORE,), foreign) == set()


def test_numeric_core_does_no_file_io() -> None:
    # data sets are read by nextbest_clv.datasets; the core takes arrays
    io = re.compile(r"\bopen\(|\.read_text\(|\.read_bytes\(|np\.loadtxt|np\.genfromtxt|np\.load\(")
    hits = [
        f"{path.relative_to(ROOT)}:{number}"
        for name, path in PLUGIN_MODULES.items()
        if within(name, CORE)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if io.search(line)
    ]
    assert hits == []


def test_datasets_import_nothing_of_the_host_or_the_plugin() -> None:
    assert DATASETS in PLUGIN_MODULES
    assert offenders((DATASETS,), lambda m: within(m, "nextbest", "nextbest_clv")) == set()


def test_backtest_evaluation_is_pure() -> None:
    assert PURE_EVALUATION in PLUGIN_MODULES
    assert offenders((PURE_EVALUATION,), outside_core) == set()


def test_service_imports_no_edge_and_no_backtest() -> None:
    assert offenders((SERVICE,), lambda module: within(module, *EDGES, BACKTEST)) == set()


def test_backtest_imports_no_edge() -> None:
    assert offenders((BACKTEST,), lambda module: within(module, *EDGES)) == set()
