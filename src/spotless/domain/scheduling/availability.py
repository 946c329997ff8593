"""Open slots for a service over a range of local days.

The cost is a fixed number of queries whatever the range or the number of workers (organisation,
service price, workers, their hours and time off, and one range scan of active assignments on the
exclusion constraint's GiST index); the per-day, per-worker work happens in memory (`slots`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.catalog.pricing import PricingParams
from spotless.domain.scheduling import slots, timeutil
from spotless.domain.scheduling.context import OrgContext
from spotless.domain.scheduling.models import BookingAssignment
from spotless.domain.scheduling.schemas import Availability, AvailabilitySlot
from spotless.domain.scheduling.services import MAX_HELD, busy_range, price
from spotless.domain.workforce import services as workforce
from spotless.lib.errors import FieldError

MAX_WORKERS = 500


async def busy_by_worker(
    session: AsyncSession, ctx: OrgContext, worker_ids: list[UUID], start: datetime, end: datetime
) -> dict[UUID, list[slots.Interval]]:
    """Active assignment ranges (buffer included) overlapping [start, end): one query."""
    out: dict[UUID, list[slots.Interval]] = {w: [] for w in worker_ids}
    if not worker_ids:
        return out
    rows = await session.execute(
        select(BookingAssignment.worker_id, BookingAssignment.during).where(
            BookingAssignment.org_id == ctx.org_id,
            BookingAssignment.worker_id.in_(worker_ids),
            # A booking is never longer than MAX_HELD, so this bounds the (org_id, worker_id,
            # starts_at) index range to the window: the cost follows the window, not the history.
            BookingAssignment.starts_at > start - MAX_HELD,
            BookingAssignment.starts_at < end,
            BookingAssignment.active,
            BookingAssignment.during.overlaps(busy_range(start, end, timedelta(0))),
        )
    )
    for worker_id, during in rows:
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
    if worker_id is not None:
        worker_ids = [w.id for w in await workforce.get_active_workers(session, [worker_id])]
    else:
        workers, _total = await workforce.list_workers(session, limit=MAX_WORKERS, offset=0, active=True)
        worker_ids = [w.id for w in workers]

    start, end = timeutil.days_range_utc(date_from, date_to, ctx.tz)
    schedules = await workforce.schedules(session, worker_ids, start, end)
    # A slot on the first day may collide with a booking ending (plus buffer) just before midnight.
    busy = await busy_by_worker(session, ctx, worker_ids, start - timedelta(days=1), end + timedelta(days=1))

    days = timeutil.each_day(date_from, date_to)
    per_worker: dict[UUID, list[datetime]] = {}
    for w in worker_ids:
        schedule = schedules.get(w)
        if schedule is None:
            continue
        calendar = slots.WorkerCalendar(
            hours=[slots.WeeklyHours(h.weekday, h.start, h.end) for h in schedule.hours],
            time_off=[(t.starts_at, t.ends_at) for t in schedule.time_off],
            busy=busy.get(w, []),
        )
        per_worker[w] = slots.free_slots(
            calendar, days, ctx.tz, duration, ctx.buffer, timedelta(minutes=step), not_before=now or datetime.now(UTC)
        )
    return Availability(
        service_id=service_id,
        timezone=ctx.tz_name,
        date_from=date_from,
        date_to=date_to,
        duration_minutes=int(duration.total_seconds() // 60),
        step_minutes=step,
        buffer_minutes=ctx.buffer_minutes,
        slots=[
            AvailabilitySlot(
                starts_at=timeutil.local(s.starts_at, ctx.tz),
                ends_at=timeutil.local(s.ends_at, ctx.tz),
                worker_ids=list(s.worker_ids),
            )
            for s in slots.collect(per_worker, duration)
        ],
    )
