"""What the integrations core raises to the contexts that call it (Google and QuickBooks sync)."""

from __future__ import annotations

from uuid import UUID


class IntegrationError(Exception):
    """Base. Messages name the connection and what failed, never a token."""


class NeedsReconnect(IntegrationError):
    """The connection cannot get a token until someone connects again (its grant was revoked or
    expired, or it was disconnected). Its status is already stored and the office told: stop
    working on this connection and do not retry."""

    def __init__(self, connection_id: UUID, status: str) -> None:
        super().__init__(f"integration connection {connection_id} is {status}: it needs reconnecting")
        self.connection_id = connection_id
        self.status = status


class ProviderUnavailable(IntegrationError):
    """The provider's token endpoint timed out, failed to connect or answered 5xx/429: nothing was
    changed; retry later (a job's own retries with back-off)."""


class ProviderRefused(IntegrationError):
    """The token endpoint refused us for a reason that is not the grant's (invalid_client, a bad
    request): a configuration problem for an operator, not a reason to drop the connection."""
