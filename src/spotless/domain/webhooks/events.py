"""What happens to an organisation's webhook endpoints, for other contexts (messaging tells the owner)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from spotless.lib.events import Event


class EndpointDisabled(Event, frozen=True, kw_only=True):
    """An endpoint stopped receiving: it answered 410 Gone, or kept failing for
    WEBHOOK_DISABLE_AFTER_HOURS without a success. `reason` is `gone` or `failing`."""

    org_id: UUID
    endpoint_id: UUID
    url: str
    reason: str
    disabled_at: datetime
