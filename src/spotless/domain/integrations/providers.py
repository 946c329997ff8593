"""The OAuth 2.0 side of each provider: where to authorise, exchange and revoke, and how."""

from __future__ import annotations

from dataclasses import dataclass, field

from spotless.integration_settings import IntegrationSettings

GOOGLE = "google"
QUICKBOOKS = "quickbooks"
PROVIDER_NAMES = (GOOGLE, QUICKBOOKS)


@dataclass(frozen=True)
class Provider:
    name: str
    authorize_url: str
    token_url: str
    revoke_url: str
    client_id: str
    client_secret: str
    redirect_uri: str
    scopes: tuple[str, ...]
    pkce: bool
    # QuickBooks wants the client in HTTP Basic; Google accepts it in the form body.
    basic_auth: bool
    extra_authorize_params: dict[str, str] = field(default_factory=dict)


def provider(name: str, s: IntegrationSettings) -> Provider:
    if name == GOOGLE:
        return Provider(
            name=GOOGLE,
            authorize_url=s.google_authorize_url,
            token_url=f"{s.google_oauth_base_url}/token",
            revoke_url=f"{s.google_oauth_base_url}/revoke",
            client_id=s.google_oauth_client_id,
            client_secret=s.google_oauth_client_secret,
            redirect_uri=s.google_oauth_redirect_uri,
            scopes=("https://www.googleapis.com/auth/calendar",),
            pkce=True,
            basic_auth=False,
            # A refresh token on every consent (Google sends one only with offline + consent).
            extra_authorize_params={"access_type": "offline", "prompt": "consent"},
        )
    if name == QUICKBOOKS:
        return Provider(
            name=QUICKBOOKS,
            authorize_url=s.quickbooks_authorize_url,
            token_url=f"{s.quickbooks_oauth_base_url}/oauth2/v1/tokens/bearer",
            revoke_url=f"{s.quickbooks_oauth_base_url}/oauth2/v1/tokens/revoke",
            client_id=s.quickbooks_oauth_client_id,
            client_secret=s.quickbooks_oauth_client_secret,
            redirect_uri=s.quickbooks_oauth_redirect_uri,
            scopes=("com.intuit.quickbooks.accounting",),
            pkce=False,  # state only: Intuit does not document PKCE for confidential clients
            basic_auth=True,
        )
    raise KeyError(name)
