"""The reminder before each visit: "the same local time the day before", in the organisation's zone
(see `rules.reminder_at` for DST days).

`messaging.send_reminders` (the guides' `email-scan`) runs every few minutes. For each organisation
with reminders on, it finds the confirmed visits starting within the next day whose reminder time
has passed and requests one reminder each, with send key = the visit's start as planned now. So
the scan can run as often as it likes (the deliveries row makes a repeat a no-op), and a visit
moved gets one new reminder for its new start (if that is inside the window, at once).

At send time the reminder is no longer due (skipped, `build_context` answers None) for a visit
cancelled, moved (its start differs from the send key) or put on hold since it was planned."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.messaging.notifications.context import (
    TEMPLATES,
    load_visit,
    sample_visit,
    visit_context,
    with_recipient,
)
from spotless.domain.messaging.notifications.orgs import NotifyingOrg, for_each_organisation, logger
from spotless.domain.messaging.notifications.rules import REMINDER_HORIZON, reminder_due
from spotless.domain.messaging.public import MessageKind, Recipient, register_kind, request_message
from spotless.domain.scheduling.public import visits_starting
from spotless.lib.jobs import job
from spotless.lib.jobs.runtime import get_runtime
from spotless.lib.jobs.scheduler import exclusive_slot

REMINDER = "booking.reminder"
JOB = "messaging.send_reminders"
EVERY = timedelta(minutes=5)


async def _reminder_context(session: AsyncSession, org_id: UUID, params: Mapping[str, Any]) -> dict[str, Any] | None:
    visit = await load_visit(session, params)
    if (
        visit is None
        or visit.status != "confirmed"
        or visit.payment_hold
        or visit.starts_at != datetime.fromisoformat(params["planned_starts_at"])
    ):
        return None
    return await visit_context(session, org_id, visit)


register_kind(
    MessageKind(
        name=REMINDER,
        audience="client",
        transactional=True,
        channels=("email", "sms"),
        template="booking_reminder",
        template_dir=TEMPLATES,
        build_context=_reminder_context,
        sample_context=with_recipient(sample_visit),
    )
)


async def request_due_reminders(session: AsyncSession, org: NotifyingOrg, now: datetime) -> int:
    """Request the reminders due at `now` for one organisation; returns how many were new."""
    if not org.reminders_enabled:
        return 0
    requested = 0
    for visit in await visits_starting(session, now, now + REMINDER_HORIZON, statuses=("confirmed",)):
        if visit.payment_hold or not reminder_due(visit.starts_at, org.zone, now):
            continue
        start = visit.starts_at.astimezone(UTC).isoformat()
        requested += await request_message(
            session,
            org_id=org.org_id,
            kind=REMINDER,
            recipient=Recipient(kind="client", id=visit.client_id),
            subject_type="booking",
            subject_id=visit.id,
            send_key=start,
            params={"booking_id": str(visit.id), "planned_starts_at": start},
        )
    return requested


@job(JOB, every=EVERY, aliases=("email-scan",), max_retries=3, time_limit_ms=10 * 60_000, max_age_ms=3_600_000)
async def send_reminders(slot: str | None = None, now: str | None = None, org_id: str | None = None) -> None:
    rt = get_runtime()
    async with exclusive_slot(rt.sessionmaker, JOB, slot) as mine:
        if not mine:
            return
        moment = datetime.fromisoformat(now) if now else datetime.now(UTC)
        totals: list[int] = []

        async def work(session: AsyncSession, org: NotifyingOrg) -> None:
            totals.append(await request_due_reminders(session, org, moment))

        done, failed = await for_each_organisation(rt, work, only=UUID(org_id) if org_id else None)
        logger.info("reminders: %d requested in %d organisation(s), %d failed", sum(totals), done, failed)
