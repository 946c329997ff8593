"""Digests, as the operations guides describe them: `notifications-digest-daily`, `-weekly`,
`-monthly` (`messaging.digest_daily`, ...), each safe to run every loop.

Each organisation keeps its digests in `notifications_digest_settings` (`digest_key`, `enabled`,
`schedule`, `recipients`). A job sends every enabled digest of its schedule once per period, the
period's key computed in the organisation's zone (`rules.period_of`: `2026-03-08`, `2026-W10`,
`2026-03`), from DIGEST_SEND_AT local time on the period's first day (a run by hand, `--once`,
does not wait for that hour). "Once" is the deliveries table's unique key: the request's send key
is the period key, so two runners in one period, or a loop every minute, request one digest per
recipient; no separate digest state is kept.

What a digest says, read when it is sent: visits done in the period before and planned in this
one, payments received in the period before and the invoices unpaid now, and series occurrences
that could not be booked (conflicts) among the planned. Failed calendar/accounting syncs are not
reported: those integrations do not exist yet (the digest says so)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.billing.public import money_totals
from spotless.domain.identity.public import member_role, org_profile
from spotless.domain.messaging.notifications.context import TEMPLATES, money, uuid_param, with_recipient, zone_of
from spotless.domain.messaging.notifications.models import DigestSetting
from spotless.domain.messaging.notifications.orgs import NotifyingOrg, for_each_organisation, logger
from spotless.domain.messaging.notifications.rules import Schedule, local_day_bounds, local_today, period_of
from spotless.domain.messaging.public import MessageKind, Recipient, office_recipients, register_kind, request_message
from spotless.domain.scheduling.public import count_series_conflicts, count_visits
from spotless.lib.jobs import job
from spotless.lib.jobs.runtime import get_runtime
from spotless.lib.jobs.scheduler import exclusive_slot

DIGEST = "notifications.digest"
# Who gets a digest whose recipients list is empty.
DEFAULT_PERMISSION = "settings.manage"
DIGEST_SEND_AT = time(7, 0)
EVERY = timedelta(minutes=15)
JOBS_BY_SCHEDULE: dict[Schedule, str] = {
    "daily": "messaging.digest_daily",
    "weekly": "messaging.digest_weekly",
    "monthly": "messaging.digest_monthly",
}
PLANNED = ("pending", "confirmed")


def _bounds(start: date, end: date, zone: Any) -> tuple[datetime, datetime]:
    return local_day_bounds(start, zone)[0], local_day_bounds(end, zone)[0]


async def digest_content(session: AsyncSession, org_id: UUID, schedule: Schedule, today: date) -> dict[str, Any]:
    zone = await zone_of(session, org_id)
    period = period_of(schedule, today)
    done_start, done_end = _bounds(period.done_from, period.done_to, zone)
    plan_start, plan_end = _bounds(period.planned_from, period.planned_to, zone)
    money_now = await money_totals(session, done_start, done_end)
    currency = (await org_profile(session, org_id)).currency
    return {
        "schedule": schedule,
        "period_key": period.key,
        "done_from": period.done_from.isoformat(),
        "done_to": (period.done_to - timedelta(days=1)).isoformat(),
        "planned_from": period.planned_from.isoformat(),
        "planned_to": (period.planned_to - timedelta(days=1)).isoformat(),
        "visits_done": await count_visits(session, done_start, done_end, ("completed",)),
        "visits_planned": await count_visits(session, plan_start, plan_end, PLANNED),
        "revenue": money(money_now.received_cents, currency),
        "unpaid_count": money_now.unpaid_count,
        "unpaid_total": money(money_now.unpaid_cents, currency),
        "conflicts": await count_series_conflicts(session, plan_start, plan_end),
        "syncs_available": False,
    }


async def _digest_context(session: AsyncSession, org_id: UUID, params: Mapping[str, Any]) -> dict[str, Any] | None:
    setting = await session.scalar(select(DigestSetting).where(DigestSetting.id == uuid_param(params, "setting_id")))
    if setting is None or not setting.enabled or setting.schedule != params["schedule"]:
        return None  # switched off or changed since it was requested
    content = await digest_content(session, org_id, params["schedule"], date.fromisoformat(params["today"]))
    return {**content, "digest_key": setting.digest_key}


def _sample_digest() -> dict[str, Any]:
    return {
        "schedule": "daily",
        "period_key": "2026-03-09",
        "digest_key": "owner-summary",
        "done_from": "2026-03-08",
        "done_to": "2026-03-08",
        "planned_from": "2026-03-09",
        "planned_to": "2026-03-09",
        "visits_done": 7,
        "visits_planned": 9,
        "revenue": "1,250.00 CAD",
        "unpaid_count": 3,
        "unpaid_total": "420.00 CAD",
        "conflicts": 1,
        "syncs_available": False,
    }


register_kind(
    MessageKind(
        name=DIGEST,
        audience="office",
        transactional=False,  # one-click unsubscribe (RFC 8058)
        channels=("email",),
        template="digest",
        template_dir=TEMPLATES,
        build_context=_digest_context,
        sample_context=with_recipient(_sample_digest),
    )
)


async def _recipients(session: AsyncSession, org_id: UUID, setting: DigestSetting) -> list[Recipient]:
    if not setting.recipients:
        return await office_recipients(session, org_id, DEFAULT_PERMISSION)
    # Only people still in the organisation (a user who left is dropped, not mailed).
    return [
        Recipient(kind="user", id=user_id)
        for user_id in setting.recipients
        if await member_role(session, org_id, user_id) is not None
    ]


async def request_digests(
    session: AsyncSession, org: NotifyingOrg, schedule: Schedule, now: datetime, *, wait_for_hour: bool = True
) -> int:
    """Every enabled `schedule` digest of the organisation, once per period; returns how many
    deliveries were new."""
    today = local_today(now, org.zone)
    period = period_of(schedule, today)
    if wait_for_hour and now < datetime.combine(period.planned_from, DIGEST_SEND_AT, tzinfo=org.zone):
        return 0
    settings = await session.scalars(
        select(DigestSetting)
        .where(DigestSetting.enabled.is_(True), DigestSetting.schedule == schedule)
        .order_by(DigestSetting.digest_key)
    )
    requested = 0
    for setting in settings:
        for recipient in await _recipients(session, org.org_id, setting):
            requested += await request_message(
                session,
                org_id=org.org_id,
                kind=DIGEST,
                recipient=recipient,
                subject_type="digest",
                subject_id=setting.id,
                send_key=period.key,
                params={"setting_id": str(setting.id), "schedule": schedule, "today": today.isoformat()},
            )
    return requested


async def run_digests(schedule: Schedule, slot: str | None, now: str | None, org_id: str | None) -> None:
    rt = get_runtime()
    async with exclusive_slot(rt.sessionmaker, JOBS_BY_SCHEDULE[schedule], slot) as mine:
        if not mine:
            return
        moment = datetime.fromisoformat(now) if now else datetime.now(UTC)
        totals: list[int] = []

        async def work(session: AsyncSession, org: NotifyingOrg) -> None:
            totals.append(await request_digests(session, org, schedule, moment, wait_for_hour=slot is not None))

        done, failed = await for_each_organisation(rt, work, only=UUID(org_id) if org_id else None)
        logger.info("%s digests: %d requested in %d organisation(s), %d failed", schedule, sum(totals), done, failed)


_OPTIONS: dict[str, Any] = {"every": EVERY, "max_retries": 3, "time_limit_ms": 10 * 60_000, "max_age_ms": 3_600_000}


@job(JOBS_BY_SCHEDULE["daily"], aliases=("notifications-digest-daily",), **_OPTIONS)
async def digest_daily(slot: str | None = None, now: str | None = None, org_id: str | None = None) -> None:
    await run_digests("daily", slot, now, org_id)


@job(JOBS_BY_SCHEDULE["weekly"], aliases=("notifications-digest-weekly",), **_OPTIONS)
async def digest_weekly(slot: str | None = None, now: str | None = None, org_id: str | None = None) -> None:
    await run_digests("weekly", slot, now, org_id)


@job(JOBS_BY_SCHEDULE["monthly"], aliases=("notifications-digest-monthly",), **_OPTIONS)
async def digest_monthly(slot: str | None = None, now: str | None = None, org_id: str | None = None) -> None:
    await run_digests("monthly", slot, now, org_id)
