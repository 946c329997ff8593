"""Request and response bodies of the retention routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

from spotless.lib.schema import Input, Output

Days = Annotated[int, Meta(ge=1, le=3660, description="days, 1 to 3660")]


class RetentionSettingsRead(Output):
    message_body_days: int
    export_days: int
    photo_days: int
    # Never removed, whatever the settings: accounting law keeps invoices and the ledger.
    invoices_kept: bool = True


class RetentionSettingsUpdate(Input):
    """Only the fields sent change."""

    message_body_days: Days | UnsetType = UNSET
    export_days: Days | UnsetType = UNSET
    photo_days: Days | UnsetType = UNSET


class ErasureBlocker(Output):
    kind: str  # unpaid_invoice | future_booking | active_series
    id: UUID


class ClientErasureRead(Output):
    client_id: UUID
    erased: bool
    erased_at: datetime | None = None
    erased_by: UUID | None = None
    # What the erasure emptied, per kind of record (rows).
    counts: dict[str, int] = msgspec.field(default_factory=dict)


class RetentionCleanupQueued(Output):
    job_id: UUID
