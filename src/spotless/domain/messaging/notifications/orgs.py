"""The periodic notification jobs act for every organisation, each in its own zone and its own
RLS-scoped transaction: one failing never stops the others."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import time
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.lib.jobs.runtime import JobRuntime

logger = logging.getLogger("spotless.messaging.notifications")

ORG_PAGE = 200


@dataclass(frozen=True)
class NotifyingOrg:
    org_id: UUID
    zone: ZoneInfo
    reminders_enabled: bool
    agenda_enabled: bool
    agenda_at: time


async def organisations_page(session: AsyncSession, after: UUID | None, limit: int = ORG_PAGE) -> list[NotifyingOrg]:
    """Every organisation with its zone and switches (across organisations: a definer function)."""
    rows = await session.execute(
        text(
            "SELECT org_id, timezone, reminders_enabled, agenda_enabled, agenda_at"
            " FROM notifications_organisations(:after, :limit)"
        ),
        {"after": after, "limit": limit},
    )
    return [
        NotifyingOrg(r.org_id, ZoneInfo(r.timezone), r.reminders_enabled, r.agenda_enabled, r.agenda_at) for r in rows
    ]


async def for_each_organisation(
    rt: JobRuntime, work: Callable[[AsyncSession, NotifyingOrg], Awaitable[Any]], *, only: UUID | None = None
) -> tuple[int, int]:
    """`work` for every organisation (or `only` one), each in its own scoped transaction.
    Returns (done, failed)."""
    done = failed = 0
    after: UUID | None = None
    while True:
        async with rt.session() as session:
            page = await organisations_page(session, after)
        for org in page:
            if only is not None and org.org_id != only:
                continue
            try:
                async with rt.session(org_id=org.org_id) as session:
                    await work(session, org)
                done += 1
            except Exception:
                failed += 1
                logger.exception("notifications run failed for organisation %s", org.org_id)
        if len(page) < ORG_PAGE:
            return done, failed
        after = page[-1].org_id
