"""Bodies of /v1/exports, the tax export and the dead-letter queue endpoints."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from spotless.domain.exports.models import Export
from spotless.lib.schema import Day, Input, Output

ExportKind = Literal["bookings", "clients", "invoices", "payments", "taxes", "client_data"]
ExportStatus = Literal["queued", "running", "succeeded", "failed", "expired"]


class ExportPeriod(Input, rename={"start": "from", "end": "to"}):
    """Inclusive local dates of the organisation (`{"from": "2026-01-01", "to": "2026-03-31"}`)."""

    start: Day
    end: Day


class ExportCreate(Input):
    kind: ExportKind
    # Every kind but `clients` (all clients when omitted, else those created in it) needs one.
    period: ExportPeriod | None = None
    # `csv` for the ledgers; the tax export is a `zip` of CSVs (the default for it).
    format: Literal["csv", "zip"] | None = None
    # `client_data` only: the client whose data is exported (a ZIP of JSON, no period).
    client_id: UUID | None = None


class ExportPeriodRead(Output, rename={"start": "from", "end": "to"}):
    start: date
    end: date


class ExportProgress(Output):
    done: int
    total: int | None


class ExportRead(Output):
    id: UUID
    kind: ExportKind
    format: Literal["csv", "zip"]
    period: ExportPeriodRead | None
    status: ExportStatus
    progress: ExportProgress
    filename: str
    size_bytes: int | None
    attempts: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None
    # Set while the export can be downloaded: a short-lived signed link (STORAGE_DOWNLOAD_TTL_SECONDS).
    download_url: str | None = None
    download_expires_at: datetime | None = None
    client_id: UUID | None = None

    @classmethod
    def from_model(cls, row: Export, **download: Any) -> ExportRead:
        return cls(
            id=row.id,
            kind=row.kind,  # type: ignore[arg-type]
            format=row.format,  # type: ignore[arg-type]
            period=(
                ExportPeriodRead(start=row.period_from, end=row.period_to)
                if row.period_from and row.period_to
                else None
            ),
            status=row.status,  # type: ignore[arg-type]
            progress=ExportProgress(done=row.progress_done, total=row.progress_total),
            filename=row.filename,
            size_bytes=row.size_bytes,
            attempts=row.attempts,
            error=row.error,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            expires_at=row.expires_at,
            client_id=row.subject_id,
            **download,
        )


DlqKind = Literal["all", "outbox", "export"]


class DeadJob(Output):
    """A dead job of the caller's organisation: a background job that ran out of retries
    (`kind: outbox`, id = its dead-letter id) or a failed export (`kind: export`, id = the export)."""

    kind: Literal["outbox", "export"]
    id: str
    name: str
    error: str | None
    dead_at: datetime | None


class DeadLetters(Output):
    outbox_dead_count: int
    export_dead_count: int
    items: list[DeadJob] = msgspec.field(default_factory=list)


DeadJobId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[0-9A-Za-z-]+$",
        description="a dead-letter id or an export id: letters, digits and dashes",
    ),
]


class DlqReplay(Input):
    kind: Literal["outbox", "export"]
    ids: Annotated[list[DeadJobId], Meta(min_length=1, max_length=100)]


class DlqReplayed(Output):
    replayed: int
    # Ids that are not dead jobs of this organisation (or no longer dead).
    not_found: list[str]
