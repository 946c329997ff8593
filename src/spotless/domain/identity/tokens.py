"""Access tokens (short-lived HS256 JWTs naming a server-side session) and opaque secrets.

The JWT alone is never enough: the middleware also checks that its session is still active
(one Redis GET, see `session_cache`)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import jwt

from spotless.settings import Settings

ALGORITHM = "HS256"
ISSUER = "spotless"
AUDIENCE = "spotless-api"
_LEEWAY_SECONDS = 5


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: UUID
    org_id: UUID
    session_id: UUID
    email: str
    expires_at: datetime


def issue_access_token(
    settings: Settings,
    *,
    user_id: UUID,
    org_id: UUID,
    session_id: UUID,
    email: str,
    session_expires_at: datetime,
    now: datetime | None = None,
) -> tuple[str, datetime]:
    now = now or datetime.now(UTC)
    expires = min(now + timedelta(minutes=settings.auth.access_token_ttl_minutes), session_expires_at)
    payload = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "org": str(org_id),
        "sid": str(session_id),
        "email": email,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "typ": "access",
    }
    return jwt.encode(payload, settings.auth.secret_key, algorithm=ALGORITHM), expires


def _decode(settings: Settings, token: str) -> dict[str, object] | None:
    try:
        payload = jwt.decode(
            token,
            settings.auth.secret_key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=_LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "sub", "org", "sid"]},
        )
    except jwt.PyJWTError:
        return None
    return payload if payload.get("typ") == "access" else None


def decode_access_token(settings: Settings, token: str) -> AccessClaims | None:
    """Signature, expiry, issuer and audience; None when any is wrong (no detail for attackers)."""
    payload = _decode(settings, token)
    if payload is None:
        return None
    try:
        return AccessClaims(
            user_id=UUID(str(payload["sub"])),
            org_id=UUID(str(payload["org"])),
            session_id=UUID(str(payload["sid"])),
            email=str(payload.get("email", "")),
            expires_at=datetime.fromtimestamp(int(payload["exp"]), tz=UTC),  # type: ignore[call-overload]
        )
    except (KeyError, ValueError, TypeError):
        return None


def peek_subject(settings: Settings, token: str) -> str | None:
    """For the rate limiter: 'user:<uuid>' for a well-signed, unexpired token; no DB, no Redis."""
    claims = decode_access_token(settings, token)
    return f"user:{claims.user_id}" if claims else None


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """Secrets carry 256 random bits, so a plain SHA-256 is enough (no slow hash needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def compose(scope_id: UUID, secret: str) -> str:
    """Opaque token `<scope uuid hex>.<secret>`: the scope (organisation or user) selects the RLS
    context for the lookup; a forged scope simply finds nothing."""
    return f"{scope_id.hex}.{secret}"


def split(token: str) -> tuple[UUID, str] | None:
    scope, _, secret = token.partition(".")
    if not secret or len(secret) > 128:
        return None
    try:
        return UUID(hex=scope), secret
    except ValueError:
        return None
