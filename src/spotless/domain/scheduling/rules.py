"""The rules a booking is checked against before it is written: a sane start, active workers,
working hours and time off.

Hours and time off are advice the dispatcher may override (with a reason, audited), not
invariants; the one invariant, no double booking, is the database's (see `assignments`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.audit.public import record_audit
from spotless.domain.identity.public import Principal
from spotless.domain.scheduling.context import OrgContext
from spotless.domain.scheduling.models import Booking
from spotless.domain.scheduling.schemas import Override
from spotless.domain.scheduling.slots import WeeklyHours, fits_working_hours
from spotless.domain.workforce.public import active_worker_ids, schedules, team_worker_ids
from spotless.lib.errors import FieldError, Problem

# How far ahead (and back) a booking may be placed: keeps input sane and queries bounded.
MAX_YEARS_AHEAD = 5

_TITLES = {
    "booking-conflict": "The worker is already booked at that time",
    "outside-working-hours": "Outside the worker's working hours",
    "worker-time-off": "The worker is off at that time",
    "worker-calendar-busy": "The worker's own calendar is busy at that time",
}


class SchedulingConflict(Problem):
    """A 409 the series materialiser records instead of failing (conflict, hours, time off)."""

    def __init__(
        self,
        slug: str,
        detail: str,
        *,
        worker_id: UUID | None = None,
        conflicting_booking_id: UUID | None = None,
        **extra: Any,
    ) -> None:
        self.reason = slug
        self.worker_id = worker_id
        self.conflicting_booking_id = conflicting_booking_id
        if worker_id is not None:
            extra["worker_id"] = str(worker_id)
        if slug == "booking-conflict":
            extra["conflicting_booking_id"] = str(conflicting_booking_id) if conflicting_booking_id else None
        super().__init__(409, slug, _TITLES.get(slug, "Conflicts with the current state"), detail, **extra)


def check_start(starts_at: datetime, field: str = "starts_at") -> datetime:
    if starts_at.tzinfo is None:
        raise FieldError(field, "must include a UTC offset")
    value = starts_at.astimezone(UTC)
    now = datetime.now(UTC)
    if abs((value - now).days) > 366 * MAX_YEARS_AHEAD:
        raise FieldError(field, f"must be within {MAX_YEARS_AHEAD} years of today")
    return value


async def resolve_workers(session: AsyncSession, worker_ids: Sequence[UUID], team_id: UUID | None) -> list[UUID]:
    """The explicit workers plus the team's active members; every one must be an active worker."""
    ids = list(dict.fromkeys(worker_ids))
    if team_id is not None:
        ids.extend(w for w in await team_worker_ids(session, team_id) if w not in ids)
    if ids:
        await active_worker_ids(session, ids)
    return ids


async def rule_violations(
    session: AsyncSession, ctx: OrgContext, worker_ids: Sequence[UUID], start: datetime, end: datetime
) -> list[SchedulingConflict]:
    """Working-hours and time-off problems for these workers at [start, end), in worker order."""
    if not worker_ids:
        return []
    found_schedules = await schedules(session, worker_ids, start, end)
    found: list[SchedulingConflict] = []
    for worker_id in worker_ids:
        schedule = found_schedules.get(worker_id)
        hours = [WeeklyHours(h.weekday, h.start, h.end) for h in schedule.hours] if schedule else []
        if not fits_working_hours(start, end, hours, ctx.tz):
            found.append(
                SchedulingConflict(
                    "outside-working-hours",
                    "The booking is outside the worker's working hours; a dispatcher may override with a reason.",
                    worker_id=worker_id,
                )
            )
        for off in schedule.time_off if schedule else ():
            if off.starts_at < end and start < off.ends_at:
                if off.external:  # synced from their own calendar: times only, overridable like time off
                    found.append(
                        SchedulingConflict(
                            "worker-calendar-busy",
                            "The worker's own calendar is busy then; a dispatcher may override with a reason.",
                            worker_id=worker_id,
                            busy_id=str(off.id),
                        )
                    )
                else:
                    found.append(
                        SchedulingConflict(
                            "worker-time-off",
                            "The worker has time off then; a dispatcher may override with a reason.",
                            worker_id=worker_id,
                            time_off_id=str(off.id),
                        )
                    )
                break
    return found


async def apply_rules(
    session: AsyncSession,
    ctx: OrgContext,
    principal: Principal | None,
    worker_ids: Sequence[UUID],
    start: datetime,
    end: datetime,
    override: Override | None,
) -> list[SchedulingConflict]:
    """Raise the first violation unless overridden by someone allowed to; returns what was overridden."""
    violations = await rule_violations(session, ctx, worker_ids, start, end)
    if not violations:
        return []
    if override is None:
        raise violations[0]
    if principal is None or not principal.can("bookings.assign"):
        raise Problem(
            403,
            "forbidden",
            "You do not have permission for this action",
            "Overriding working hours or time off requires the bookings.assign permission.",
        )
    return violations


async def audit_override(
    session: AsyncSession,
    principal: Principal | None,
    booking: Booking,
    override: Override,
    violations: Sequence[SchedulingConflict],
    action: str,
) -> None:
    booking.override_reason = override.reason
    record_audit(
        session,
        principal,
        action=f"booking.override.{action}",
        resource_type="booking",
        resource_id=str(booking.id),
        meta={
            "reason": override.reason,
            "overridden": [{"type": v.reason, "worker_id": str(v.worker_id)} for v in violations],
            "starts_at": booking.starts_at.isoformat(),
            "ends_at": booking.ends_at.isoformat(),
        },
        org_id=booking.org_id,
    )
