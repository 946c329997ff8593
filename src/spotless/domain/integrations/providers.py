"""The two OAuth 2.0 providers as our client needs them: endpoints, scopes, PKCE, extra parameters.

Google (OpenID Connect discovery, accounts.google.com): PKCE S256 supported; `access_type=offline`
and `prompt=consent` so every connect returns a refresh token. Intuit's web-server flow documents
`state` but not PKCE, so QuickBooks runs with a state only (single use, bound to the member);
Intuit rotates refresh tokens (about daily) and returns the company as `realmId` on the redirect."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from spotless.integration_settings import IntegrationSettings

ProviderName = Literal["google", "quickbooks"]
PROVIDER_NAMES: tuple[ProviderName, ...] = ("google", "quickbooks")

GOOGLE_SCOPES = (
    "openid",
    "email",
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.freebusy",
)
QUICKBOOKS_SCOPES = ("com.intuit.quickbooks.accounting",)


@dataclass(frozen=True)
class Provider:
    name: ProviderName
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    authorize_url: str
    token_url: str
    revoke_url: str
    scopes: tuple[str, ...]
    pkce: bool
    extra_authorize_params: tuple[tuple[str, str], ...] = ()
    # A member may connect their own account (Google calendar); otherwise organisation-wide only.
    per_user: bool = False
    # Scopes the sync cannot work without: a consent screen that let the member untick one
    # (Google's granular consent) makes the connect fail instead of a connection that cannot sync.
    required_scopes: tuple[str, ...] = ()

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)


def provider(settings: IntegrationSettings, name: str) -> Provider:
    if name == "google":
        base = settings.google_oauth_base_url
        return Provider(
            name="google",
            client_id=settings.google_client_id,
            client_secret=settings.google_client_secret,
            redirect_uri=settings.google_redirect_uri,
            authorize_url=f"{base}/o/oauth2/v2/auth" if base else "https://accounts.google.com/o/oauth2/v2/auth",
            token_url=f"{base}/token" if base else "https://oauth2.googleapis.com/token",
            revoke_url=f"{base}/revoke" if base else "https://oauth2.googleapis.com/revoke",
            scopes=GOOGLE_SCOPES,
            required_scopes=GOOGLE_SCOPES[2:],
            pkce=True,
            extra_authorize_params=(
                ("access_type", "offline"),
                ("prompt", "consent"),
                ("include_granted_scopes", "true"),
            ),
            per_user=True,
        )
    if name == "quickbooks":
        base = settings.quickbooks_oauth_base_url
        return Provider(
            name="quickbooks",
            client_id=settings.quickbooks_client_id,
            client_secret=settings.quickbooks_client_secret,
            redirect_uri=settings.quickbooks_redirect_uri,
            authorize_url=f"{base}/connect/oauth2" if base else "https://appcenter.intuit.com/connect/oauth2",
            token_url=f"{base}/oauth2/v1/tokens/bearer"
            if base
            else "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
            revoke_url=f"{base}/v2/oauth2/tokens/revoke"
            if base
            else "https://developer.api.intuit.com/v2/oauth2/tokens/revoke",
            scopes=QUICKBOOKS_SCOPES,
            required_scopes=QUICKBOOKS_SCOPES,
            pkce=False,
        )
    raise KeyError(name)
