"""Signed browser sessions of the report (``/ui/``): what the cookie holds, how it is signed
and checked, and where the signing secret comes from.

The cookie is ``v1.<payload>.<signature>``: the payload (base64url JSON) holds the tenant, the
API key's id and role, the expiry and the session's CSRF token; the signature is HMAC-SHA256
over ``v1.<payload>`` with the tenant's signing secret. A session is valid while the signature
matches, the expiry is ahead, the key it was opened with is still valid (a revoked key ends
its sessions at once) and it was not signed out. Nothing in the cookie is secret; nothing in it
can be changed.

Sign-out ends the session on the server, not only in the browser: the session's id (a hash of
its payload, which holds the random CSRF token, so unique per session) is kept in the store
(plugin documents ``nextbest.ui.signed-out``, one per session, until the session would have
expired; expired entries are dropped at each sign-out), and a replayed cookie of a signed-out
session is refused by every worker.

The secret: ``NEXTBEST_UI_SECRET`` (at least 32 characters) when set, shared by every worker
and tenant; otherwise one per tenant, generated at its first sign-in and kept in the store
(plugin document ``nextbest.ui`` / ``session-secret``, created atomically), so several workers
and restarts agree without configuration.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..store import InvalidInputError, Store

COOKIE = "nextbest_ui"
#: The pre-session cookie that protects the sign-in form (double submit).
SIGN_IN_COOKIE = "nextbest_ui_sign_in"
SECRET_ENV = "NEXTBEST_UI_SECRET"
LIFETIME_ENV = "NEXTBEST_UI_SESSION_HOURS"
DEFAULT_LIFETIME_HOURS = 8.0
NAMESPACE = "nextbest.ui"
SECRET_KEY = "session-secret"
#: Plugin documents of the sessions signed out before their expiry (key: the session id).
SIGNED_OUT_NAMESPACE = "nextbest.ui.signed-out"
_VERSION = "v1"
_MIN_SECRET = 32


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: tenant, key id and role, expiry (epoch seconds), CSRF token and
    the session's id (derived from the signed payload, see the module doc)."""

    tenant_id: str
    key_id: str
    role: str
    expires: float
    csrf: str
    session_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def session_lifetime() -> float:
    """Seconds a session lasts: ``NEXTBEST_UI_SESSION_HOURS`` (0.01-720), default 8 hours."""
    raw = os.environ.get(LIFETIME_ENV)
    if not raw:
        return DEFAULT_LIFETIME_HOURS * 3600
    try:
        hours = float(raw)
    except ValueError:
        raise ValueError(f"{LIFETIME_ENV} must be a number of hours, got {raw!r}") from None
    if not 0.01 <= hours <= 720:
        raise ValueError(f"{LIFETIME_ENV} must be between 0.01 and 720 hours")
    return hours * 3600


