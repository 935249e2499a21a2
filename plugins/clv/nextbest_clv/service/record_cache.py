"""The in-process cache of CLV records: TTL caches per tenant, single flight, invalidation.

- One :class:`cachetools.TTLCache` per tenant (keys ``(tenant_id, customer_id)``, TTL = the
  tenant's ``cacheTtlSeconds``), always used under the service's one lock; an entry holds the
  customer's records per requested time (:data:`When`), each served for at most the TTL after it
  was cached; beside the "now" record, the latest few explicit-asOf records are kept.
- Single flight: concurrent first reads of one customer and time compute once; the others wait
  for that result (served as ``cached``).
- :meth:`RecordCache.invalidate` drops the customer's cached records and detaches the flights
  in progress for them: a read that starts after the invalidation never joins a compute that
  started before it (and may have read the old summary); such a compute's result is returned to
  the reads that had already joined it, but not cached.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from cachetools import TTLCache

from nextbest_clv.service.records import Source, epoch_us
from nextbest_clv.service.settings import ClvSettings

__all__ = ["CustomerKey", "RecordCache", "When", "when_key"]

#: A requested time in cache and flight keys: None for "now", else whole epoch microseconds.
When = int | None
#: ``(tenant_id, customer_id)``.
CustomerKey = tuple[str, str]
_CACHE_SIZE = 100_000
#: Explicit-asOf records cached per customer (beside the "now" record).
_AS_OF_PER_CUSTOMER = 8


def when_key(as_of: float | None) -> When:
    """The cache and flight key of a requested time (None: now)."""
    return None if as_of is None else epoch_us(as_of)


@dataclass(slots=True)
class _Flight:
    future: Future[dict[str, Any]] = field(default_factory=Future)
    stale: bool = False


#: A cache entry: requested time -> (time cached, document).
_Entry = dict[When, tuple[float, dict[str, Any]]]


class RecordCache:
    """Cached records and computes in flight of every tenant of one service. Thread-safe.

    Args:
        clock: epoch seconds now; the TTL caches use it too.
        lock: the service's lock (shared with the settings and the snapshots).
    """

    def __init__(self, clock: Callable[[], float], lock: threading.Lock) -> None:
        self.clock = clock
        self._lock = lock
        self._caches: dict[str, TTLCache[CustomerKey, _Entry]] = {}
        # The current generation of flights per customer: invalidate() detaches the whole map
        # entry, so reads that start afterwards start new flights.
        self._flights: dict[CustomerKey, dict[When, _Flight]] = {}

    def get_or_compute(
        self,
        key: CustomerKey,
        when: When,
        settings: ClvSettings,
        compute: Callable[[], tuple[dict[str, Any], Source]],
    ) -> tuple[dict[str, Any], Source]:
        """The cached record (``cached``); else the result of the compute in flight for the
        same customer and time (``cached``); else ``compute()``'s document and source, cached
        unless invalidated meanwhile. An exception of ``compute`` reaches every joined read."""
        with self._lock:
            hit = self._cached(key, when, settings)
            if hit is not None:
                return hit, "cached"
            flights = self._flights.setdefault(key, {})
            flight = flights.get(when)
            leader = flight is None
            if flight is None:
                flight = flights[when] = _Flight()
        if not leader:
            return flight.future.result(), "cached"
        try:
            document, source = compute()
        except BaseException as exc:
            self._fail(key, when, flight, exc)
            raise
        self._finish(key, when, flight, document, settings)
        return document, source

    def recompute(
        self,
        key: CustomerKey,
        when: When,
        settings: ClvSettings,
        compute: Callable[[], dict[str, Any]],
    ) -> dict[str, Any]:
        """``compute()``'s document, cached: a new flight that replaces (and marks stale) the
        one in progress for the same customer and time, if any."""
        flight = _Flight()
        with self._lock:
            flights = self._flights.setdefault(key, {})
            previous = flights.get(when)
            if previous is not None:
                previous.stale = True
            flights[when] = flight
        try:
            document = compute()
        except BaseException as exc:
            self._fail(key, when, flight, exc)
            raise
        self._finish(key, when, flight, document, settings)
        return document

    def invalidate(self, tenant_id: str, customer_id: str) -> None:
        """Forget the customer's cached records and detach the computes in progress for them
        (a later read starts its own)."""
        key = (tenant_id, customer_id)
        with self._lock:
            cache = self._caches.get(tenant_id)
            if cache is not None:
                cache.pop(key, None)
            for flight in self._flights.pop(key, {}).values():
                flight.stale = True  # it may have read the old summary: do not cache it

    def invalidate_tenant(self, tenant_id: str) -> None:
        """Forget every cached record of the tenant and detach its computes in progress."""
        with self._lock:
            self._caches.pop(tenant_id, None)
            for key in [k for k in self._flights if k[0] == tenant_id]:
                for flight in self._flights.pop(key).values():
                    flight.stale = True

    def settings_changed_locked(
        self, tenant_id: str, settings: ClvSettings, model_changed: bool
    ) -> None:
        """Drop the tenant's cache when its model settings or its TTL changed. Call with the
        lock held."""
        cache = self._caches.get(tenant_id)
        if cache is not None and (model_changed or cache.ttl != settings.cache_ttl_seconds):
            del self._caches[tenant_id]

    def _cache(self, tenant_id: str, ttl: float) -> TTLCache[CustomerKey, _Entry]:
        # Called with self._lock held.
        cache = self._caches.get(tenant_id)
        if cache is None:
            cache = TTLCache(maxsize=_CACHE_SIZE, ttl=ttl, timer=self.clock)
            self._caches[tenant_id] = cache
        return cache

    def _cached(self, key: CustomerKey, when: When, settings: ClvSettings) -> dict[str, Any] | None:
        # Called with self._lock held.
        entry = self._cache(key[0], settings.cache_ttl_seconds).get(key)
        if entry is None or when not in entry:
            return None
        cached_at, document = entry[when]
        if self.clock() - cached_at >= settings.cache_ttl_seconds:
            return None
        return document

    def _remember(
        self, key: CustomerKey, when: When, document: dict[str, Any], settings: ClvSettings
    ) -> None:
        # Called with self._lock held. Entries are replaced, never mutated (copy on write).
        cache = self._cache(key[0], settings.cache_ttl_seconds)
        entry = dict(cache.get(key) or {})
        entry.pop(when, None)
        entry[when] = (self.clock(), document)
        explicit = [w for w in entry if w is not None]
        for old in explicit[: max(0, len(explicit) - _AS_OF_PER_CUSTOMER)]:
            del entry[old]  # the oldest explicit-asOf records first (insertion order)
        cache[key] = entry

    def _drop_flight(self, key: CustomerKey, when: When, flight: _Flight) -> None:
        with self._lock:
            flights = self._flights.get(key)
            if flights is not None and flights.get(when) is flight:
                del flights[when]
                if not flights:
                    del self._flights[key]

    def _fail(self, key: CustomerKey, when: When, flight: _Flight, exc: BaseException) -> None:
        self._drop_flight(key, when, flight)
        flight.future.set_exception(exc)

    def _finish(
        self,
        key: CustomerKey,
        when: When,
        flight: _Flight,
        document: dict[str, Any],
        settings: ClvSettings,
    ) -> None:
        self._drop_flight(key, when, flight)
        with self._lock:
            if not flight.stale:
                self._remember(key, when, document, settings)
        flight.future.set_result(document)
