"""Calling hook implementations one at a time, so the host can attribute each failure to its
plugin (pluggy's own ``pm.hook.x()`` calls them all and stops at the first error)."""

from __future__ import annotations

from typing import Any

import pluggy


def call_impl(impl: pluggy.HookImpl, **kwargs: Any) -> Any:
    """Call one hook implementation with just the arguments it declares (as pluggy does), so
    the host can run implementations one at a time and attribute failures to their plugin."""
    return impl.function(*[kwargs[name] for name in impl.argnames])


def implementations(pm: pluggy.PluginManager, hook: str) -> list[pluggy.HookImpl]:
    """A hook's implementations in plugin loading order.

    ``get_hookimpls()`` lists them oldest first (pluggy *calls* them newest first), with
    ``tryfirst``/``trylast`` implementations moved to the end/start of that list.
    """
    return list(getattr(pm.hook, hook).get_hookimpls())
