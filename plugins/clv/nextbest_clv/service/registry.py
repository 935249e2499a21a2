"""One :class:`~nextbest_clv.service.facade.ClvService` per store, process-wide, so the
decision context, the API and the scheduler share its caches; the ``outcome_recorded`` hook
invalidates every live service (it does not say which store recorded the outcome)."""

from __future__ import annotations

import threading
from typing import Any
from weakref import WeakKeyDictionary

from nextbest.store import Store
from nextbest_clv.errors import NoStoreError
from nextbest_clv.service.facade import ClvService

__all__ = ["all_services", "attach", "service_for", "service_for_store"]

_services: WeakKeyDictionary[Any, ClvService] = WeakKeyDictionary()
_services_lock = threading.Lock()


def service_for_store(store: Store) -> ClvService:
    """The process-wide service of ``store`` (one per store, so caches are shared by the
    decision context, the API and the scheduler)."""
    with _services_lock:
        service = _services.get(store)
        if service is None:
            service = _services[store] = ClvService(store)
        return service


def attach(host: Any) -> ClvService | None:
    """The service of a host's store; None when the host has no store."""
    store = getattr(host, "store", None)
    return None if store is None else service_for_store(store)


def service_for(host: Any) -> ClvService:
    """The service of ``host``'s store.

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


def all_services() -> list[ClvService]:
    """Every live service (the outcome hook does not say which store recorded the outcome)."""
    with _services_lock:
        return list(_services.values())
