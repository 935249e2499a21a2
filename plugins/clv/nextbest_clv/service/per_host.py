"""The CLV service of a host: one :class:`~nextbest_clv.service.facade.ClvService` per Host,
kept in the host's plugin state, so the decision context, the API routes, the scheduler and the
``outcome_recorded`` hook of one host share its caches. Hooks and providers receive the host,
so nothing needs a process-wide registry to find it."""

from __future__ import annotations

from nextbest import HostAPI
from nextbest_clv.errors import NoStoreError
from nextbest_clv.service.facade import ClvService

__all__ = ["SERVICE_KEY", "attach", "service_for"]

#: The key of the service in ``host.plugin_state``.
SERVICE_KEY = "clv.service"


def attach(host: HostAPI) -> ClvService | None:
    """The service of ``host`` (created on first use); None when the host has no store."""
    store = host.store
    if store is None:
        return None
    return host.plugin_state(SERVICE_KEY, lambda: ClvService(store))


def service_for(host: HostAPI) -> ClvService:
    """The service of ``host``.

    Raises:
        NoStoreError: the host was created without a store.
    """
    service = attach(host)
    if service is None:
        raise NoStoreError(
            "this host has no store: create it with Host(store=open_store(url)) so CLV "
            "records can be computed from recorded interactions"
        )
    return service
