"""Integration tokens at rest: AES-256-GCM under a key ring (INTEGRATION_TOKEN_KEYS).

The ring is `kid:base64url(32 bytes)` entries separated by commas. The first key seals; every key
unseals, so a rotation prepends the new key, and rows sealed with an older one still open until they
are resealed (`needs_reseal`). The associated data binds a ciphertext to its row and purpose (e.g.
f"{org_id}:{connection_id}:refresh"): a token copied into another row does not open there.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
import re
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"
_NONCE_BYTES = 12
_KID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class SealError(Exception):
    """A sealed value that does not open: unknown key id, tampered, wrong row (aad) or malformed."""


class KeyRingError(ValueError):
    """INTEGRATION_TOKEN_KEYS is malformed (the message names the entry, never the key)."""


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def parse_key_ring(spec: str) -> dict[str, bytes]:
    """`kid:base64url(32 bytes)`, comma separated, in order (the first is the sealing key)."""
    ring: dict[str, bytes] = {}
    for position, entry in enumerate(part.strip() for part in spec.split(",") if part.strip()):
        kid, sep, encoded = entry.partition(":")
        if not sep or not _KID.match(kid):
            raise KeyRingError(f"INTEGRATION_TOKEN_KEYS entry {position + 1} must be kid:base64url(32 bytes)")
        if kid in ring:
            raise KeyRingError(f"INTEGRATION_TOKEN_KEYS names key id {kid!r} twice")
        try:
            key = _b64decode(encoded)
        except (binascii.Error, ValueError):
            raise KeyRingError(f"INTEGRATION_TOKEN_KEYS key {kid!r} is not base64url") from None
        if len(key) != 32:
            raise KeyRingError(f"INTEGRATION_TOKEN_KEYS key {kid!r} must be 32 bytes, not {len(key)}")
        ring[kid] = key
    return ring


def generate_key_entry(kid: str) -> str:
    """A new ring entry (README: python -c 'from spotless.lib.sealed import generate_key_entry; ...')."""
    return f"{kid}:{_b64encode(os.urandom(32))}"


class KeyRing:
    def __init__(self, keys: Mapping[str, bytes]) -> None:
        if not keys:
            raise KeyRingError("INTEGRATION_TOKEN_KEYS is empty: no key to seal integration tokens with")
        self._keys = dict(keys)
        self.primary = next(iter(self._keys))

    @classmethod
    def from_spec(cls, spec: str) -> KeyRing:
        return cls(parse_key_ring(spec))

    def seal(self, plain: str, *, aad: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        ct = AESGCM(self._keys[self.primary]).encrypt(nonce, plain.encode("utf-8"), aad.encode("utf-8"))
        return f"{_VERSION}.{self.primary}.{_b64encode(nonce + ct)}"

    def unseal(self, sealed: str, *, aad: str) -> str:
        version, kid, payload = _split(sealed)
        if version != _VERSION:
            raise SealError(f"unknown sealed-token version {version!r}")
        key = self._keys.get(kid)
        if key is None:
            raise SealError(f"sealed with key {kid!r}, which is not in INTEGRATION_TOKEN_KEYS")
        try:
            raw = _b64decode(payload)
            plain = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], aad.encode("utf-8"))
        except (InvalidTag, binascii.Error, ValueError):
            raise SealError("sealed token does not open (tampered, or sealed for another row)") from None
        return plain.decode("utf-8")

    def needs_reseal(self, sealed: str) -> bool:
        return _split(sealed)[1] != self.primary


def _split(sealed: str) -> tuple[str, str, str]:
    parts = sealed.split(".", 2)
    if len(parts) != 3:
        raise SealError("malformed sealed token")
    return parts[0], parts[1], parts[2]


@functools.cache
def _ring() -> KeyRing:
    """The process's ring, from the settings (tests that change the keys call `_ring.cache_clear()`)."""
    from spotless.settings import load_settings

    return KeyRing.from_spec(load_settings().integrations.token_keys)


def seal(plain: str, *, aad: str) -> str:
    return _ring().seal(plain, aad=aad)


def unseal(sealed: str, *, aad: str) -> str:
    return _ring().unseal(sealed, aad=aad)


def needs_reseal(sealed: str) -> bool:
    return _ring().needs_reseal(sealed)
