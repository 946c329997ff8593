"""Rate-limit policies per route class, from settings."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from spotless.settings import ConfigError, RateLimitSettings

ROUTE_CLASSES = ("default", "auth", "admin", "public", "expensive", "exempt")
ACCOUNT_BUCKET = "auth-account"
ACCOUNT_BUCKET_FACTOR = 5  # the per-account quota, in multiples of one address's "auth" quota
WINDOW_SECONDS = 60


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    """`limit` requests per `window_seconds` sustained, at most `burst` of them at once.

    GCRA: each request costs `window / limit`; a caller idle long enough holds `burst` requests.
    `key_by="caller"` partitions by the authenticated principal when there is one (else the client
    address); `key_by="ip"` always by the client address."""

    name: str
    limit: int
    burst: int
    window_seconds: int = WINDOW_SECONDS
    key_by: Literal["caller", "ip"] = "caller"

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    @property
    def interval_us(self) -> int:
        return max(1, (self.window_seconds * 1_000_000) // max(1, self.limit))

    @property
    def header(self) -> bytes:
        """RateLimit-Policy item (draft-ietf-httpapi-ratelimit-headers): `"default";q=120;w=60`."""
        return f'"{self.name}";q={self.limit};w={self.window_seconds}'.encode("latin-1")


def _policy(name: str, limit: int, burst: int | None = None, key_by: Literal["caller", "ip"] = "caller") -> Policy:
    # A burst of 0 (or none given) means the whole window's quota may be spent at once.
    effective_burst = burst if burst and burst > 0 else limit
    return Policy(name=name, limit=limit, burst=effective_burst, key_by=key_by)


def policies_from_settings(settings: RateLimitSettings) -> dict[str, Policy]:
    """One policy per route class (`exempt` has none) plus the per-account login bucket.

    A per-minute value of 0 switches that class off."""
    return {
        "default": _policy("default", settings.per_minute, settings.burst),
        # Sign-in, refresh, password reset: per address here; per account by the login handler.
        "auth": _policy("auth", settings.auth_per_minute, key_by="ip"),
        # Per account from all addresses: generous, so one address's whole "auth" quota cannot
        # lock the account's owner out; it bounds guesses spread over many addresses.
        ACCOUNT_BUCKET: _policy(ACCOUNT_BUCKET, settings.auth_per_minute * ACCOUNT_BUCKET_FACTOR, key_by="ip"),
        "admin": _policy("admin", settings.admin_action_per_minute),
        "public": _policy("public", settings.public_per_minute, key_by="ip"),
        "expensive": _policy("expensive", settings.expensive_per_minute),
    }


def route_class(opt: dict[str, Any] | None) -> str:
    return str((opt or {}).get("rate_limit", "default"))


def check_route_classes(app: Any) -> None:
    """Refuse to start with a typo in `opt["rate_limit"]`: it would silently fall to the default."""
    handlers = [h for route in app.routes for h in getattr(route, "route_handlers", None) or [route.route_handler]]
    for handler in handlers:
        name = route_class(getattr(handler, "opt", None))
        if name not in ROUTE_CLASSES:
            raise ConfigError(
                f"route {getattr(handler, 'handler_name', handler)!r} has opt rate_limit={name!r}; "
                f"expected one of {', '.join(ROUTE_CLASSES)}"
            )
