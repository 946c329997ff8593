"""What other contexts (the provider sync packages) may use of the integrations core."""

from spotless.domain.integrations.cadence import DueConnection, claim_due, record_sync
from spotless.domain.integrations.errors import NeedsReconnect
from spotless.domain.integrations.models import IntegrationConnection
from spotless.domain.integrations.providers import GOOGLE, PROVIDER_NAMES, QUICKBOOKS
from spotless.domain.integrations.tokens import RefreshFailed, access_token

__all__ = [
    "GOOGLE",
    "PROVIDER_NAMES",
    "QUICKBOOKS",
    "DueConnection",
    "IntegrationConnection",
    "NeedsReconnect",
    "RefreshFailed",
    "access_token",
    "claim_due",
    "record_sync",
]
