"""To the office: messages that gave up (dead letters), once a day at most.

`messaging.report_dead_letters` runs hourly; for an organisation with deliveries that failed for
good (`failed`: out of attempts, or not renderable) in the last day, it requests one notice to its
owners and admins with send key = the organisation's local date, so at most one a day. The notice
about dead letters is not itself counted (a failing notice must not feed itself).

Failed calendar/accounting syncs are not reported: those integrations do not exist yet."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.messaging.models import Delivery
from spotless.domain.messaging.notifications.context import TEMPLATES, with_recipient
from spotless.domain.messaging.notifications.orgs import NotifyingOrg, for_each_organisation, logger
from spotless.domain.messaging.notifications.rules import local_today
from spotless.domain.messaging.public import MessageKind, office_recipients, register_kind, request_message
from spotless.lib.jobs import job
from spotless.lib.jobs.runtime import get_runtime
from spotless.lib.jobs.scheduler import exclusive_slot

DEAD_LETTERS = "office.dead_letters"
JOB = "messaging.report_dead_letters"
PERMISSION = "settings.manage"
WINDOW = timedelta(days=1)


async def failed_since(session: AsyncSession, since: datetime) -> list[tuple[str, int]]:
    """(kind, count) of the deliveries that failed for good since `since`, most first."""
    count = func.count().label("n")
    rows = await session.execute(
        select(Delivery.kind, count)
        .where(Delivery.status == "failed", Delivery.updated_at >= since, Delivery.kind != DEAD_LETTERS)
        .group_by(Delivery.kind)
        .order_by(count.desc(), Delivery.kind)
    )
    return [(r.kind, int(r.n)) for r in rows]


async def _context(session: AsyncSession, org_id: UUID, params: Mapping[str, Any]) -> dict[str, Any] | None:
    failed = await failed_since(session, datetime.fromisoformat(params["since"]))
    if not failed:
        return None  # replayed or cleared since
    return {"total": sum(n for _, n in failed), "kinds": [{"kind": k, "count": n} for k, n in failed]}


def _sample() -> dict[str, Any]:
    return {"total": 3, "kinds": [{"kind": "booking.reminder", "count": 2}, {"kind": "invoice.issued", "count": 1}]}


register_kind(
    MessageKind(
        name=DEAD_LETTERS,
        audience="office",
        transactional=True,
        channels=("email",),
        template="office_dead_letters",
        template_dir=TEMPLATES,
        build_context=_context,
        sample_context=with_recipient(_sample),
    )
)


async def request_dead_letter_report(session: AsyncSession, org: NotifyingOrg, now: datetime) -> int:
    since = now - WINDOW
    if not await failed_since(session, since):
        return 0
    requested = 0
    for recipient in await office_recipients(session, org.org_id, PERMISSION):
        requested += await request_message(
            session,
            org_id=org.org_id,
            kind=DEAD_LETTERS,
            recipient=recipient,
            subject_type="organisation",
            subject_id=org.org_id,
            send_key=local_today(now, org.zone).isoformat(),
            params={"since": since.isoformat()},
        )
    return requested


@job(JOB, every=timedelta(hours=1), max_retries=3, time_limit_ms=10 * 60_000, max_age_ms=3_600_000)
async def report_dead_letters(slot: str | None = None, now: str | None = None, org_id: str | None = None) -> None:
    rt = get_runtime()
    async with exclusive_slot(rt.sessionmaker, JOB, slot) as mine:
        if not mine:
            return
        moment = datetime.fromisoformat(now) if now else datetime.now(UTC)
        totals: list[int] = []

        async def work(session: AsyncSession, org: NotifyingOrg) -> None:
            totals.append(await request_dead_letter_report(session, org, moment))

        done, failed = await for_each_organisation(rt, work, only=UUID(org_id) if org_id else None)
        logger.info("dead-letter notices: %d requested in %d organisation(s), %d failed", sum(totals), done, failed)
