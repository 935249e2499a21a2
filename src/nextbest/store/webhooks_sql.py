"""Webhook endpoints of the SQL store: a tenant's URLs, their event filters and their signing
secrets (generated here, shown once, kept encrypted: :mod:`nextbest.store.webhook_secrets`)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any

from nextbest.store.base import from_epoch
from nextbest.store.core_sql import Cursor, SqlCore, check_int, check_tenant_id, shown
from nextbest.store.errors import (
    EndpointInUseError,
    InvalidInputError,
    WebhookEndpointNotFoundError,
)
from nextbest.store.outbox_types import (
    EVENT_TYPE,
    EVENT_TYPE_RULE,
    MAX_DESCRIPTION,
    MAX_EVENT_TYPE,
    MAX_EVENT_TYPES,
    MAX_URL_LENGTH,
    WebhookEndpoint,
)
from nextbest.store.webhook_secrets import encrypt_secret, new_secret

#: The longest grace period of a rotated secret: 7 days.
MAX_GRACE_SECONDS = 7 * 86400
_ENDPOINT_COLUMNS = (
    "tenant_id, endpoint_id, url, description, event_types, created_at, rotated_at, previous_until"
)


def check_event_type(what: str, value: object) -> str:
    """``value`` when it is a valid event type (``trigger.fired``), else InvalidInputError."""
    if (
        not isinstance(value, str)
        or len(value) > MAX_EVENT_TYPE
        or EVENT_TYPE.fullmatch(value) is None
    ):
        raise InvalidInputError(
            f"{what} {shown(value)} is invalid: {EVENT_TYPE_RULE}, at most {MAX_EVENT_TYPE} "
            "characters",
            field=what,
        )
    return value


def check_url_text(url: object) -> str:
    """``url`` when it is an http(s) URL of acceptable length (where it points is checked by
    the outbox's SSRF guard), else InvalidInputError naming ``url``."""
    if not isinstance(url, str) or not url.isascii() or not url.isprintable() or " " in url:
        raise InvalidInputError(
            "url must be an http:// or https:// URL of printable ASCII characters without "
            "spaces (punycode for international host names)",
            field="url",
        )
    if not 1 <= len(url) <= MAX_URL_LENGTH:
        raise InvalidInputError(f"url must be 1-{MAX_URL_LENGTH} characters", field="url")
    if not url.lower().startswith(("http://", "https://")):
        raise InvalidInputError("url must start with http:// or https://", field="url")
    return url


def check_event_types(event_types: Sequence[str] | None) -> tuple[str, ...] | None:
    if event_types is None:
        return None
    if isinstance(event_types, str) or not isinstance(event_types, Sequence):
        raise InvalidInputError("eventTypes must be a list of event types", field="eventTypes")
    if not 1 <= len(event_types) <= MAX_EVENT_TYPES:
        raise InvalidInputError(
            f"eventTypes must hold 1-{MAX_EVENT_TYPES} types (leave it out for every type)",
            field="eventTypes",
        )
    for index, value in enumerate(event_types):
        check_event_type(f"eventTypes[{index}]", value)
    return tuple(dict.fromkeys(event_types))


def check_description(description: object) -> str | None:
    if description is None:
        return None
    if (
        not isinstance(description, str)
        or len(description) > MAX_DESCRIPTION
        or not description.isprintable()
    ):
        raise InvalidInputError(
            f"description must be at most {MAX_DESCRIPTION} printable characters",
            field="description",
        )
    return description


def endpoint_of(row: Sequence[Any]) -> WebhookEndpoint:
    """A WebhookEndpoint from a row of ``_ENDPOINT_COLUMNS``."""
    types = None if row[4] is None else tuple(json.loads(row[4]))
    return WebhookEndpoint(
        tenant_id=row[0],
        endpoint_id=row[1],
        url=row[2],
        description=row[3],
        event_types=types,
        created_at=from_epoch(row[5]),
        rotated_at=None if row[6] is None else from_epoch(row[6]),
        previous_secret_until=None if row[7] is None else from_epoch(row[7]),
    )


class WebhooksSql(SqlCore):
    """A tenant's webhook endpoints and their signing secrets."""

    def create_webhook_endpoint(
        self,
        tenant_id: str,
        url: str,
        *,
        description: str | None = None,
        event_types: Sequence[str] | None = None,
    ) -> tuple[WebhookEndpoint, str]:
        """Add an endpoint; returns it with its new signing secret (the only time the secret is
        given out). ``event_types`` None: every event type."""
        check_tenant_id(tenant_id)
        check_url_text(url)
        description = check_description(description)
        types = check_event_types(event_types)
        endpoint_id = f"ep_{secrets.token_hex(8)}"
        secret = new_secret()
        stored = encrypt_secret(secret, self._pepper, tenant_id, endpoint_id)
        now = self.clock()

        def create(cur: Cursor) -> None:
            self._require_tenant(cur, tenant_id)
            cur.execute(
                "INSERT INTO webhook_endpoints (tenant_id, endpoint_id, url, description, "
                "event_types, secret, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    tenant_id,
                    endpoint_id,
                    url,
                    description,
                    None if types is None else json.dumps(list(types)),
                    stored,
                    now,
                ),
            )

        self._write(create)
        endpoint = WebhookEndpoint(
            tenant_id, endpoint_id, url, description, types, from_epoch(now), None, None
        )
        return endpoint, secret

    def list_webhook_endpoints(self, tenant_id: str) -> list[WebhookEndpoint]:
        """The tenant's endpoints, oldest first."""
        check_tenant_id(tenant_id)
        with self._read() as cur:
            rows = cur.execute(
                f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = ? "
                "ORDER BY created_at, endpoint_id",
                (tenant_id,),
            ).fetchall()
        return [endpoint_of(r) for r in rows]

    def get_webhook_endpoint(self, tenant_id: str, endpoint_id: str) -> WebhookEndpoint | None:
        """One endpoint of the tenant, or None (another tenant's endpoint is None too)."""
        check_tenant_id(tenant_id)
        if not isinstance(endpoint_id, str) or not endpoint_id.isprintable():
            return None
        with self._read() as cur:
            row = cur.execute(
                f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints "
                "WHERE tenant_id = ? AND endpoint_id = ?",
                (tenant_id, endpoint_id),
            ).fetchone()
        return None if row is None else endpoint_of(row)

    def delete_webhook_endpoint(self, tenant_id: str, endpoint_id: str) -> bool:
        """Remove an endpoint and its deliveries (pending ones are never sent); False when the
        tenant has no such endpoint. EndpointInUseError when triggers (active or paused) name
        it in their ``webhook`` action: change or delete them first."""
        check_tenant_id(tenant_id)
        if not isinstance(endpoint_id, str) or not endpoint_id.isprintable():
            return False

        def delete(cur: Cursor) -> bool:
            # The lock a trigger put naming this endpoint takes too: neither sees the other
            # half done (a trigger saved for an endpoint removed meanwhile).
            self._lock(cur, "webhook-endpoint", tenant_id, endpoint_id)
            rows = cur.execute(
                "SELECT trigger_key, document FROM triggers WHERE tenant_id = ? "
                "ORDER BY trigger_key",
                (tenant_id,),
            ).fetchall()
            naming = [
                key
                for key, text in rows
                if (json.loads(text).get("actions") or {}).get("webhook") == endpoint_id
            ]
            if naming:
                raise EndpointInUseError(
                    f"endpoint {endpoint_id!r} is the webhook of trigger(s) "
                    f"{', '.join(map(repr, naming))}: change or delete them first",
                    naming,
                )
            cur.execute(
                "DELETE FROM webhook_deliveries WHERE tenant_id = ? AND endpoint_id = ?",
                (tenant_id, endpoint_id),
            )
            cur.execute(
                "DELETE FROM webhook_endpoints WHERE tenant_id = ? AND endpoint_id = ?",
                (tenant_id, endpoint_id),
            )
            return cur.rowcount == 1

        return self._write(delete)

    def rotate_webhook_secret(
        self, tenant_id: str, endpoint_id: str, *, grace_seconds: int = 86400
    ) -> tuple[WebhookEndpoint, str]:
        """Give the endpoint a new signing secret (returned: the only time it is given out).
        The secret it replaces keeps signing alongside for ``grace_seconds`` (0: not at all),
        so receivers can switch without missing a delivery.

        Raises:
            WebhookEndpointNotFoundError: the tenant has no such endpoint.
        """
        check_tenant_id(tenant_id)
        check_int("graceSeconds", grace_seconds, 0, MAX_GRACE_SECONDS)
        if not isinstance(endpoint_id, str) or not endpoint_id.isprintable():
            raise WebhookEndpointNotFoundError(f"webhook endpoint {shown(endpoint_id)} not found")
        secret = new_secret()
        stored = encrypt_secret(secret, self._pepper, tenant_id, endpoint_id)
        now = self.clock()

        def rotate(cur: Cursor) -> WebhookEndpoint:
            row = cur.execute(
                "SELECT secret FROM webhook_endpoints WHERE tenant_id = ? AND endpoint_id = ?",
                (tenant_id, endpoint_id),
            ).fetchone()
            if row is None:
                raise WebhookEndpointNotFoundError(f"webhook endpoint {endpoint_id!r} not found")
            previous, until = (row[0], now + grace_seconds) if grace_seconds else (None, None)
            cur.execute(
                "UPDATE webhook_endpoints SET secret = ?, previous_secret = ?, "
                "previous_until = ?, rotated_at = ? WHERE tenant_id = ? AND endpoint_id = ?",
                (stored, previous, until, now, tenant_id, endpoint_id),
            )
            found = cur.execute(
                f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints "
                "WHERE tenant_id = ? AND endpoint_id = ?",
                (tenant_id, endpoint_id),
            ).fetchone()
            return endpoint_of(found)

        return self._write(rotate), secret
