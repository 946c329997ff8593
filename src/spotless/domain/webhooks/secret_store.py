"""Endpoint signing secrets: made here, shown once, kept encrypted.

A secret must sign (HMAC needs the key itself), so it cannot be hashed like tokens are: it is
encrypted with AES-256-GCM under a key derived from WEBHOOK_SECRET_KEY, bound to its endpoint
(the associated data), so a ciphertext copied onto another endpoint or organisation does not
decrypt. Only `whsec_` + base64 of 32 random bytes ever leaves, in the answer that makes it."""

from __future__ import annotations

import base64
import hashlib
import secrets
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "whsec_"
_VERSION = b"\x01"
_NONCE_BYTES = 12


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and base64 of 32 random bytes (the spec asks 24-64)."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_bytes(secret: str) -> bytes:
    """The HMAC key a `whsec_` secret stands for."""
    return base64.b64decode(secret.removeprefix(PREFIX))


def _key(master: str) -> bytes:
    # A fixed, purpose-bound derivation: the same setting never keys anything else the same way.
    return hashlib.sha256(b"spotless.webhooks.secret.v1:" + master.encode()).digest()


def _aad(org_id: UUID, endpoint_id: UUID) -> bytes:
    return b"webhook-secret:" + org_id.bytes + endpoint_id.bytes


def seal(master: str, org_id: UUID, endpoint_id: UUID, secret: str) -> bytes:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return _VERSION + nonce + AESGCM(_key(master)).encrypt(nonce, secret.encode(), _aad(org_id, endpoint_id))


def unseal(master: str, org_id: UUID, endpoint_id: UUID, sealed: bytes) -> str:
    if sealed[:1] != _VERSION:
        raise ValueError("unknown secret format")
    nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
    return AESGCM(_key(master)).decrypt(nonce, body, _aad(org_id, endpoint_id)).decode()
