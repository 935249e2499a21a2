"""Tenants and API keys of the SQL store: tenants, their settings (the default flow key among
them) and the API keys that authenticate a tenant's callers."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from nextbest.experiments.control import CONTROL_GROUP_SETTING, control_group_problem
from nextbest.store import keys as keyring
from nextbest.store.base import ApiKey, JSONDict, Tenant, from_epoch
from nextbest.store.core_sql import (
    Cursor,
    SqlCore,
    check_id,
    check_optional_id,
    check_tenant_id,
    json_text,
    shown,
    valid_tenant_id,
)
from nextbest.store.errors import InvalidInputError, TenantExistsError, TenantNotFoundError
from nextbest.store.limits import id_problem

DEFAULT_FLOW_SETTING = "default_flow_key"
#: Whether outcomes may name offers that are not in the tenant's catalog (offers managed
#: elsewhere); by default respond refuses them.
ACCEPT_UNKNOWN_OFFERS_SETTING = "acceptUnknownOffers"
#: The settings the host reads, each with the rule of its value. Other keys are kept as given
#: (the API and plugins may keep their own); ``nextbest tenants settings`` takes only these.
TENANT_SETTINGS: dict[str, str] = {
    ACCEPT_UNKNOWN_OFFERS_SETTING: "must be true or false",
    DEFAULT_FLOW_SETTING: "must be a flow key (an id)",
    CONTROL_GROUP_SETTING: "must be a control group: {share: 0 to 0.5, salt, mode: none|random}",
}
#: The key id inside a plaintext key (``keys.new_key`` makes 16 hex digits).
_KEY_ID = re.compile(r"[0-9a-f]{16}")


def tenant_setting_problem(key: str, value: Any) -> str | None:
    """Why ``value`` cannot be the host setting ``key`` (see TENANT_SETTINGS), or None; None
    (unset) is always accepted, and so is any value of a key the host does not read."""
    if value is None or key not in TENANT_SETTINGS:
        return None
    if key == CONTROL_GROUP_SETTING:
        return control_group_problem(value)
    if key == ACCEPT_UNKNOWN_OFFERS_SETTING:
        ok = isinstance(value, bool)
    else:
        ok = id_problem(value) is None
    return None if ok else f"{key} {TENANT_SETTINGS[key]}, not {shown(value)}"


def _settings(settings: object, what: str = "tenant settings") -> dict[str, Any]:
    if not isinstance(settings, Mapping):
        raise InvalidInputError(f"{what} must be a JSON object", field="settings")
    return dict(settings)


def _check_settings(settings: Mapping[str, Any]) -> None:
    for key, value in settings.items():
        problem = tenant_setting_problem(key, value)
        if problem is not None:
            raise InvalidInputError(problem, field=f"settings.{key}")


class TenantsSql(SqlCore):
    """Tenants, tenant settings and API keys."""

    # -- tenants ----------------------------------------------------------------------------
    def create_tenant(
        self, tenant_id: str, name: str | None = None, settings: Mapping[str, Any] | None = None
    ) -> Tenant:
        check_tenant_id(tenant_id)
        check_optional_id("name", name)
        settings_doc = _settings(settings or {})
        _check_settings(settings_doc)
        settings_text = json_text("tenant settings", settings_doc, "settings")
        now = self.clock()
        try:
            self._write(
                lambda cur: cur.execute(
                    "INSERT INTO tenants (tenant_id, name, settings, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (tenant_id, name, settings_text, now),
                )
            )
        except Exception as exc:
            if self._is_integrity_error(exc):
                raise TenantExistsError(f"tenant {tenant_id!r} already exists") from exc
            raise
        return Tenant(tenant_id, name, settings_doc, from_epoch(now))

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        if not valid_tenant_id(tenant_id):
            return None  # no tenant can have this id (and PostgreSQL could not look it up)
        with self._read() as cur:
            row = cur.execute(
                "SELECT tenant_id, name, settings, created_at FROM tenants WHERE tenant_id = ?",
                (tenant_id,),
            ).fetchone()
        return (
            None if row is None else Tenant(row[0], row[1], json.loads(row[2]), from_epoch(row[3]))
        )

    def list_tenants(self) -> list[Tenant]:
        with self._read() as cur:
            rows = cur.execute(
                "SELECT tenant_id, name, settings, created_at FROM tenants ORDER BY tenant_id"
            ).fetchall()
        return [Tenant(r[0], r[1], json.loads(r[2]), from_epoch(r[3])) for r in rows]

    def update_tenant_settings(self, tenant_id: str, changes: Mapping[str, Any]) -> JSONDict:
        check_tenant_id(tenant_id)
        changes = _settings(changes, "settings changes")
        _check_settings(changes)

        def update(cur: Cursor) -> JSONDict:
            row = cur.execute(
                "SELECT settings FROM tenants WHERE tenant_id = ?", (tenant_id,)
            ).fetchone()
            if row is None:
                raise TenantNotFoundError(f"tenant {tenant_id!r} does not exist")
            settings: JSONDict = json.loads(row[0])
            for key, value in changes.items():
                if value is None:
                    settings.pop(key, None)
                else:
                    settings[key] = value
            text = json_text("tenant settings", settings, "settings")
            cur.execute("UPDATE tenants SET settings = ? WHERE tenant_id = ?", (text, tenant_id))
            return settings

        return self._write(update)

    def set_default_flow(self, tenant_id: str, flow_key: str | None) -> None:
        check_optional_id("flow key", flow_key)
        self.update_tenant_settings(tenant_id, {DEFAULT_FLOW_SETTING: flow_key})

    def default_flow_key(self, tenant_id: str) -> str | None:
        tenant = self.get_tenant(tenant_id)
        if tenant is None:
            return None
        configured = tenant.settings.get(DEFAULT_FLOW_SETTING)
        if isinstance(configured, str):
            return configured
        with self._read() as cur:
            row = cur.execute(
                "SELECT flow_key FROM flows WHERE tenant_id = ? AND published = 1 "
                "ORDER BY published_at DESC, flow_key LIMIT 1",
                (tenant_id,),
            ).fetchone()
        return None if row is None else row[0]

    # -- API keys ---------------------------------------------------------------------------
    def create_api_key(self, tenant_id: str, role: str) -> tuple[str, str]:
        keyring.check_role(role)
        key_id, plaintext = keyring.new_key()
        key_hash = keyring.hash_key(plaintext, self._pepper)

        def create(cur: Cursor) -> None:
            self._require_tenant(cur, tenant_id)
            cur.execute(
                "INSERT INTO api_keys (key_id, tenant_id, role, key_hash, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (key_id, tenant_id, role, key_hash, self.clock()),
            )

        self._write(create)
        return key_id, plaintext

    def authenticate_api_key(self, plaintext: str) -> ApiKey | None:
        # Our keys are ASCII with a hex key id: anything else matches no key (and could not be
        # hashed or looked up: a lone surrogate, a NUL on PostgreSQL).
        if not isinstance(plaintext, str) or not plaintext.isascii():
            return None
        key_id = keyring.key_id_of(plaintext)
        if key_id is None or _KEY_ID.fullmatch(key_id) is None:
            return None
        with self._read() as cur:
            row = cur.execute(
                "SELECT key_id, tenant_id, role, key_hash, created_at FROM api_keys "
                "WHERE key_id = ? AND revoked_at IS NULL",
                (key_id,),
            ).fetchone()
        # Hash even when the id is unknown so timing does not tell ids apart.
        stored = row[3] if row is not None else "0" * 64
        if not keyring.matches(plaintext, stored, self._pepper) or row is None:
            return None
        return ApiKey(row[0], row[1], row[2], from_epoch(row[4]))

    def list_api_keys(self, tenant_id: str) -> list[ApiKey]:
        check_tenant_id(tenant_id)
        with self._read() as cur:
            rows = cur.execute(
                "SELECT key_id, tenant_id, role, created_at, revoked_at FROM api_keys "
                "WHERE tenant_id = ? ORDER BY created_at, key_id",
                (tenant_id,),
            ).fetchall()
        return [
            ApiKey(r[0], r[1], r[2], from_epoch(r[3]), None if r[4] is None else from_epoch(r[4]))
            for r in rows
        ]

    def revoke_api_key(self, tenant_id: str, key_id: str) -> bool:
        check_tenant_id(tenant_id)
        check_id("key id", key_id)
        now = self.clock()

        def revoke(cur: Cursor) -> bool:
            cur.execute(
                "UPDATE api_keys SET revoked_at = ? "
                "WHERE tenant_id = ? AND key_id = ? AND revoked_at IS NULL",
                (now, tenant_id, key_id),
            )
            return cur.rowcount == 1

        return self._write(revoke)
