"""Integrations' part of the settings (Google Calendar, QuickBooks, the token key ring); kept apart for size."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from spotless.lib.sealed import KeyRingError, parse_key_ring

_URL = r"^https?://[^\s/]+(:\d+)?(/[^\s]*)?$"
# Dev/test only (load refuses it in prod): lets a developer connect a provider without a key ring.
DEV_TOKEN_KEYS = "dev:ZGV2LW9ubHktaW50ZWdyYXRpb24ta2V5LTMyLWJ5dGU"


def _var(name: str, **bounds: Any) -> Meta:
    """As settings' `_var`: the bounds and the variable `load_settings` names in its errors."""
    return Meta(extra={"env": name}, **bounds)


class IntegrationSettings(msgspec.Struct, frozen=True, kw_only=True):
    # `kid:base64url(32 bytes)`, comma separated; the first seals, all unseal (spotless.lib.sealed).
    token_keys: str = DEV_TOKEN_KEYS
    google_oauth_client_id: str = ""
    google_oauth_client_secret: str = ""
    google_oauth_redirect_uri: str = "http://localhost:3000/settings/integrations/google"
    quickbooks_oauth_client_id: str = ""
    quickbooks_oauth_client_secret: str = ""
    quickbooks_oauth_redirect_uri: str = "http://localhost:3000/settings/integrations/quickbooks"
    # Tests point these at the local fakes (tests/fakes/).
    google_oauth_base_url: Annotated[str, _var("GOOGLE_OAUTH_BASE_URL", pattern=_URL)] = "https://oauth2.googleapis.com"
    google_authorize_url: Annotated[str, _var("GOOGLE_AUTHORIZE_URL", pattern=_URL)] = (
        "https://accounts.google.com/o/oauth2/v2/auth"
    )
    google_api_base_url: Annotated[str, _var("GOOGLE_API_BASE_URL", pattern=_URL)] = "https://www.googleapis.com"
    quickbooks_oauth_base_url: Annotated[str, _var("QUICKBOOKS_OAUTH_BASE_URL", pattern=_URL)] = (
        "https://oauth.platform.intuit.com"
    )
    quickbooks_authorize_url: Annotated[str, _var("QUICKBOOKS_AUTHORIZE_URL", pattern=_URL)] = (
        "https://appcenter.intuit.com/connect/oauth2"
    )
    quickbooks_api_base_url: Annotated[str, _var("QUICKBOOKS_API_BASE_URL", pattern=_URL)] = (
        "https://quickbooks.api.intuit.com"
    )
    gcal_sync_interval_seconds: Annotated[int, _var("GCAL_SYNC_INTERVAL_SECONDS", ge=30, le=86_400)] = 300
    gcal_sync_initial_days: Annotated[int, _var("GCAL_SYNC_INITIAL_DAYS", ge=0, le=365)] = 30
    gcal_sync_future_days: Annotated[int, _var("GCAL_SYNC_FUTURE_DAYS", ge=1, le=730)] = 180
    gcal_sync_backfill_minutes: Annotated[int, _var("GCAL_SYNC_BACKFILL_MINUTES", ge=0, le=10_080)] = 60
    # Public https address Google posts watch notifications to; empty = no channels, polling only.
    gcal_webhook_url: Annotated[str, _var("GCAL_WEBHOOK_URL", pattern=r"^(https?://[^\s]+)?$")] = ""
    gcal_channel_ttl_seconds: Annotated[int, _var("GCAL_CHANNEL_TTL_SECONDS", ge=3_600, le=604_800)] = 604_800
    qbo_sync_interval_seconds: Annotated[int, _var("QBO_SYNC_INTERVAL_SECONDS", ge=60, le=86_400)] = 900
    qbo_sync_initial_days: Annotated[int, _var("QBO_SYNC_INITIAL_DAYS", ge=0, le=3_660)] = 90
    qbo_sync_backfill_days: Annotated[int, _var("QBO_SYNC_BACKFILL_DAYS", ge=0, le=365)] = 2

    @property
    def google_configured(self) -> bool:
        return bool(self.google_oauth_client_id)

    @property
    def quickbooks_configured(self) -> bool:
        return bool(self.quickbooks_oauth_client_id)


