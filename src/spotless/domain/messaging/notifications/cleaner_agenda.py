"""To cleaners: tomorrow's jobs at the local time the organisation chose (`notification_settings.
agenda_at`, 18:00 unless set), and word of a change to one of today's jobs.

`messaging.send_agendas` runs every few minutes; once an organisation's local time has passed its
agenda time, it requests one agenda per cleaner with jobs tomorrow, send key = tomorrow's local
date, so every later run that day is a no-op. What the agenda lists is read when it is sent."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.clients.public import billing_contact
from spotless.domain.messaging.notifications.context import (
    TEMPLATES,
    UPCOMING,
    address_line,
    local_when,
    sample_visit,
    uuid_param,
    visit_context,
    with_recipient,
    zone_of,
)
from spotless.domain.messaging.notifications.orgs import NotifyingOrg, for_each_organisation, logger
from spotless.domain.messaging.notifications.rules import agenda_date, local_day_bounds, local_today
from spotless.domain.messaging.public import MessageKind, Recipient, register_kind, request_message
from spotless.domain.scheduling.events import BookingCancelled, BookingRescheduled
from spotless.domain.scheduling.public import visit_notice, visits_starting
from spotless.lib.events import subscriber
from spotless.lib.jobs import job
from spotless.lib.jobs.runtime import get_runtime
from spotless.lib.jobs.scheduler import exclusive_slot

AGENDA = "cleaner.agenda"
CHANGED = "cleaner.job_changed"
JOB = "messaging.send_agendas"
EVERY = timedelta(minutes=5)


async def _agenda_context(session: AsyncSession, org_id: UUID, params: Mapping[str, Any]) -> dict[str, Any] | None:
    worker_id = uuid_param(params, "worker_id")
    day = date.fromisoformat(params["date"])
    zone = await zone_of(session, org_id)
    start, end = local_day_bounds(day, zone)
    jobs = [v for v in await visits_starting(session, start, end, statuses=UPCOMING) if worker_id in v.worker_ids]
    if not jobs:
        return None  # nothing left to do that day
    listed = []
    for visit in jobs:
        contact = await billing_contact(session, visit.client_id, visit.address_id)
        listed.append(
            {
                "time": f"{visit.starts_at.astimezone(zone):%H:%M}",
                "ends_time": f"{visit.ends_at.astimezone(zone):%H:%M}",
                "client_name": contact.name if contact else "",
                "address": address_line(contact.address if contact else None),
            }
        )
    return {"date": local_when(start, zone)["date"], "jobs": listed}


def _sample_agenda() -> dict[str, Any]:
    return {
        "date": "Tuesday 10 March 2026",
        "jobs": [
            {"time": "09:00", "ends_time": "12:00", "client_name": "Alex Martin", "address": "12 Queen St W, Toronto"},
            {"time": "13:30", "ends_time": "15:30", "client_name": "Jo Chen", "address": "4 King St E, Toronto"},
        ],
    }


async def _changed_context(session: AsyncSession, org_id: UUID, params: Mapping[str, Any]) -> dict[str, Any] | None:
    visit = await visit_notice(session, uuid_param(params, "booking_id"))
    if visit is None:
        return None
    context = await visit_context(session, org_id, visit)
    context["change"] = params["change"]
    context["previous"] = local_when(
        datetime.fromisoformat(params["previous_starts_at"]), await zone_of(session, org_id)
    )
    return context


def _sample_changed() -> dict[str, Any]:
    return {
        **sample_visit(),
        "change": "rescheduled",
        "previous": {"date": "Monday 9 March 2026", "time": "08:00", "iso": "2026-03-09T08:00:00-04:00"},
    }


register_kind(
    MessageKind(
        name=AGENDA,
        audience="worker",
        transactional=True,
        channels=("email", "sms"),
        template="cleaner_agenda",
        template_dir=TEMPLATES,
        build_context=_agenda_context,
        sample_context=with_recipient(_sample_agenda),
    )
)
register_kind(
    MessageKind(
        name=CHANGED,
        audience="worker",
        transactional=True,
        channels=("email", "sms"),
        template="cleaner_job_changed",
        template_dir=TEMPLATES,
        build_context=_changed_context,
        sample_context=with_recipient(_sample_changed),
    )
)


async def request_agendas(session: AsyncSession, org: NotifyingOrg, now: datetime) -> int:
    """One agenda per cleaner with jobs on the agenda date, once the agenda time has passed."""
    if not org.agenda_enabled:
        return 0
    day = agenda_date(now, org.zone, org.agenda_at)
    if day is None:
        return 0
    start, end = local_day_bounds(day, org.zone)
    workers = {w for v in await visits_starting(session, start, end, statuses=UPCOMING) for w in v.worker_ids}
    requested = 0
    for worker_id in sorted(workers):
        requested += await request_message(
            session,
            org_id=org.org_id,
            kind=AGENDA,
            recipient=Recipient(kind="worker", id=worker_id),
            subject_type="worker",
            subject_id=worker_id,
            send_key=day.isoformat(),
            params={"worker_id": str(worker_id), "date": day.isoformat()},
        )
    return requested


@job(JOB, every=EVERY, max_retries=3, time_limit_ms=10 * 60_000, max_age_ms=3_600_000)
async def send_agendas(slot: str | None = None, now: str | None = None, org_id: str | None = None) -> None:
    rt = get_runtime()
    async with exclusive_slot(rt.sessionmaker, JOB, slot) as mine:
        if not mine:
            return
        moment = datetime.fromisoformat(now) if now else datetime.now(UTC)
        totals: list[int] = []

        async def work(session: AsyncSession, org: NotifyingOrg) -> None:
            totals.append(await request_agendas(session, org, moment))

        done, failed = await for_each_organisation(rt, work, only=UUID(org_id) if org_id else None)
        logger.info("agendas: %d requested in %d organisation(s), %d failed", sum(totals), done, failed)


async def tell_cleaners_of_change(
    session: AsyncSession, org_id: UUID, booking_id: UUID, change: str, previous_start: datetime, event_id: str,
    now: datetime,
) -> int:  # fmt: skip
    """A change to a job today (by its old or new start, local date) tells its cleaners."""
    visit = await visit_notice(session, booking_id)
    if visit is None or not visit.worker_ids:
        return 0
    zone = await zone_of(session, org_id)
    today = local_today(now, zone)
    if today not in {local_today(previous_start, zone), local_today(visit.starts_at, zone)}:
        return 0
    requested = 0
    for worker_id in visit.worker_ids:
        requested += await request_message(
            session,
            org_id=org_id,
            kind=CHANGED,
            recipient=Recipient(kind="worker", id=worker_id),
            subject_type="booking",
            subject_id=booking_id,
            send_key=f"{change}:{event_id}",
            params={
                "booking_id": str(booking_id),
                "change": change,
                "previous_starts_at": previous_start.astimezone(UTC).isoformat(),
            },
        )
    return requested


async def _on_change(org_id: UUID, booking_id: UUID, change: str, previous: datetime | None, event_id: str) -> None:
    async with get_runtime().session(org_id) as session:
        if previous is None:
            visit = await visit_notice(session, booking_id)
            if visit is None:
                return
            previous = visit.starts_at
        await tell_cleaners_of_change(session, org_id, booking_id, change, previous, event_id, datetime.now(UTC))


@subscriber(BookingRescheduled, name="messaging.cleaner_job_moved", max_retries=10, time_limit_ms=60_000)
async def cleaner_job_moved(event: BookingRescheduled, event_id: str) -> None:
    await _on_change(event.org_id, event.booking_id, "rescheduled", event.previous_starts_at, event_id)


@subscriber(BookingCancelled, name="messaging.cleaner_job_cancelled", max_retries=10, time_limit_ms=60_000)
async def cleaner_job_cancelled(event: BookingCancelled, event_id: str) -> None:
    await _on_change(event.org_id, event.booking_id, "cancelled", None, event_id)
