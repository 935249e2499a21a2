"""Webhook signing secrets: generated here, kept encrypted at rest.

A signing secret must be usable for HMAC when a delivery is signed, so unlike an API key it
cannot be stored as a hash. The store keeps it encrypted with AES-256-GCM (``cryptography``, a
well-kept library, rather than hand-rolled crypto) under a key derived with HKDF-SHA256 from the
store's pepper (``NEXTBEST_API_KEY_PEPPER``, see :mod:`nextbest.store.keys`): a leaked database
alone does not reveal the secrets. The endpoint's tenant and id are the associated data, so a
ciphertext copied onto another endpoint's row does not decrypt. Changing the pepper makes the
stored secrets unreadable: rotate every endpoint's secret after changing it.

Secrets follow the Standard Webhooks format: ``whsec_`` followed by the base64 of 32 random
bytes.
"""

from __future__ import annotations

import base64
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from nextbest.store.errors import StoreError

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
_VERSION = "v1"
_NONCE_BYTES = 12
_INFO = b"nextbest webhook signing secrets v1"


class SecretUnreadableError(StoreError):
    """A stored secret does not decrypt: the pepper changed (rotate the endpoint's secret)."""


def new_secret() -> str:
    """A new signing secret, ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _cipher(pepper: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(pepper)
    return AESGCM(key)


def _associated(tenant_id: str, endpoint_id: str) -> bytes:
    return f"{tenant_id}\x1f{endpoint_id}".encode()


def encrypt_secret(secret: str, pepper: bytes, tenant_id: str, endpoint_id: str) -> str:
    """The stored form of ``secret``: ``v1:`` + base64(nonce + AES-GCM ciphertext)."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _cipher(pepper).encrypt(nonce, secret.encode(), _associated(tenant_id, endpoint_id))
    return f"{_VERSION}:{base64.b64encode(nonce + sealed).decode()}"


def decrypt_secret(stored: str, pepper: bytes, tenant_id: str, endpoint_id: str) -> str:
    """The secret behind :func:`encrypt_secret`'s text; SecretUnreadableError when it does not
    decrypt under this pepper and endpoint."""
    version, _, text = stored.partition(":")
    try:
        if version != _VERSION:
            raise ValueError(f"unknown secret format {version!r}")
        raw = base64.b64decode(text, validate=True)
        plain = _cipher(pepper).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _associated(tenant_id, endpoint_id)
        )
    except (InvalidTag, ValueError) as exc:
        raise SecretUnreadableError(
            f"the signing secret of endpoint {endpoint_id!r} cannot be decrypted (was "
            "NEXTBEST_API_KEY_PEPPER changed?): rotate the endpoint's secret"
        ) from exc
    return plain.decode()
