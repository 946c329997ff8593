"""One-click unsubscribe (RFC 8058) tokens: what to unsubscribe (organisation, recipient, kind),
signed with HMAC-SHA256. The token names nothing secret; the signature is what makes it valid.
They do not expire: a link in a months-old digest must still work."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

import msgspec

from spotless.settings import Settings


class UnsubscribeClaim(msgspec.Struct, frozen=True, array_like=True):
    org_id: uuid.UUID
    recipient_kind: str
    recipient_id: uuid.UUID
    kind: str


def _key(settings: Settings) -> bytes:
    explicit = settings.messaging.unsubscribe_secret
    if explicit:
        return explicit.encode()
    # A key of its own, derived: an unsubscribe signature can never stand in for an auth token.
    return hmac.new(settings.auth.secret_key.encode(), b"spotless/messaging/unsubscribe/v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(settings: Settings, claim: UnsubscribeClaim) -> str:
    payload = msgspec.json.encode(claim)
    signature = hmac.new(_key(settings), payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def read_token(settings: Settings, token: str) -> UnsubscribeClaim | None:
    """The claim of a well-signed token, else None."""
    try:
        payload_part, signature_part = token.split(".", 1)
        payload, signature = _unb64(payload_part), _unb64(signature_part)
    except (ValueError, TypeError):
        return None
    expected = hmac.new(_key(settings), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        return None
    try:
        return msgspec.json.decode(payload, type=UnsubscribeClaim)
    except msgspec.DecodeError:
        return None


def unsubscribe_url(settings: Settings, claim: UnsubscribeClaim) -> str:
    return f"{settings.messaging.public_base_url}/v1/messaging/unsubscribe/{make_token(settings, claim)}"
