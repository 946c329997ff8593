"""Requesting, reading and downloading exports.

A request stores the export row and its job in one transaction (the outbox): 202 means both are
stored, and a rollback leaves neither. The same kind and period already queued or running is
joined, not started twice (`uq_exports_in_flight`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import and_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from spotless.domain.exports.actors import run_export_job
from spotless.domain.exports.models import Export
from spotless.domain.exports.schemas import ExportCreate, ExportRead
from spotless.domain.identity.public import Principal
from spotless.lib.errors import FieldError, Problem, not_found
from spotless.lib.pagination import CursorPage, Keyset
from spotless.lib.storage import Storage, build_storage
from spotless.settings import Settings

# Who may export what: the route needs `exports.run`; the data needs the key that reads it.
KIND_PERMISSION = {
    "bookings": "bookings.view",
    "clients": "contacts.view",
    "invoices": "finance.view",
    "payments": "finance.view",
    "taxes": "finance.view",
    # Everything about one person (profile, invoices, payments): the data-rights key, owners and admins.
    "client_data": "privacy.manage",
}
ZIP_KINDS = ("taxes", "client_data")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "zip": "application/zip"}

EXPORT_ORDER: Keyset[Export] = Keyset("exports", [Export.id], [UUID], descending=True, key=lambda e: (e.id,))


def _filename(kind: str, fmt: str, start: date | None, end: date | None, subject: UUID | None = None) -> str:
    if subject is not None:
        return f"client_data_{subject}.{fmt}"
    stem = "gst_export" if kind == "taxes" else kind
    span = f"_{start:%Y%m%d}_{end:%Y%m%d}" if start and end else ""
    return f"{stem}{span}.{fmt}"


def check_request(principal: Principal, settings: Settings, data: ExportCreate) -> tuple[str, date | None, date | None]:
    needed = KIND_PERMISSION[data.kind]
    if not principal.can(needed):
        raise Problem(
            403, "forbidden", "You do not have permission for this action", f"Exporting {data.kind} needs {needed}."
        )
    fmt = data.format or ("zip" if data.kind in ZIP_KINDS else "csv")
    if (data.kind in ZIP_KINDS) != (fmt == "zip"):
        wanted = "zip" if data.kind in ZIP_KINDS else "csv"
        raise FieldError("format", f"{data.kind} exports are {wanted}", code="unsupported_format")
    if (data.kind == "client_data") != (data.client_id is not None):
        if data.client_id is None:
            raise FieldError("client_id", "client_data exports name the client", code="required")
        raise FieldError("client_id", "only client_data exports name a client", code="not_allowed")
    if data.kind == "client_data":
        if data.period is not None:
            raise FieldError("period", "a client's data is exported whole", code="not_allowed")
        return fmt, None, None
    if data.period is None:
        if data.kind != "clients":
            raise FieldError("period", f"{data.kind} exports need a period", code="required")
        return fmt, None, None
    start, end = data.period.start, data.period.end
    if start > end:
        raise FieldError("period.to", "must not be before period.from", code="period_order")
    if (end - start).days + 1 > settings.exports.max_period_days:
        raise FieldError(
            "period", f"at most {settings.exports.max_period_days} days per export", code="period_too_long"
        )
    return fmt, start, end


async def request_export(
    session: AsyncSession, principal: Principal, settings: Settings, data: ExportCreate
) -> tuple[Export, bool]:
    """The export (a new one, or the one in flight for the same kind and period) and whether it is new."""
    fmt, start, end = check_request(principal, settings, data)
    if data.client_id is not None:
        # Under RLS a client of another organisation is simply not there: 404, never a foreign key error.
        found_client = await session.scalar(
            text("SELECT id FROM client WHERE org_id = :org_id AND id = :id"),
            {"org_id": principal.org_id, "id": data.client_id},
        )
        if found_client is None:
            raise not_found("client")
    new_id = uuid7()
    now = datetime.now(UTC)
    inserted = await session.execute(
        insert(Export)
        .values(
            id=new_id,
            org_id=principal.org_id,
            kind=data.kind,
            format=fmt,
            period_from=start,
            period_to=end,
            subject_id=data.client_id,
            status="queued",
            filename=_filename(data.kind, fmt, start, end, data.client_id),
            content_type=CONTENT_TYPES[fmt],
            requested_by=principal.user_id,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(
            index_elements=["org_id", "kind", "period_from", "period_to", "subject_id"],
            index_where=text("status IN ('queued', 'running')"),
        )
        .returning(Export.id)
    )
    created = inserted.scalar_one_or_none() is not None
    if created:
        run_export_job.enqueue(session, principal.org_id, new_id)
        export = await session.get_one(Export, new_id)
        return export, True
    found = await session.scalar(
        select(Export).where(
            Export.org_id == principal.org_id,
            Export.kind == data.kind,
            Export.period_from.is_not_distinct_from(start),
            Export.period_to.is_not_distinct_from(end),
            Export.subject_id.is_not_distinct_from(data.client_id),
            Export.status.in_(("queued", "running")),
        )
    )
    if found is None:  # finished between the conflict and this read: ask again
        raise Problem(409, "export-conflict", "Conflicts with the current state", "Try again.")
    return found, False


async def get_export(session: AsyncSession, export_id: UUID) -> Export:
    export = await session.get(Export, export_id)
    if export is None:
        raise not_found("export")
    return export


async def list_exports(
    session: AsyncSession, org_id: UUID, *, status: str | None, kind: str | None, limit: int, cursor: str | None
) -> tuple[list[Export], str | None, bool]:
    stmt = select(Export).where(Export.org_id == org_id)
    if status:
        stmt = stmt.where(Export.status == status)
    if kind:
        stmt = stmt.where(Export.kind == kind)
    rows = (await session.scalars(EXPORT_ORDER.apply(stmt, cursor, limit))).all()
    return EXPORT_ORDER.page(rows, limit)


async def latest_for_period(session: AsyncSession, org_id: UUID, kind: str, start: date, end: date) -> Export | None:
    """The newest export of this kind and period that is in flight or still downloadable."""
    return await session.scalar(
        select(Export)
        .where(
            and_(Export.org_id == org_id, Export.kind == kind, Export.period_from == start, Export.period_to == end),
            Export.status.in_(("queued", "running", "succeeded")),
        )
        .order_by(Export.id.desc())
        .limit(1)
    )


async def to_read(export: Export, settings: Settings, base_url: str, storage: Storage | None = None) -> ExportRead:
    return ExportRead.from_model(export, **await download(export, settings, base_url, storage))


async def download(export: Export, settings: Settings, base_url: str, storage: Storage | None = None) -> dict[str, Any]:
    """The short-lived link of a finished export that has not expired (none otherwise)."""
    now = datetime.now(UTC)
    if export.status != "succeeded" or not export.object_key or (export.expires_at and export.expires_at <= now):
        return {}
    ttl = settings.storage.download_ttl_seconds
    if export.expires_at is not None:  # never valid past the export's own expiry
        ttl = max(1, min(ttl, int((export.expires_at - now).total_seconds())))
    storage = storage or build_storage(settings)
    url = await storage.download_url(
        export.object_key, filename=export.filename, content_type=export.content_type, ttl_seconds=ttl
    )
    if url.startswith("/"):
        url = base_url.rstrip("/") + url
    return {"download_url": url, "download_expires_at": now + timedelta(seconds=ttl)}


def page(items: list[ExportRead], cursor: str | None, has_more: bool, limit: int) -> CursorPage[ExportRead]:
    return CursorPage(items=items, next_cursor=cursor, has_more=has_more, limit=limit)
