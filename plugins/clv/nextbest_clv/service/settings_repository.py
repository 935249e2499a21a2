"""A tenant's CLV settings as stored (plugin document ``clv/settings``), read through a short
in-process cache.

Settings are re-read from the store after :data:`SETTINGS_TTL_SECONDS`; writes through this
service (one per host) are seen at once, writes through another host or process within that
time. A change of the schedule restarts the tenant's schedule state (plugin
document ``clv/schedule-state``, which the scheduler keeps).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from nextbest.store import Store
from nextbest_clv.errors import ClvSettingsError
from nextbest_clv.service.fits import latest_fit
from nextbest_clv.service.settings import ClvSettings, merge_settings, settings_fingerprint
from nextbest_clv.service.tenant_data import require_tenant

__all__ = [
    "CONFIG_NAMESPACE",
    "SCHEDULE_STATE_KEY",
    "SETTINGS_KEY",
    "SETTINGS_TTL_SECONDS",
    "SettingsListener",
    "SettingsRepository",
]

#: Plugin-document namespace of the tenant's settings and schedule state.
CONFIG_NAMESPACE = "clv"
SETTINGS_KEY = "settings"
SCHEDULE_STATE_KEY = "schedule-state"
#: Settings are re-read from the store after this many seconds (writes through this service
#: are seen at once).
SETTINGS_TTL_SECONDS = 5.0

#: Called with the shared lock held each time settings are (re)read or written:
#: ``(tenant_id, settings, fingerprint, model_changed)``; ``model_changed`` says whether the
#: fingerprint differs from the previously known settings (False for the first read).
SettingsListener = Callable[[str, ClvSettings, str, bool], None]


class SettingsRepository:
    """Every tenant's settings in one store (defaults until changed). Thread-safe.

    Args:
        store: the store holding the settings documents.
        clock: epoch seconds now.
        lock: the lock shared with the caches that depend on the settings.
        on_change: see :data:`SettingsListener`; it runs under ``lock`` together with the update
            of the cached settings, so the dependent caches change atomically with them.
    """

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float],
        lock: threading.Lock,
        on_change: SettingsListener,
    ) -> None:
        self.store = store
        self.clock = clock
        self._lock = lock
        self._on_change = on_change
        self._settings: dict[str, tuple[float, ClvSettings]] = {}

    def get(self, tenant_id: str) -> ClvSettings:
        """The tenant's settings (defaults until changed)."""
        now = self.clock()
        with self._lock:
            cached = self._settings.get(tenant_id)
        if cached is not None and now - cached[0] < SETTINGS_TTL_SECONDS:
            return cached[1]
        doc = self.store.get_document(CONFIG_NAMESPACE, tenant_id, SETTINGS_KEY)
        settings = ClvSettings.model_validate(doc) if doc else ClvSettings()
        self._remember(tenant_id, settings, now)
        return settings

    def update(
        self, tenant_id: str, changes: Mapping[str, Any], *, replace: bool = False
    ) -> ClvSettings:
        """Apply ``changes`` (camelCase or snake_case keys) to the current settings, or to the
        defaults with ``replace``; validate and store them.

        Raises:
            ClvSettingsError: naming each invalid field, or ``model`` when it changes to a
                probabilistic model never fitted for the tenant (with the command to fit it).
            TenantNotFoundError: the tenant does not exist.
        """
        require_tenant(self.store, tenant_id)
        before = self.get(tenant_id)
        after = merge_settings(ClvSettings() if replace else before, changes)
        if after.model not in ("rfm", before.model) and not latest_fit(
            self.store, tenant_id, after.model
        ):
            # Refused now rather than every record failing later with "never fitted".
            raise ClvSettingsError(
                [
                    (
                        "model",
                        f"{after.model!r} has never been fitted for tenant {tenant_id!r}: run "
                        f"`nextbest clv fit --tenant {tenant_id} --model {after.model}` first",
                    )
                ]
            )
        self.store.put_documents(CONFIG_NAMESPACE, tenant_id, {SETTINGS_KEY: after.to_json()})
        if after.schedule != before.schedule:
            state = {"since": self.clock(), "schedule": after.schedule}
            self.store.put_documents(CONFIG_NAMESPACE, tenant_id, {SCHEDULE_STATE_KEY: state})
        self._remember(tenant_id, after, self.clock())
        return after

    def _remember(self, tenant_id: str, settings: ClvSettings, now: float) -> None:
        fp = settings_fingerprint(settings)
        with self._lock:
            previous = self._settings.get(tenant_id)
            self._settings[tenant_id] = (now, settings)
            model_changed = previous is not None and settings_fingerprint(previous[1]) != fp
            self._on_change(tenant_id, settings, fp, model_changed)
