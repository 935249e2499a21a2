"""Plugin loading: entry points of group ``nextbest``, allow and block lists, checks.

Built-in features are plugins too, registered through the same entry-point path as third-party
ones (see pyproject.toml). Environment variables:

- ``NEXTBEST_PLUGINS=a,b``: of the installed (external) plugins, load only these; an empty
  string loads none. The host's own built-in plugin (entry points whose module is part of the
  ``nextbest`` package) loads either way.
- ``NEXTBEST_DISABLE_PLUGINS=a,b``: never load these, built-in ones included.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError

ENTRY_POINT_GROUP = "nextbest"


@dataclass(frozen=True)
class PluginInfo:
    """One loaded plugin: its name, its distribution's version and the hooks it implements."""

    name: str
    version: str | None
    hooks: tuple[str, ...]
    module: str


def _env_list(name: str) -> set[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def make_plugin_manager(
    *,
    load_entry_points: bool = True,
    plugins: Iterable[object] = (),
) -> pluggy.PluginManager:
    """Create the plugin manager, load entry points (honouring the allow and block lists),
    register ``plugins`` (objects or modules) and check every hook implementation against the
    specs, so a misspelled hook fails here with the plugin's name."""
    pm = pluggy.PluginManager("nextbest")
    pm.add_hookspecs(hookspecs)
    if load_entry_points:
        allow = _env_list("NEXTBEST_PLUGINS")
        block = _env_list("NEXTBEST_DISABLE_PLUGINS") or set()
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            external = not is_builtin_entry_point(ep)
            if (external and allow is not None and ep.name not in allow) or ep.name in block:
                continue
            if pm.get_plugin(ep.name) is not None:
                continue
            try:
                obj = ep.load()
            except Exception as exc:  # the message must name the plugin that failed
                raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
            register_plugin(pm, obj, name=ep.name, dist=ep.dist)
    for obj in plugins:
        register_plugin(pm, obj)
    check_hooks(pm)
    return pm


def is_builtin_entry_point(ep: metadata.EntryPoint) -> bool:
    """Whether an entry point is the host's own (its module lives in the ``nextbest`` package)."""
    return ep.value.split(":")[0].startswith(f"{__package__}.")


def register_plugin(
    pm: pluggy.PluginManager, plugin: object, *, name: str | None = None, dist: Any = None
) -> str:
    """Register one plugin object or module; a class instead of an instance is a clear error."""
    if inspect.isclass(plugin):
        raise PluginError(
            f"{plugin.__module__}.{plugin.__qualname__} is a class; register an instance "
            f"instead: {plugin.__qualname__}()"
        )
    plugin_name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
    if pm.get_plugin(plugin_name) is not None:
        raise PluginError(f"a plugin named {plugin_name!r} is already registered")
    try:
        registered = pm.register(plugin, name=plugin_name)
    except pluggy.PluginValidationError as exc:  # e.g. a hook argument the spec does not have
        raise PluginError(
            f"plugin {plugin_name!r} has an invalid hook implementation: {exc}"
        ) from exc
    if registered is None:
        raise PluginError(f"plugin {plugin_name!r} is blocked or already registered")
    if dist is not None:
        pm._nextbest_dists = {**getattr(pm, "_nextbest_dists", {}), plugin_name: dist}  # type: ignore[attr-defined]
    return registered


def check_hooks(pm: pluggy.PluginManager) -> None:
    """Fail with the plugin's name when it implements a hook that does not exist."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) if exc.plugin is not None else "?"
        raise PluginError(
            f"plugin {name!r} implements an unknown hook: {exc}. "
            f"Known hooks: {', '.join(sorted(h for h in dir(pm.hook) if not h.startswith('_')))}"
        ) from exc


def list_plugins(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Every loaded plugin with its version and the hooks it implements, sorted by name."""
    dists = getattr(pm, "_nextbest_dists", {})
    hooks_by_plugin: dict[str, list[str]] = {}
    for hook_name in dir(pm.hook):
        if hook_name.startswith("_"):
            continue
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            hooks_by_plugin.setdefault(impl.plugin_name, []).append(hook_name)
    out = []
    for name, plugin in pm.list_name_plugin():
        dist = dists.get(name)
        version = dist.version if dist is not None else _module_version(plugin)
        module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__module__
        out.append(PluginInfo(name, version, tuple(sorted(hooks_by_plugin.get(name, []))), module))
    return sorted(out, key=lambda p: p.name)


def _module_version(plugin: object) -> str | None:
    version = getattr(plugin, "__version__", None)
    return str(version) if version is not None else None
