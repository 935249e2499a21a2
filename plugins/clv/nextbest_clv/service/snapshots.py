"""Distribution snapshots per tenant, built from the store and kept in process.

For "now" reads, the tenant's snapshot is built as of the time it is built and rebuilt when it
is older than ``snapshotTtlSeconds`` or the model settings change, so within that window its
percentiles may still hold a customer's previous R/F/M and its score thresholds those of the
build time (an approximation that a batch or the TTL corrects). For an explicit asOf, the
snapshot is built as of exactly that time from the customers whose last interaction is at or
before it (a few are kept, least recently used dropped), so a single compute equals the batch
as of the same time, in any process. A batch installs the snapshot it scored with.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from nextbest.store import Store
from nextbest_clv.core.rfm import DistributionSnapshot
from nextbest_clv.errors import ClvInputError
from nextbest_clv.service.records import epoch_us, iso_time
from nextbest_clv.service.settings import ClvSettings, settings_fingerprint
from nextbest_clv.service.summary_rows import score_rows, valid_rows

__all__ = ["SnapshotKeeper", "TenantSnapshot"]

#: Snapshots built as of an explicit asOf kept per service (each holds sorted R/F/M arrays).
_AS_OF_SNAPSHOTS = 4


@dataclass(slots=True)
class TenantSnapshot:
    """A tenant's snapshot, when it was built (clock time) and the fingerprint of the model
    settings it was built with."""

    snapshot: DistributionSnapshot
    built_at: float
    fingerprint: str


class SnapshotKeeper:
    """The snapshots of every tenant of one store: one for "now" per tenant and a few as of
    explicit times. Thread-safe; one rebuild per tenant at a time.

    Args:
        store: the store (customer summary columns).
        clock: epoch seconds now.
        lock: the service's lock (shared with the settings and the record cache).
    """

    def __init__(self, store: Store, clock: Callable[[], float], lock: threading.Lock) -> None:
        self.store = store
        self.clock = clock
        self._lock = lock
        self._snapshots: dict[str, TenantSnapshot] = {}
        self._as_of_snapshots: OrderedDict[tuple[str, int], TenantSnapshot] = OrderedDict()
        self._build_locks: dict[str, threading.Lock] = {}

    def get(
        self, tenant_id: str, settings: ClvSettings, as_of: float | None = None
    ) -> TenantSnapshot:
        """The tenant's snapshot for "now" (``as_of`` None) or as of exactly ``as_of``, built
        when missing or stale (see the module doc).

        Raises:
            ClvInputError: no customer of the tenant can be scored (as of ``as_of``).
        """
        fp = settings_fingerprint(settings)
        key = None if as_of is None else (tenant_id, epoch_us(as_of))
        with self._lock:
            snap = self._kept(tenant_id, key)
            build_lock = self._build_locks.setdefault(tenant_id, threading.Lock())
        if self._fresh(snap, fp, settings):
            assert snap is not None
            return snap
        with build_lock:  # one rebuild per tenant at a time; the others wait and reuse it
            with self._lock:
                snap = self._kept(tenant_id, key)
            if self._fresh(snap, fp, settings):
                assert snap is not None
                return snap
            cols = self.store.customer_summary_columns(tenant_id)
            at = as_of
            if at is None:  # "now" never precedes a usable last interaction (clock skew)
                last = cols.last_at[valid_rows(cols, None)]
                at = max(self.clock(), float(last.max())) if last.size else self.clock()
            # The rows the batch would score, so a single compute equals the batch.
            snapshot = score_rows(cols, at, settings).snapshot
            if snapshot is None:
                when = "" if as_of is None else f" as of {iso_time(as_of)}"
                raise ClvInputError(
                    f"tenant {tenant_id!r} has no customers with usable interaction summaries{when}"
                )
            snap = TenantSnapshot(snapshot, self.clock(), fp)
            self.install(tenant_id, as_of, snap)
            return snap

    def install(self, tenant_id: str, as_of: float | None, snap: TenantSnapshot) -> None:
        """Keep ``snap`` as the tenant's snapshot for "now" (``as_of`` None) or as of
        ``as_of``."""
        with self._lock:
            if as_of is None:
                self._snapshots[tenant_id] = snap
                return
            key = (tenant_id, epoch_us(as_of))
            self._as_of_snapshots[key] = snap
            self._as_of_snapshots.move_to_end(key)
            while len(self._as_of_snapshots) > _AS_OF_SNAPSHOTS:
                self._as_of_snapshots.popitem(last=False)

    def drop_stale_locked(self, tenant_id: str, fingerprint: str) -> None:
        """Drop the tenant's snapshots built with other model settings. Call with the lock
        held."""
        snap = self._snapshots.get(tenant_id)
        if snap is not None and snap.fingerprint != fingerprint:
            self._snapshots.pop(tenant_id, None)
        for key in [k for k, v in self._as_of_snapshots.items() if k[0] == tenant_id]:
            if self._as_of_snapshots[key].fingerprint != fingerprint:
                del self._as_of_snapshots[key]

    def _kept(self, tenant_id: str, key: tuple[str, int] | None) -> TenantSnapshot | None:
        # Called with self._lock held.
        if key is None:
            return self._snapshots.get(tenant_id)
        snap = self._as_of_snapshots.get(key)
        if snap is not None:
            self._as_of_snapshots.move_to_end(key)
        return snap

    def _fresh(self, snap: TenantSnapshot | None, fp: str, settings: ClvSettings) -> bool:
        return (
            snap is not None
            and snap.fingerprint == fp
            and self.clock() - snap.built_at < settings.snapshot_ttl_seconds
        )
