"""What happens to an organisation's integration connections, for other contexts (messaging tells
the office; the Google and QuickBooks packages clean up what they keep per connection)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from spotless.lib.events import Event


class IntegrationNeedsReconnect(Event, frozen=True, kw_only=True):
    """The provider refused the connection's grant (`invalid_grant`: revoked, expired, or the
    password changed). Emitted once per incident: `marked_at` keys it."""

    org_id: UUID
    connection_id: UUID
    provider: str
    owner_user_id: UUID | None
    # Google: the account's email; QuickBooks: the realmId (what the office recognises).
    external_id: str | None
    marked_at: datetime


class IntegrationDisconnected(Event, frozen=True, kw_only=True):
    """A member disconnected it (DELETE /v1/integrations/{provider}), or connecting another
    account/company replaced it: its tokens are wiped and it will not sync again."""

    org_id: UUID
    connection_id: UUID
    provider: str
    owner_user_id: UUID | None
