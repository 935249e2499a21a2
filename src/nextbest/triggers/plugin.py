"""The host's built-in ``triggers`` plugin (entry point ``triggers``): hands context changes
to the host's trigger engine and tells providers which names the active triggers watch."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from ..hookspecs import hookimpl
from ..host import Host
from ..plugin_api import ContextChange, HostAPI
from ..store import Interaction
from .engine import ENGINE_KEY, TriggerEngine

__all__ = [
    "context_changing",
    "customer_context_changed",
    "engine_for",
    "interactions_changed",
    "interactions_imported",
    "outcome_recorded",
    "watched_context_names",
]


def engine_for(host: HostAPI) -> TriggerEngine | None:
    """The trigger engine of ``host`` (created on first use); None without a store."""
    store = host.store
    if store is None or not isinstance(host, Host):
        return None
    return host.plugin_state(ENGINE_KEY, lambda: TriggerEngine(host, store))


@hookimpl
def context_changing(host: HostAPI, tenant_id: str, change: ContextChange) -> Iterable[str]:
    engine = engine_for(host)
    return () if engine is None else engine.previous_wanted(tenant_id, change)


@hookimpl
def customer_context_changed(host: HostAPI, tenant_id: str, change: ContextChange) -> None:
    engine = engine_for(host)
    if engine is not None:
        engine.context_changed(tenant_id, change)


@hookimpl
def watched_context_names(host: HostAPI, tenant_id: str) -> Iterable[str] | None:
    engine = engine_for(host)
    return None if engine is None else engine.watched_names(tenant_id)


# The host's own names (metrics.*) change with every recorded interaction: evaluate the
# triggers that read them (plugins announce their own names through context_changed).
@hookimpl
def outcome_recorded(host: HostAPI, tenant_id: str, interaction: Interaction) -> None:
    engine = engine_for(host)
    if engine is not None:
        engine.interactions_recorded(tenant_id, [interaction.customer_id], time.time())


@hookimpl
def interactions_changed(
    host: HostAPI, tenant_id: str, removed: Sequence[Interaction], added: Sequence[Interaction]
) -> None:
    engine = engine_for(host)
    if engine is not None:
        customers = sorted({i.customer_id for i in (*removed, *added)})
        engine.interactions_recorded(tenant_id, customers, time.time())


@hookimpl
def interactions_imported(host: HostAPI, tenant_id: str, customer_ids: frozenset[str]) -> None:
    engine = engine_for(host)
    if engine is not None:
        engine.interactions_recorded(tenant_id, sorted(customer_ids), time.time())
