"""Secrets we must be able to read back (OAuth tokens), sealed with AES-256-GCM under a key ring.

`INTEGRATION_TOKEN_KEYS` is a comma-separated list of `kid:base64url(32 bytes)`. The first key
seals; every listed key opens, so a rotation is: put the new key first, keep the old one second
until every row has been resealed (rows are resealed with the first key whenever they are written
again, e.g. on each token refresh), then drop it.

A sealed value is `v1.<kid>.<base64url(nonce || ciphertext+tag)>`. The associated data binds it to
its row and purpose (e.g. `f"{org_id}:{connection_id}:refresh"`): a ciphertext copied onto another
row or organisation does not open."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "v1"
KEY_BYTES = 32
_NONCE_BYTES = 12
_KID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class SealedError(ValueError):
    """A key ring that cannot be used, or a value that does not open (wrong key, row or tampering).
    Its message never contains key material or the value."""


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def generate_key(kid: str) -> str:
    """A new ring entry (`kid:base64url`) for INTEGRATION_TOKEN_KEYS."""
    return f"{kid}:{_b64encode(secrets.token_bytes(KEY_BYTES))}"


@dataclass(frozen=True)
class KeyRing:
    """Ordered keys: `primary` seals, all open."""

    keys: tuple[tuple[str, bytes], ...]
    _by_kid: dict[str, AESGCM] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise SealedError("the key ring is empty")
        for kid, key in self.keys:
            self._by_kid[kid] = AESGCM(key)

    def __repr__(self) -> str:  # never the keys
        return f"KeyRing(kids={self.kids!r})"

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(kid for kid, _ in self.keys)

    @property
    def primary(self) -> str:
        return self.keys[0][0]

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        """From INTEGRATION_TOKEN_KEYS; errors name the entry by position, never its value."""
        entries = [part.strip() for part in spec.split(",") if part.strip()]
        if not entries:
            raise SealedError("INTEGRATION_TOKEN_KEYS lists no key")
        keys: list[tuple[str, bytes]] = []
        for position, entry in enumerate(entries, start=1):
            kid, sep, encoded = entry.partition(":")
            if not sep or not _KID.match(kid):
                raise SealedError(f"INTEGRATION_TOKEN_KEYS entry {position} must be kid:base64url (kid: [A-Za-z0-9_-])")
            try:
                key = _b64decode(encoded)
            except (binascii.Error, ValueError):
                raise SealedError(f"INTEGRATION_TOKEN_KEYS entry {position} ({kid}) is not base64url") from None
            if len(key) != KEY_BYTES:
                raise SealedError(f"INTEGRATION_TOKEN_KEYS entry {position} ({kid}) must decode to {KEY_BYTES} bytes")
            if any(kid == known for known, _ in keys):
                raise SealedError(f"INTEGRATION_TOKEN_KEYS names key {kid!r} twice")
            keys.append((kid, key))
        return cls(tuple(keys))

    def seal(self, plain: str, *, aad: str) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        body = self._by_kid[self.primary].encrypt(nonce, plain.encode(), aad.encode())
        return f"{VERSION}.{self.primary}.{_b64encode(nonce + body)}"

    def unseal(self, sealed: str, *, aad: str) -> str:
        version, kid, payload = _parts(sealed)
        if version != VERSION:
            raise SealedError("unknown sealed format")
        cipher = self._by_kid.get(kid)
        if cipher is None:
            raise SealedError(f"sealed with key {kid!r}, which INTEGRATION_TOKEN_KEYS no longer lists")
        try:
            raw = _b64decode(payload)
            return cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], aad.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise SealedError("the sealed value does not open (another row's, or altered)") from None

    def needs_reseal(self, sealed: str) -> bool:
        """Sealed with a key other than the primary one (a rotation is under way)."""
        return _parts(sealed)[1] != self.primary


def _parts(sealed: str) -> tuple[str, str, str]:
    parts = sealed.split(".")
    if len(parts) != 3:
        raise SealedError("not a sealed value")
    return parts[0], parts[1], parts[2]
