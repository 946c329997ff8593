"""The integrations' part of the settings (Google Calendar, QuickBooks Online and the key ring that
seals their tokens); spotless.settings reads it with the rest, kept apart for size.

A provider is configured when its client id and secret are both set; its connect endpoint answers
409 otherwise and its sync jobs skip. The *_BASE_URL variables exist for the local fakes the tests
run (tests/fakes/oauth_server.py); production leaves them unset."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from spotless.lib.sealed import KeyRing, SealedError

# Dev and test only (prod refuses it): kid "dev", 32 bytes that are not secret.
DEV_TOKEN_KEYS = "dev:ZGV2LW9ubHktaW50ZWdyYXRpb24ta2V5LTAxMjM0NTY"
HOW_TO_GENERATE_KEY = (
    "generate one with: python -c 'from spotless.lib.sealed import generate_key; print(generate_key(\"k1\"))'"
)
_URL = r"^https?://[^\s/]+(:\d+)?(/[^\s]*)?$"


def _var(name: str, **bounds: Any) -> Meta:
    """As spotless.settings._var: the bounds, and the variable named in errors."""
    return Meta(extra={"env": name}, **bounds)


class IntegrationSettings(msgspec.Struct, frozen=True, kw_only=True):
    google_client_id: str = ""
    google_client_secret: str = ""
    # The admin page Google sends the browser back to; it posts code + state to our callback.
    google_redirect_uri: str = "http://localhost:3000/settings/integrations/google"
    quickbooks_client_id: str = ""
    quickbooks_client_secret: str = ""
    quickbooks_redirect_uri: str = "http://localhost:3000/settings/integrations/quickbooks"
    # Comma-separated kid:base64url(32 bytes); the first seals, all open (rotation).
    token_keys: str = DEV_TOKEN_KEYS
    # Unset in production: Google's accounts/oauth2 hosts and Intuit's appcenter/oauth hosts.
    google_oauth_base_url: Annotated[str, _var("GOOGLE_OAUTH_BASE_URL", pattern=_URL)] | None = None
    google_api_base_url: Annotated[str, _var("GOOGLE_API_BASE_URL", pattern=_URL)] = "https://www.googleapis.com"
    quickbooks_oauth_base_url: Annotated[str, _var("QUICKBOOKS_OAUTH_BASE_URL", pattern=_URL)] | None = None
    # https://sandbox-quickbooks.api.intuit.com for a sandbox company.
    quickbooks_api_base_url: Annotated[str, _var("QUICKBOOKS_API_BASE_URL", pattern=_URL)] = (
        "https://quickbooks.api.intuit.com"
    )
    # One token-endpoint call's whole budget.
    oauth_timeout_seconds: Annotated[float, _var("INTEGRATION_OAUTH_TIMEOUT_SECONDS", gt=0, le=60)] = 10.0
    # How long a connect link stays usable.
    oauth_state_ttl_seconds: Annotated[int, _var("INTEGRATION_OAUTH_STATE_TTL_SECONDS", ge=60, le=3_600)] = 600
    # An access token expiring within this many seconds is refreshed before use.
    refresh_margin_seconds: Annotated[int, _var("INTEGRATION_REFRESH_MARGIN_SECONDS", ge=0, le=3_000)] = 300
    gcal_sync_interval_seconds: Annotated[int, _var("GCAL_SYNC_INTERVAL_SECONDS", ge=30, le=86_400)] = 300
    gcal_sync_initial_days: Annotated[int, _var("GCAL_SYNC_INITIAL_DAYS", ge=0, le=366)] = 30
    gcal_sync_future_days: Annotated[int, _var("GCAL_SYNC_FUTURE_DAYS", ge=1, le=730)] = 180
    gcal_sync_backfill_minutes: Annotated[int, _var("GCAL_SYNC_BACKFILL_MINUTES", ge=0, le=10_080)] = 60
    # The public https address Google posts watch notifications to; empty = polling only.
    gcal_webhook_url: Annotated[str, _var("GCAL_WEBHOOK_URL", pattern=r"^(https://[^\s]+)?$")] = ""
    gcal_channel_ttl_seconds: Annotated[int, _var("GCAL_CHANNEL_TTL_SECONDS", ge=3_600, le=604_800)] = 604_800
    qbo_sync_interval_seconds: Annotated[int, _var("QBO_SYNC_INTERVAL_SECONDS", ge=30, le=86_400)] = 900
    qbo_sync_initial_days: Annotated[int, _var("QBO_SYNC_INITIAL_DAYS", ge=0, le=30)] = 30
    qbo_sync_backfill_days: Annotated[int, _var("QBO_SYNC_BACKFILL_DAYS", ge=0, le=30)] = 1

    @property
    def google_configured(self) -> bool:
        return bool(self.google_client_id and self.google_client_secret)

    @property
    def quickbooks_configured(self) -> bool:
        return bool(self.quickbooks_client_id and self.quickbooks_client_secret)

    def configured(self, provider: str) -> bool:
        return {"google": self.google_configured, "quickbooks": self.quickbooks_configured}.get(provider, False)

    def key_ring(self) -> KeyRing:
        return _ring(self.token_keys)


_RINGS: dict[str, KeyRing] = {}


def _ring(spec: str) -> KeyRing:
    ring = _RINGS.get(spec)
    if ring is None:
        ring = _RINGS[spec] = KeyRing.parse(spec)
    return ring


def load_integration_settings(env: Any, is_prod: bool) -> IntegrationSettings:
    """From the environment (`env`: settings' reader). A malformed key ring stops start-up here,
    whatever the environment (its message names the entry, never the key)."""
    from spotless.settings import ConfigError

    d = IntegrationSettings()
    keys = env.str("INTEGRATION_TOKEN_KEYS", "" if is_prod else d.token_keys) or ""
    if keys:
        try:
            _ring(keys)
        except SealedError as exc:
            raise ConfigError(str(exc)) from None
    return IntegrationSettings(
        google_client_id=env.str("GOOGLE_OAUTH_CLIENT_ID") or "",
        google_client_secret=env.str("GOOGLE_OAUTH_CLIENT_SECRET") or "",
        google_redirect_uri=env.str("GOOGLE_OAUTH_REDIRECT_URI") or d.google_redirect_uri,
        quickbooks_client_id=env.str("QUICKBOOKS_OAUTH_CLIENT_ID") or "",
        quickbooks_client_secret=env.str("QUICKBOOKS_OAUTH_CLIENT_SECRET") or "",
        quickbooks_redirect_uri=env.str("QUICKBOOKS_OAUTH_REDIRECT_URI") or d.quickbooks_redirect_uri,
        token_keys=keys,
        google_oauth_base_url=_base(env.str("GOOGLE_OAUTH_BASE_URL")),
        google_api_base_url=_base(env.str("GOOGLE_API_BASE_URL")) or d.google_api_base_url,
        quickbooks_oauth_base_url=_base(env.str("QUICKBOOKS_OAUTH_BASE_URL")),
        quickbooks_api_base_url=_base(env.str("QUICKBOOKS_API_BASE_URL")) or d.quickbooks_api_base_url,
        oauth_timeout_seconds=env.float("INTEGRATION_OAUTH_TIMEOUT_SECONDS", d.oauth_timeout_seconds),
        oauth_state_ttl_seconds=env.int("INTEGRATION_OAUTH_STATE_TTL_SECONDS", d.oauth_state_ttl_seconds),
        refresh_margin_seconds=env.int("INTEGRATION_REFRESH_MARGIN_SECONDS", d.refresh_margin_seconds),
        gcal_sync_interval_seconds=env.int("GCAL_SYNC_INTERVAL_SECONDS", d.gcal_sync_interval_seconds),
        gcal_sync_initial_days=env.int("GCAL_SYNC_INITIAL_DAYS", d.gcal_sync_initial_days),
        gcal_sync_future_days=env.int("GCAL_SYNC_FUTURE_DAYS", d.gcal_sync_future_days),
        gcal_sync_backfill_minutes=env.int("GCAL_SYNC_BACKFILL_MINUTES", d.gcal_sync_backfill_minutes),
        gcal_webhook_url=env.str("GCAL_WEBHOOK_URL") or "",
        gcal_channel_ttl_seconds=env.int("GCAL_CHANNEL_TTL_SECONDS", d.gcal_channel_ttl_seconds),
        qbo_sync_interval_seconds=env.int("QBO_SYNC_INTERVAL_SECONDS", d.qbo_sync_interval_seconds),
        qbo_sync_initial_days=env.int("QBO_SYNC_INITIAL_DAYS", d.qbo_sync_initial_days),
        qbo_sync_backfill_days=env.int("QBO_SYNC_BACKFILL_DAYS", d.qbo_sync_backfill_days),
    )


def _base(value: str | None) -> str | None:
    return value.rstrip("/") if value else None


def integration_prod_problems(
    integrations: IntegrationSettings,
    secret_weakness: Callable[[str], str | None],
    is_local_url: Callable[[str], bool],
    allow_loopback: set[str] | frozenset[str],
) -> list[str]:
    """With a provider configured, its tokens will be stored: the key ring must be real and strong.
    A half-configured provider (id without secret) is named too: it would silently stay off."""
    problems: list[str] = []
    for name, client_id, secret in (
        ("GOOGLE", integrations.google_client_id, integrations.google_client_secret),
        ("QUICKBOOKS", integrations.quickbooks_client_id, integrations.quickbooks_client_secret),
    ):
        if bool(client_id) != bool(secret):
            problems.append(f"{name}_OAUTH_CLIENT_ID and {name}_OAUTH_CLIENT_SECRET must be set together")
    for name, redirect in (
        ("GOOGLE_OAUTH_REDIRECT_URI", integrations.google_redirect_uri if integrations.google_configured else ""),
        (
            "QUICKBOOKS_OAUTH_REDIRECT_URI",
            integrations.quickbooks_redirect_uri if integrations.quickbooks_configured else "",
        ),
    ):
        if redirect and not redirect.startswith("https://"):
            problems.append(f"{name} must be an https:// address in prod")
    for name, url in (
        ("GOOGLE_OAUTH_BASE_URL", integrations.google_oauth_base_url),
        ("GOOGLE_API_BASE_URL", integrations.google_api_base_url),
        ("QUICKBOOKS_OAUTH_BASE_URL", integrations.quickbooks_oauth_base_url),
        ("QUICKBOOKS_API_BASE_URL", integrations.quickbooks_api_base_url),
    ):
        if url and name not in allow_loopback and is_local_url(url):
            problems.append(f"{name} points at this machine; it is for the tests' fakes only")
    if not (integrations.google_configured or integrations.quickbooks_configured):
        return problems
    if not integrations.token_keys:
        problems.append(
            f"INTEGRATION_TOKEN_KEYS is required in prod when an integration is configured; {HOW_TO_GENERATE_KEY}"
        )
        return problems
    ring = integrations.key_ring()
    if DEV_TOKEN_KEYS.split(":", 1)[1] in integrations.token_keys:
        problems.append(f"INTEGRATION_TOKEN_KEYS lists the development key; {HOW_TO_GENERATE_KEY}")
    for kid, key in ring.keys:
        # 32 random bytes have ~28 distinct values and pass as hex; a typed or patterned key does not.
        if secret_weakness(key.hex()) or len(set(key)) < 16:
            problems.append(f"INTEGRATION_TOKEN_KEYS key {kid!r} is not random enough; {HOW_TO_GENERATE_KEY}")
    return problems
