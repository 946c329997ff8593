"""Integrations' exceptions that other contexts may catch."""

from __future__ import annotations

from uuid import UUID


class NeedsReconnect(Exception):
    """The provider refused the grant (revoked, expired): the connection is marked needs_reconnect
    (committed already) and the office told; callers stop syncing it without retrying."""

    def __init__(self, connection_id: UUID) -> None:
        super().__init__(f"integration connection {connection_id} needs to be reconnected")
        self.connection_id = connection_id