class SessionSigner:
    """Opens and checks sessions over a store (one per app; thread-safe)."""

    def __init__(self, store: Store, *, clock: Any = time.time) -> None:
        self.store = store
        self.clock = clock
        self._secrets: dict[str, bytes] = {}
        self._lock = threading.Lock()
        configured = os.environ.get(SECRET_ENV)
        if configured is not None and len(configured) < _MIN_SECRET:
            raise ValueError(f"{SECRET_ENV} must be at least {_MIN_SECRET} characters")
        self._shared = configured.encode("utf-8") if configured else None

    def _secret(self, tenant_id: str, *, create: bool) -> bytes | None:
        if self._shared is not None:
            return self._shared
        with self._lock:
            known = self._secrets.get(tenant_id)
        if known is not None:
            return known
        stored = self.store.get_document(NAMESPACE, tenant_id, SECRET_KEY)
        if stored is None and create:
            fresh = secrets.token_hex(32)

            def keep_first(current: dict[tuple[str, str], Any]) -> dict[tuple[str, str], Any]:
                # Two workers signing in at once: the first secret written wins.
                if (NAMESPACE, SECRET_KEY) in current:
                    return {}
                return {(NAMESPACE, SECRET_KEY): {"secret": fresh}}

            self.store.update_documents(tenant_id, [(NAMESPACE, SECRET_KEY)], keep_first)
            stored = self.store.get_document(NAMESPACE, tenant_id, SECRET_KEY)
        if not isinstance(stored, dict) or not isinstance(stored.get("secret"), str):
            return None
        secret = bytes.fromhex(stored["secret"])
        with self._lock:
            self._secrets[tenant_id] = secret
        return secret

    def open(self, tenant_id: str, key_id: str, role: str) -> tuple[Session, str]:
        """A new session and its cookie value (the tenant's secret created if needed)."""
        secret = self._secret(tenant_id, create=True)
        assert secret is not None
        expires, csrf = self.clock() + session_lifetime(), secrets.token_urlsafe(24)
        payload = _b64(
            json.dumps(
                {"t": tenant_id, "k": key_id, "r": role, "e": expires, "c": csrf},
                separators=(",", ":"),
            ).encode("utf-8")
        )
        session = Session(tenant_id, key_id, role, expires, csrf, _session_id(payload))
        signed = f"{_VERSION}.{payload}"
        return session, f"{signed}.{_b64(_sign(secret, signed))}"

    def sign_out(self, session: Session) -> None:
        """End ``session`` on the server: its cookie is refused from now on, by every worker
        sharing the store. Drops the entries of sessions that expired meanwhile."""
        now = self.clock()
        kept = self.store.get_documents(SIGNED_OUT_NAMESPACE, session.tenant_id)
        stale = [
            k
            for k, doc in kept.items()
            if not isinstance(doc, dict) or float(doc.get("expires", 0)) <= now
        ]
        if stale:
            self.store.delete_documents(SIGNED_OUT_NAMESPACE, session.tenant_id, stale)
        self.store.put_documents(
            SIGNED_OUT_NAMESPACE,
            session.tenant_id,
            {session.session_id: {"expires": session.expires}},
        )

    def _signed_out(self, session: Session) -> bool:
        found = self.store.get_document(SIGNED_OUT_NAMESPACE, session.tenant_id, session.session_id)
        return found is not None

    def check(self, cookie: str | None) -> Session | None:
        """The session of a cookie value, or None (absent, malformed, tampered, expired, its
        key revoked, or signed out)."""
        if not cookie or len(cookie) > 4096:
            return None
        parts = cookie.split(".")
        if len(parts) != 3 or parts[0] != _VERSION:
            return None
        try:
            data = json.loads(_unb64(parts[1]))
            signature = _unb64(parts[2])
            session = Session(
                str(data["t"]),
                str(data["k"]),
                str(data["r"]),
                float(data["e"]),
                str(data["c"]),
                _session_id(parts[1]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        # The tenant named by the (not yet trusted) payload only picks the secret to check with.
        try:
            secret = self._secret(session.tenant_id, create=False)
        except InvalidInputError:  # not even a valid tenant id
            return None
        if secret is None:
            return None
        if not hmac.compare_digest(signature, _sign(secret, f"{parts[0]}.{parts[1]}")):
            return None
        if session.expires <= self.clock():
            return None
        keys = {k.key_id: k for k in self.store.list_api_keys(session.tenant_id)}
        key = keys.get(session.key_id)
        if key is None or key.revoked_at is not None or key.role != session.role:
            return None
        if self._signed_out(session):
            return None
        return session


def _session_id(payload: str) -> str:
    """A session's id: a hash of its signed payload (unique: the payload holds a random CSRF
    token; a hash, so the store never holds the token itself)."""
    return hashlib.sha256(payload.encode("ascii")).hexdigest()[:32]


def _sign(secret: bytes, text: str) -> bytes:
    return hmac.new(secret, text.encode("ascii"), hashlib.sha256).digest()


def same_token(expected: str, given: str | None) -> bool:
    """Whether a submitted CSRF token equals the expected one (constant time)."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


__all__ = [
    "COOKIE",
    "SIGNED_OUT_NAMESPACE",
    "SIGN_IN_COOKIE",
    "Session",
    "SessionSigner",
    "same_token",
    "session_lifetime",
]
