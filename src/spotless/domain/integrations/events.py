"""What happens to integration connections, for the provider sync packages to react to."""

from __future__ import annotations

from uuid import UUID

from spotless.lib.events import Event


class IntegrationDisconnected(Event, frozen=True, kw_only=True):
    """Emitted in the disconnect's transaction: subscribers drop what the connection synced
    (busy blocks, watch channels). Its tokens are wiped already."""

    org_id: UUID
    connection_id: UUID
    provider: str
