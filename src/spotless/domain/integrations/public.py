"""What other contexts (integrations.google, integrations.quickbooks, messaging) may use of the
integrations core.

- `access_token(session, connection_id, *, org_id)`: a valid token (refreshed under the row lock,
  committed on its own); raises `NeedsReconnect` (stop, no retry) or `ProviderUnavailable` (retry).
- `claim_due(session, provider, interval_seconds, limit)` / `record_sync(session, connection_id,
  *, ok, error)`: the pollers' cadence.
- `IntegrationConnection` (read its id, org_id, provider, owner_user_id, external_id, status; never
  its sealed columns) and the events `IntegrationNeedsReconnect` / `IntegrationDisconnected`."""

from __future__ import annotations

from spotless.domain.integrations.cadence import DueConnection, claim_due, record_sync
from spotless.domain.integrations.errors import IntegrationError, NeedsReconnect, ProviderRefused, ProviderUnavailable
from spotless.domain.integrations.events import IntegrationDisconnected, IntegrationNeedsReconnect
from spotless.domain.integrations.models import IntegrationConnection
from spotless.domain.integrations.providers import PROVIDER_NAMES, ProviderName
from spotless.domain.integrations.tokens import access_token

GOOGLE = "google"
QUICKBOOKS = "quickbooks"

__all__ = [
    "GOOGLE",
    "PROVIDER_NAMES",
    "QUICKBOOKS",
    "DueConnection",
    "IntegrationConnection",
    "IntegrationDisconnected",
    "IntegrationError",
    "IntegrationNeedsReconnect",
    "NeedsReconnect",
    "ProviderName",
    "ProviderRefused",
    "ProviderUnavailable",
    "access_token",
    "claim_due",
    "record_sync",
]
