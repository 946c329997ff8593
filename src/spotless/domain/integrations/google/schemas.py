"""Bodies of the Google Calendar endpoints."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from spotless.lib.schema import Output


class CalendarConflictRead(Output):
    """A visit that busy time in its cleaner's own calendar now overlaps. Only times are shown:
    what the cleaner is doing then stays in their calendar."""

    id: UUID
    booking_id: UUID
    worker_id: UUID
    booking_starts_at: datetime
    booking_ends_at: datetime
    busy_starts_at: datetime
    busy_ends_at: datetime
    detected_at: datetime


class NotificationAck(Output):
    received: bool
    duplicate: bool = False