def load_integration_settings(env: Any, is_prod: bool) -> IntegrationSettings:
    """From the environment (`env`: settings' reader); a malformed key ring stops start-up at once."""
    d = IntegrationSettings()

    def url(name: str, default: str) -> str:
        return (env.str(name) or default).rstrip("/")

    token_keys = env.str("INTEGRATION_TOKEN_KEYS") or ("" if is_prod else d.token_keys)
    if token_keys:
        try:
            parse_key_ring(token_keys)
        except KeyRingError as exc:
            from spotless.settings import ConfigError  # settings imports this module first

            raise ConfigError(str(exc)) from None
    return IntegrationSettings(
        token_keys=token_keys,
        google_oauth_client_id=env.str("GOOGLE_OAUTH_CLIENT_ID") or "",
        google_oauth_client_secret=env.str("GOOGLE_OAUTH_CLIENT_SECRET") or "",
        google_oauth_redirect_uri=env.str("GOOGLE_OAUTH_REDIRECT_URI") or d.google_oauth_redirect_uri,
        quickbooks_oauth_client_id=env.str("QUICKBOOKS_OAUTH_CLIENT_ID") or "",
        quickbooks_oauth_client_secret=env.str("QUICKBOOKS_OAUTH_CLIENT_SECRET") or "",
        quickbooks_oauth_redirect_uri=env.str("QUICKBOOKS_OAUTH_REDIRECT_URI") or d.quickbooks_oauth_redirect_uri,
        google_oauth_base_url=url("GOOGLE_OAUTH_BASE_URL", d.google_oauth_base_url),
        google_authorize_url=url("GOOGLE_AUTHORIZE_URL", d.google_authorize_url),
        google_api_base_url=url("GOOGLE_API_BASE_URL", d.google_api_base_url),
        quickbooks_oauth_base_url=url("QUICKBOOKS_OAUTH_BASE_URL", d.quickbooks_oauth_base_url),
        quickbooks_authorize_url=url("QUICKBOOKS_AUTHORIZE_URL", d.quickbooks_authorize_url),
        quickbooks_api_base_url=url("QUICKBOOKS_API_BASE_URL", d.quickbooks_api_base_url),
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


def integration_prod_problems(s: IntegrationSettings) -> list[str]:
    """A configured provider needs its secret and a real key ring (32-byte keys, not the dev one)."""
    problems: list[str] = []
    providers = {
        "GOOGLE": (s.google_oauth_client_id, s.google_oauth_client_secret, s.google_oauth_redirect_uri),
        "QUICKBOOKS": (s.quickbooks_oauth_client_id, s.quickbooks_oauth_client_secret, s.quickbooks_oauth_redirect_uri),
    }
    configured = [name for name, (client_id, _, _) in providers.items() if client_id]
    for name in configured:
        _, secret, redirect = providers[name]
        if not secret:
            problems.append(f"{name}_OAUTH_CLIENT_SECRET is required in prod when {name}_OAUTH_CLIENT_ID is set")
        if not redirect.startswith("https://"):
            problems.append(f"{name}_OAUTH_REDIRECT_URI must be an https address in prod")
    if configured:
        if not s.token_keys:
            problems.append(
                "INTEGRATION_TOKEN_KEYS is required in prod when an integration is configured; generate one with: "
                "python -c 'from spotless.lib.sealed import generate_key_entry; print(generate_key_entry(\"k1\"))'"
            )
        elif DEV_TOKEN_KEYS.split(":", 1)[1] in s.token_keys:
            problems.append("INTEGRATION_TOKEN_KEYS holds the development key; generate a real one")
    return problems
