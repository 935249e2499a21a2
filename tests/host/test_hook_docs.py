"""docs/plugin-hooks.md documents every hook in hookspecs.py, and its examples run."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from nextbest import hookspecs

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugin-hooks.md"
TEXT = DOC.read_text(encoding="utf-8")
SECTION = re.compile(r"^## (\w+)\n(.*?)(?=^## |\Z)", re.MULTILINE | re.DOTALL)
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def hook_names() -> list[str]:
    """Every function pluggy would take as a hookspec from the module."""
    return sorted(
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "nextbest_spec")
    )


SECTIONS = {m.group(1): m.group(2) for m in SECTION.finditer(TEXT)}
HOOKS = hook_names()


def test_hookspecs_are_found() -> None:
    import pluggy

    pm = pluggy.PluginManager("nextbest")
    pm.add_hookspecs(hookspecs)
    assert sorted(h for h in dir(pm.hook) if not h.startswith("_")) == HOOKS
    assert "register_rule_types" in HOOKS and "post_rank" in HOOKS


def test_every_hook_has_a_section() -> None:
    missing = [name for name in HOOKS if name not in SECTIONS]
    assert missing == [], f"docs/plugin-hooks.md has no '## <hook>' section for {missing}"


def test_no_section_for_a_hook_that_does_not_exist() -> None:
    hookish = {name for name in SECTIONS if "_" in name or name == "startup"}
    assert hookish <= set(HOOKS), hookish - set(HOOKS)


@pytest.mark.parametrize("name", HOOKS)
def test_section_shows_full_signature(name: str) -> None:
    body = SECTIONS.get(name, "")
    signature = re.search(rf"^{name}\((.*)\)", body, re.MULTILINE)
    assert signature, f"section {name} lacks a '{name}(...)' signature line"
    documented = re.findall(r"(\w+):", signature.group(1))
    assert documented == list(inspect.signature(getattr(hookspecs, name)).parameters)


def setup_code() -> str:
    intro = TEXT[: TEXT.index("\n## register_")]
    blocks = PYTHON_BLOCK.findall(intro)
    assert len(blocks) == 1, "the introduction has exactly one (shared setup) python block"
    return blocks[0]


@pytest.mark.parametrize("name", HOOKS)
def test_section_example_runs(name: str) -> None:
    blocks = PYTHON_BLOCK.findall(SECTIONS.get(name, ""))
    assert blocks, f"section {name} has no python example"
    namespace: dict[str, object] = {"__name__": f"plugin_hooks_doc_{name}"}
    source = setup_code() + "\n" + "\n".join(blocks)
    exec(compile(source, f"{DOC.name}#{name}", "exec"), namespace)
