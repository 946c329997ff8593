"""Open slots for a service over a range of local days.

The cost is a fixed number of queries whatever the range or the number of workers, each read as
columns (no ORM objects): the service's price, the active workers with their hours and time off
(one statement), and one range scan of active assignments on the exclusion constraint's GiST
index; the per-day, per-worker work happens in memory (`slots`).

That in-memory work and the answer grow with cleaners x days x (working minutes / step), so a
request is bounded before any of it is done: at most `MAX_WORKER_DAYS` cleaner-days (checked
before the busy ranges are read) and at most `MAX_CANDIDATE_STARTS` candidate start times
(counted from the cleaners' real hours). Beyond either, a 400 `availability-too-large` says
what to narrow; the answer is never truncated (every active cleaner is considered)."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.catalog.public import PricingParams
from spotless.domain.scheduling import slots, timeutil
from spotless.domain.scheduling.assignments import MAX_HELD
from spotless.domain.scheduling.context import OrgContext
from spotless.domain.scheduling.models import BookingAssignment
from spotless.domain.scheduling.pricing import price
from spotless.domain.scheduling.schemas import Availability, AvailabilitySlot
from spotless.domain.workforce.public import WorkerSchedule, active_schedules, active_worker_ids, schedules
from spotless.lib.errors import FieldError, Problem
from spotless.lib.sql import Compiled

# 7 days x 140 cleaners, or 31 days x 32 cleaners.
MAX_WORKER_DAYS = 1_000
# Each is one overlap test in Python and at most one worker id in the answer: ~20k ids and ~9k slots
# make the largest answer about 1 MB, and its computation tens of milliseconds.
MAX_CANDIDATE_STARTS = 20_000
# Below this the work takes a millisecond or two: cheaper than a thread hop.
OFFLOAD_ABOVE_CANDIDATES = 2_000


def too_large(detail: str, fields: list[str], **extra: Any) -> Problem:
    return Problem(
        400,
        "availability-too-large",
        "The availability request is too large",
        detail,
        errors=[{"field": f, "message": detail} for f in fields],
        **extra,
    )


def candidate_starts(worker_schedules: dict[UUID, WorkerSchedule], days: list[date], step: timedelta) -> int:
    """An upper bound of the start times `slots.free_slots` would test: working minutes / step."""
    per_weekday = Counter(d.weekday() for d in days)
    step_minutes = step.total_seconds() / 60
    total = 0
    for schedule in worker_schedules.values():
        for h in schedule.hours:
            minutes = (h.end.hour * 60 + h.end.minute) - (h.start.hour * 60 + h.start.minute)
            total += per_weekday[h.weekday] * (math.ceil(max(minutes, 0) / step_minutes) + 1)
    return total


# A booking is never longer than MAX_HELD, so `starts_at > :held_from` bounds the (org_id,
# worker_id, starts_at) index range to the window: the cost follows the window, not the history.
_BUSY = Compiled(
    select(BookingAssignment.worker_id, BookingAssignment.during).where(
        BookingAssignment.org_id == bindparam("org_id"),
        BookingAssignment.worker_id == any_(bindparam("worker_ids", type_=ARRAY(PG_UUID(as_uuid=True)))),
        BookingAssignment.starts_at > bindparam("held_from"),
        BookingAssignment.starts_at < bindparam("end"),
        BookingAssignment.active,
        BookingAssignment.during.op("&&")(func.tstzrange(bindparam("start"), bindparam("end"))),
    )
)


async def busy_by_worker(
    session: AsyncSession, ctx: OrgContext, worker_ids: list[UUID], start: datetime, end: datetime
) -> dict[UUID, list[slots.Interval]]:
    """Active assignment ranges (buffer included) overlapping [start, end): one query."""
    out: dict[UUID, list[slots.Interval]] = {w: [] for w in worker_ids}
    if not worker_ids:
        return out
    params = {"org_id": ctx.org_id, "worker_ids": worker_ids, "held_from": start - MAX_HELD, "start": start, "end": end}
    for worker_id, during in await _BUSY.rows(session, params):
        # Ranges are written bounded ([start, end + buffer)); never open-ended.
        out[worker_id].append((during.lower or start, during.upper or end))
    return out


async def availability(
    session: AsyncSession,
    ctx: OrgContext,
    *,
    service_id: UUID,
    date_from: date,
    date_to: date,
    worker_id: UUID | None,
    step_minutes: int | None,
    max_days: int,
    params: PricingParams | None = None,
    duration_minutes: int | None = None,
    now: datetime | None = None,
) -> Availability:
    if date_to < date_from:
        raise FieldError("date_to", "date_to must not be before date_from")
    if (date_to - date_from).days + 1 > max_days:
        raise FieldError("date_to", f"at most {max_days} days per request")
    step = step_minutes or ctx.step_minutes
    if not 5 <= step <= 240:
        raise FieldError("step_minutes", "step_minutes must be between 5 and 240")

    quote = await price(session, ctx, service_id, params or PricingParams(), [], "once")
    duration = timedelta(minutes=duration_minutes or max(quote.estimated_minutes, 1))
    n_days = (date_to - date_from).days + 1
    start, end = timeutil.days_range_utc(date_from, date_to, ctx.tz)
    days = timeutil.each_day(date_from, date_to)
    if worker_id is not None:
        worker_ids = await active_worker_ids(session, [worker_id])
        found_schedules = await schedules(session, worker_ids, start, end)
    else:
        # One more than the cap allows: enough to know the request is too large, never a truncation.
        # The workers, their hours on these weekdays and their time off: one statement of columns.
        allowed = MAX_WORKER_DAYS // n_days
        found_schedules, active = await active_schedules(
            session, start, end, limit=allowed + 1, weekdays=[d.weekday() for d in days]
        )
        worker_ids = list(found_schedules)
        if len(worker_ids) > allowed:
            raise too_large(
                f"{active} active cleaners over {n_days} days is {active * n_days} cleaner-days; at most "
                f"{MAX_WORKER_DAYS} per request: ask for fewer days (date_from..date_to) or one worker_id.",
                ["date_to", "worker_id"],
                cleaner_days=active * n_days,
                max_cleaner_days=MAX_WORKER_DAYS,
            )

    candidates = candidate_starts(found_schedules, days, timedelta(minutes=step))
    if candidates > MAX_CANDIDATE_STARTS:
        raise too_large(
            f"{candidates} candidate start times (cleaners x working minutes / step_minutes={step}); at most "
            f"{MAX_CANDIDATE_STARTS} per request: raise step_minutes, ask for fewer days or one worker_id.",
            ["step_minutes", "date_to", "worker_id"],
            candidate_starts=candidates,
            max_candidate_starts=MAX_CANDIDATE_STARTS,
        )
    # A slot on the first day may collide with a booking ending (plus buffer) just before midnight.
    busy = await busy_by_worker(session, ctx, worker_ids, start - timedelta(days=1), end + timedelta(days=1))

    calendars = {
        w: slots.WorkerCalendar(
            hours=[slots.WeeklyHours(h.weekday, h.start, h.end) for h in schedule.hours],
            time_off=[(t.starts_at, t.ends_at) for t in schedule.time_off],
            busy=busy.get(w, []),
        )
        for w in worker_ids
        if (schedule := found_schedules.get(w)) is not None
    }

    def compute() -> list[AvailabilitySlot]:
        per_worker = {
            w: slots.free_slots(
                calendar,
                days,
                ctx.tz,
                duration,
                ctx.buffer,
                timedelta(minutes=step),
                not_before=now or datetime.now(UTC),
            )
            for w, calendar in calendars.items()
        }
        return [
            AvailabilitySlot(
                starts_at=timeutil.local(s.starts_at, ctx.tz),
                ends_at=timeutil.local(s.ends_at, ctx.tz),
                worker_ids=list(s.worker_ids),
            )
            for s in slots.collect(per_worker, duration)
        ]

    # Pure CPU (bounded above): a large one runs in a thread so the event loop keeps serving.
    found = await asyncio.to_thread(compute) if candidates > OFFLOAD_ABOVE_CANDIDATES else compute()
    return Availability(
        service_id=service_id,
        timezone=ctx.tz_name,
        date_from=date_from,
        date_to=date_to,
        duration_minutes=int(duration.total_seconds() // 60),
        step_minutes=step,
        buffer_minutes=ctx.buffer_minutes,
        slots=found,
    )
