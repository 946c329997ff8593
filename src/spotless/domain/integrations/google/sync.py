"""Busy time back from a cleaner's own Google calendar.

One pass per calendar, in one transaction that holds the calendar row (`FOR UPDATE SKIP LOCKED`:
a notification and the poller never sync one calendar at once):
- incremental with the stored sync token; a 410 wipes this calendar's blocks and runs a full sync;
- full: the window [now - GCAL_SYNC_INITIAL_DAYS (first time) or GCAL_SYNC_BACKFILL_MINUTES (a
  resync: the past blocks nothing), now + GCAL_SYNC_FUTURE_DAYS), every page; the blocks found
  replace the calendar's blocks;
- the new sync token and the block changes commit together, after the last page: a rate answer or
  a crash mid-way leaves the old cursor and the old blocks, and the next pass starts over from it.

What is kept of an event: its id and times, when it is busy (not cancelled, not transparent) and
not one of ours. Titles, descriptions and attendees are never decoded (client.GoogleEvent). Our own
events (private property spotless_booking_id) block nothing extra (the visit does already); one
whose etag differs from what we wrote was edited in Google and is overwritten by the next push.
A block new or moved onto a visit of that cleaner is recorded in `gcal_conflicts` for dispatch."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from spotless.domain.identity.public import org_profile
from spotless.domain.integrations.google.client import EventTime, GoogleCalendarClient, GoogleEvent, SyncTokenGone
from spotless.domain.integrations.google.config import GcalConfig
from spotless.domain.integrations.google.models import GcalCalendar, GcalConflict, GcalEvent
from spotless.domain.integrations.google.push import BOOKING_KEY, force_repush
from spotless.domain.scheduling.public import held_overlapping
from spotless.domain.workforce.public import (
    BusyBlock,
    clear_external_busy,
    remove_external_busy,
    upsert_external_busy,
)

logger = logging.getLogger("spotless.integrations.google")

PAGE_SIZE = 250
MAX_PAGES = 200  # 50,000 events in one pass: beyond, something is wrong; the cursor is not moved


class TooManyPages(RuntimeError):
    pass


@dataclass
class SyncReport:
    full: bool = False
    resynced_after_410: bool = False
    pages: int = 0
    busy: int = 0
    removed: int = 0
    ours_edited: list[UUID] = field(default_factory=list)  # bookings to push again
    conflicts: list[tuple[UUID, UUID]] = field(default_factory=list)  # (booking, busy block)


def _instant(value: EventTime | None, tz: ZoneInfo) -> datetime | None:
    if value is None:
        return None
    if value.dateTime:
        found = datetime.fromisoformat(value.dateTime.replace("Z", "+00:00"))
        return found if found.tzinfo else found.replace(tzinfo=tz)
    if value.date:
        # An all-day event: that day in the organisation's zone (the cleaner works in it).
        return datetime.combine(date.fromisoformat(value.date), time(0), tzinfo=tz).astimezone(UTC)
    return None


async def _pages(
    client: GoogleCalendarClient,
    calendar_id: str,
    *,
    sync_token: str | None,
    time_min: datetime | None,
    time_max: datetime | None,
) -> tuple[list[GoogleEvent], str, int]:
    items: list[GoogleEvent] = []
    page_token: str | None = None
    for pages in range(1, MAX_PAGES + 1):
        page = await client.list_events(
            calendar_id,
            sync_token=sync_token,
            page_token=page_token,
            time_min=time_min,
            time_max=time_max,
            max_results=PAGE_SIZE,
        )
        items.extend(page.items)
        if page.nextPageToken:
            page_token = page.nextPageToken
            continue
        if not page.nextSyncToken:
            raise RuntimeError("Google's last page carried no nextSyncToken")
        return items, page.nextSyncToken, pages
    raise TooManyPages(f"more than {MAX_PAGES} pages of events")


async def sync_calendar(
    session: AsyncSession,
    client: GoogleCalendarClient,
    cfg: GcalConfig,
    calendar: GcalCalendar,
    *,
    now: datetime | None = None,
) -> SyncReport:
    """One pass (see the module docstring). The caller holds the row and owns the transaction."""
    now = now or datetime.now(UTC)
    report = SyncReport()
    tz = ZoneInfo((await org_profile(session, calendar.org_id)).timezone)
    first = calendar.full_synced_at is None
    window_start = now - (timedelta(days=cfg.initial_days) if first else timedelta(minutes=cfg.backfill_minutes))
    window_end = now + timedelta(days=cfg.future_days)
    items: list[GoogleEvent] | None = None
    if calendar.sync_token:
        try:
            items, token, report.pages = await _pages(
                client, calendar.calendar_id, sync_token=calendar.sync_token, time_min=None, time_max=None
            )
        except SyncTokenGone:
            logger.info("gcal: sync token of calendar %s is gone (410): full resync", calendar.id)
            report.resynced_after_410 = True
            window_start = now - timedelta(minutes=cfg.backfill_minutes)
    if items is None:
        report.full = True
        items, token, report.pages = await _pages(
            client, calendar.calendar_id, sync_token=None, time_min=window_start, time_max=window_end
        )

    keep: list[BusyBlock] = []
    drop: list[str] = []
    for event in items:
        if BOOKING_KEY in event.private:
            drop.append(event.id)  # ours: never busy time of its own
            booking = await _check_ours(session, calendar, event)
            if booking is not None:
                report.ours_edited.append(booking)
            continue
        start, end = _instant(event.start, tz), _instant(event.end, tz)
        busy = event.status != "cancelled" and event.transparency != "transparent"
        if not busy or start is None or end is None or end <= start or end <= window_start or start >= window_end:
            drop.append(event.id)
            continue
        keep.append(BusyBlock(event.id, start, end))

    if calendar.worker_id is not None:
        if report.full:
            report.removed += await clear_external_busy(session, calendar.id, keep=[b.external_id for b in keep])
        else:
            report.removed += await remove_external_busy(session, calendar.id, drop)
        stored = await upsert_external_busy(session, calendar.org_id, calendar.worker_id, calendar.id, keep)
        report.busy = len(stored)
        moved = [s for s in stored if s.changed]
        overlapping = await held_overlapping(session, calendar.worker_id, [(s.starts_at, s.ends_at) for s in moved])
        for i, held in overlapping:
            block = moved[i]
            inserted = await session.scalar(
                pg_insert(GcalConflict)
                .values(
                    id=uuid7(),
                    org_id=calendar.org_id,
                    booking_id=held.booking_id,
                    worker_id=held.worker_id,
                    busy_id=block.id,
                    busy_starts_at=block.starts_at,
                    busy_ends_at=block.ends_at,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(constraint="uq_gcal_conflicts_booking_busy")
                .returning(GcalConflict.id)
            )
            if inserted is not None:
                report.conflicts.append((held.booking_id, block.id))
                logger.warning(
                    "gcal conflict: busy time in worker %s's calendar now overlaps booking %s",
                    held.worker_id,
                    held.booking_id,
                )
    calendar.sync_token = token
    calendar.synced_at = now
    calendar.last_error = None
    calendar.backoff_until = None
    if report.full:
        calendar.full_synced_at = now
    await session.flush()
    return report


async def _check_ours(session: AsyncSession, calendar: GcalCalendar, event: GoogleEvent) -> UUID | None:
    """Our event as Google has it now: changed by someone there (an etag we did not write) means it
    is overwritten by a push; returns the booking then."""
    row = (
        await session.execute(
            select(GcalEvent.etag, GcalEvent.live).where(
                GcalEvent.calendar_id == calendar.id, GcalEvent.google_event_id == event.id
            )
        )
    ).first()
    if row is None:
        return None  # not an event we keep a mapping of (another organisation's, say): not ours to fix
    if row.etag == event.etag or (not row.live and event.status == "cancelled"):
        return None
    logger.warning(
        "gcal: our event %s in calendar %s was edited in Google; it will be overwritten", event.id, calendar.id
    )
    return await force_repush(session, calendar.id, event.id)


def client_for(http: httpx.AsyncClient, cfg: GcalConfig, token: str) -> GoogleCalendarClient:
    return GoogleCalendarClient(
        http,
        cfg.api_base_url,
        token,
        max_rate_retries=cfg.max_rate_retries,
        backoff_base_seconds=cfg.backoff_base_seconds,
    )
