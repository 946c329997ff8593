"""Checklists: a service's template (office) and a job's copy (field).

A job's checklist is copied from its service's template when it is first opened (by the cleaner,
or the office looking at the job), not when the booking is made: series materialise bookings weeks
ahead, and the office expects a template edited today to reach next week's visits. Once copied it
is frozen, so what a cleaner ticked keeps the wording they saw. The copy is one
`INSERT ... SELECT ... ON CONFLICT DO NOTHING` on (org, booking, position): two devices opening the
job at once make one checklist."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import delete, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.catalog.public import require_service
from spotless.domain.evidence.models import ChecklistTemplateItem, JobChecklistItem
from spotless.domain.evidence.schemas import (
    ChecklistItemRead,
    ChecklistTemplateItemRead,
    ChecklistTemplateRead,
    JobChecklistRead,
)
from spotless.domain.scheduling.public import FieldJob
from spotless.lib.errors import not_found


async def template(session: AsyncSession, service_id: UUID) -> ChecklistTemplateRead:
    await require_service(session, service_id)
    items = await session.scalars(
        select(ChecklistTemplateItem)
        .where(ChecklistTemplateItem.service_id == service_id)
        .order_by(ChecklistTemplateItem.position)
    )
    return ChecklistTemplateRead(
        service_id=service_id,
        items=[ChecklistTemplateItemRead(id=i.id, position=i.position, label=i.label) for i in items],
    )


async def replace_template(
    session: AsyncSession, org_id: UUID, service_id: UUID, labels: list[str]
) -> ChecklistTemplateRead:
    # The service row's lock orders two concurrent replacements; the second sees the first's items.
    await require_service(session, service_id, for_update=True)
    await session.execute(delete(ChecklistTemplateItem).where(ChecklistTemplateItem.service_id == service_id))
    session.add_all(
        ChecklistTemplateItem(org_id=org_id, service_id=service_id, position=n, label=label)
        for n, label in enumerate(labels)
    )
    await session.flush()
    return await template(session, service_id)


async def open_job_checklist(session: AsyncSession, booking: FieldJob) -> JobChecklistRead:
    exists = await session.scalar(select(JobChecklistItem.id).where(JobChecklistItem.booking_id == booking.id).limit(1))
    if exists is None:
        now = datetime.now(UTC)
        source = select(
            func.gen_random_uuid(),
            literal(booking.org_id),
            literal(booking.id),
            ChecklistTemplateItem.position,
            ChecklistTemplateItem.label,
            literal(now),
            literal(now),
        ).where(ChecklistTemplateItem.service_id == booking.service_id)
        await session.execute(
            insert(JobChecklistItem)
            .from_select(["id", "org_id", "booking_id", "position", "label", "created_at", "updated_at"], source)
            .on_conflict_do_nothing(index_elements=["org_id", "booking_id", "position"])
        )
    return await job_checklist(session, booking.id)


async def job_checklist(session: AsyncSession, booking_id: UUID) -> JobChecklistRead:
    items = list(
        await session.scalars(
            select(JobChecklistItem)
            .where(JobChecklistItem.booking_id == booking_id)
            .order_by(JobChecklistItem.position)
            .execution_options(populate_existing=True)
        )
    )
    reads = [
        ChecklistItemRead(
            id=i.id,
            position=i.position,
            label=i.label,
            done=i.done_at is not None,
            done_at=i.done_at,
            done_by_user_id=i.done_by_user_id,
            done_by_worker_id=i.done_by_worker_id,
        )
        for i in items
    ]
    return JobChecklistRead(booking_id=booking_id, items=reads, done=sum(r.done for r in reads), total=len(reads))


async def tick(
    session: AsyncSession, booking: FieldJob, item_id: UUID, done: bool, *, user_id: UUID, worker_id: UUID
) -> JobChecklistRead:
    item = await session.scalar(
        select(JobChecklistItem)
        .where(JobChecklistItem.id == item_id, JobChecklistItem.booking_id == booking.id)
        .with_for_update()
    )
    if item is None:
        raise not_found("checklist item")
    # Ticking a ticked item keeps who ticked it first (a retried request changes nothing).
    if done and item.done_at is None:
        item.done_at, item.done_by_user_id, item.done_by_worker_id = datetime.now(UTC), user_id, worker_id
    elif not done:
        item.done_at = item.done_by_user_id = item.done_by_worker_id = None
    await session.flush()
    return await job_checklist(session, booking.id)
