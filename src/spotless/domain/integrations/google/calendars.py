"""Our row per connected Google calendar, made on first use from the core's connection."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from spotless.domain.integrations.google.models import GcalCalendar
from spotless.domain.integrations.public import IntegrationConnection
from spotless.domain.workforce.public import worker_id_of_user

PROVIDER = "google"
ACTIVE = "active"
PRIMARY = "primary"  # the connected account's own calendar


async def active_connections(session: AsyncSession) -> list[IntegrationConnection]:
    """The organisation's (RLS) active Google connections."""
    found = await session.scalars(
        select(IntegrationConnection).where(
            IntegrationConnection.provider == PROVIDER, IntegrationConnection.status == ACTIVE
        )
    )
    return list(found)


async def connection_of(session: AsyncSession, connection_id: UUID) -> IntegrationConnection | None:
    return await session.scalar(select(IntegrationConnection).where(IntegrationConnection.id == connection_id))


async def calendar_for(
    session: AsyncSession, connection: IntegrationConnection, *, for_update: bool = False, skip_locked: bool = False
) -> GcalCalendar | None:
    """The calendar row of `connection`, made if missing (race-safe). A cleaner's own connection
    carries their worker id (their busy time comes back); the organisation's has none. With
    `skip_locked`, None when another worker holds the row (a sync of it is running)."""
    worker_id = await worker_id_of_user(session, connection.owner_user_id) if connection.owner_user_id else None
    await session.execute(
        pg_insert(GcalCalendar)
        .values(
            id=uuid7(),
            org_id=connection.org_id,
            connection_id=connection.id,
            worker_id=worker_id,
            calendar_id=PRIMARY,
            created_at=datetime.now(UTC),
            updated_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(constraint="uq_gcal_calendars_connection")
    )
    stmt = select(GcalCalendar).where(GcalCalendar.connection_id == connection.id)
    if for_update:
        stmt = stmt.with_for_update(skip_locked=skip_locked)
    calendar = await session.scalar(stmt.execution_options(populate_existing=True))
    if calendar is not None and calendar.worker_id != worker_id and worker_id is not None:
        calendar.worker_id = worker_id  # the login got its worker profile after connecting
    return calendar


async def calendars_by_id(session: AsyncSession, ids: list[UUID]) -> list[GcalCalendar]:
    if not ids:
        return []
    return list(await session.scalars(select(GcalCalendar).where(GcalCalendar.id.in_(ids))))
