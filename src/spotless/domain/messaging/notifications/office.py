"""To the office: what gave up (dead letters), once a day at most.

`messaging.report_dead_letters` runs hourly; for an organisation with, in the last day,
deliveries that failed for good (`failed`: out of attempts, or not renderable) or background jobs
of its own that ran out of retries (Dramatiq's dead letters in Redis, the ones
`GET /v1/admin/queue/dlq` lists), it requests one notice to its owners and admins with send key =
the organisation's local date, so at most one a day. The notice about dead letters is not itself
counted (a failing notice must not feed itself), and a delivery job whose delivery is `failed` is
counted once, as that message.

The dead jobs are counted when the notice is requested and travel in its params: the notice tells
what the office would have seen then, and sending it needs no Redis.

Failed calendar/accounting syncs are not reported: those integrations do not exist yet."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from redis.asyncio import Redis
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.messaging.delivery import DELIVER_JOB
from spotless.domain.messaging.models import Delivery
from spotless.domain.messaging.notifications.context import TEMPLATES, with_recipient
from spotless.domain.messaging.notifications.orgs import NotifyingOrg, for_each_organisation, logger
from spotless.domain.messaging.notifications.rules import local_today
from spotless.domain.messaging.public import MessageKind, office_recipients, register_kind, request_message
from spotless.lib.jobs import job
from spotless.lib.jobs.dlq import org_dead_since
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


def _delivery_id(args: Any) -> UUID | None:
    try:
        return UUID(str(args[1]))
    except (IndexError, TypeError, ValueError):
        return None


async def dead_jobs_since(
    session: AsyncSession, redis: Redis, namespace: str, org_id: UUID, since: datetime
) -> list[tuple[str, int]]:
    """(job, count) of the organisation's jobs dead-lettered since `since`, most first; delivery
    jobs of a `failed` delivery (counted as messages) and of this very notice left out."""
    dead = await org_dead_since(redis, namespace, str(org_id), int(since.timestamp() * 1000))
    ids = {i for m in dead if m.actor_name == DELIVER_JOB and (i := _delivery_id(m.args)) is not None}
    counted: set[UUID] = set()
    if ids:
        counted = set(
            await session.scalars(
                select(Delivery.id).where(
                    Delivery.id.in_(ids), or_(Delivery.status == "failed", Delivery.kind == DEAD_LETTERS)
                )
            )
        )
    jobs = Counter(m.actor_name for m in dead if not (m.actor_name == DELIVER_JOB and _delivery_id(m.args) in counted))
    return sorted(jobs.items(), key=lambda item: (-item[1], item[0]))


async def _context(session: AsyncSession, org_id: UUID, params: Mapping[str, Any]) -> dict[str, Any] | None:
    failed = await failed_since(session, datetime.fromisoformat(params["since"]))
    jobs = [{"job": str(j["job"]), "count": int(j["count"])} for j in params.get("jobs", [])]
    if not failed and not jobs:
        return None  # replayed or cleared since
    return {
        "total": sum(n for _, n in failed),
        "kinds": [{"kind": k, "count": n} for k, n in failed],
        "jobs_total": sum(j["count"] for j in jobs),
        "jobs": jobs,
    }


def _sample() -> dict[str, Any]:
    return {
        "total": 3,
        "kinds": [{"kind": "booking.reminder", "count": 2}, {"kind": "invoice.issued", "count": 1}],
        "jobs_total": 1,
        "jobs": [{"job": "billing.auto_charge", "count": 1}],
    }


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


async def request_dead_letter_report(
    session: AsyncSession, org: NotifyingOrg, now: datetime, redis: Redis, namespace: str
) -> int:
    since = now - WINDOW
    jobs = await dead_jobs_since(session, redis, namespace, org.org_id, since)
    if not jobs and not await failed_since(session, since):
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
            params={"since": since.isoformat(), "jobs": [{"job": j, "count": n} for j, n in jobs]},
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
            totals.append(await request_dead_letter_report(session, org, moment, rt.redis, rt.settings.jobs.namespace))

        done, failed = await for_each_organisation(rt, work, only=UUID(org_id) if org_id else None)
        logger.info("dead-letter notices: %d requested in %d organisation(s), %d failed", sum(totals), done, failed)
