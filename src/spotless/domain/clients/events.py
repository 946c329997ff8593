"""What happens to a client, for other contexts to react to (stop reminders, close open work)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from spotless.lib.events import Event


class ClientArchived(Event, frozen=True, kw_only=True):
    org_id: UUID
    client_id: UUID
    archived_at: datetime
