"""API key generation and hashing.

A key is shown to its owner once, as ``nbk_<key id>_<secret>``. The store keeps only the key id
(to find the row) and ``HMAC-SHA256(pepper, key)``. The pepper is a server secret read from
``NEXTBEST_API_KEY_PEPPER``; a leaked database alone therefore does not allow checking guesses.
When the variable is unset a fixed development pepper is used and a warning is logged once:
fine on a laptop, never in production.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
from typing import Literal, get_args

from nextbest.store.errors import InvalidInputError

Role = Literal["admin", "editor", "viewer"]
ROLES: tuple[str, ...] = get_args(Role)

PEPPER_ENV = "NEXTBEST_API_KEY_PEPPER"
#: Used when NEXTBEST_API_KEY_PEPPER is unset. Public, so keys hashed with it are not protected.
DEVELOPMENT_PEPPER = "nextbest-development-pepper-do-not-use-in-production"
KEY_PREFIX = "nbk"

_log = logging.getLogger(__name__)
_warned = threading.Event()


def server_pepper() -> bytes:
    """The pepper from the environment, or the development pepper (with a one-time warning)."""
    value = os.environ.get(PEPPER_ENV)
    if value:
        return value.encode()
    if not _warned.is_set():
        _warned.set()
        _log.warning(
            "%s is not set: API keys are hashed with the public development pepper. "
            "Set it to a long random secret in production.",
            PEPPER_ENV,
        )
    return DEVELOPMENT_PEPPER.encode()


def check_role(role: str) -> Role:
    """Return ``role`` if it is one of admin, editor, viewer; else raise InvalidInputError."""
    if role not in ROLES:
        raise InvalidInputError(f"role {role!r} is invalid: use one of {', '.join(ROLES)}")
    return role  # type: ignore[return-value]


def new_key() -> tuple[str, str]:
    """Generate ``(key_id, plaintext_key)``; the key id is part of the plaintext."""
    key_id = secrets.token_hex(8)
    return key_id, f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(plaintext: str) -> str | None:
    """The key id embedded in a plaintext key, or None when it is not shaped like our keys."""
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 16 or not parts[2]:
        return None
    return parts[1]


def hash_key(plaintext: str, pepper: bytes) -> str:
    """HMAC-SHA256 of the plaintext key under the pepper, as hex."""
    return hmac.new(pepper, plaintext.encode(), hashlib.sha256).hexdigest()


def matches(plaintext: str, stored_hash: str, pepper: bytes) -> bool:
    """Constant-time check of a plaintext key against a stored hash."""
    return hmac.compare_digest(hash_key(plaintext, pepper), stored_hash)
