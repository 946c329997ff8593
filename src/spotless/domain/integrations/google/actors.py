"""Google Calendar's jobs.

- `integrations.gcal_push_visit` hears a booking created, moved, cancelled or (un)assigned and
  reconciles its events (push.py: idempotent, one Google call per real change).
- `integrations.gcal_repush` overwrites our event after someone edited it in Google.
- `integrations.gcal_sync_calendar` syncs one calendar now (a watch notification asked).
- `integrations.gcal_sync` (the guides' `gcal-sync`) is the poller: the scheduler sends it every
  minute; it claims the connections whose GCAL_SYNC_INTERVAL_SECONDS have passed (the core's
  cadence.claim_due: FOR UPDATE SKIP LOCKED, next_sync_at pushed in the same transaction, disabled
  and needs-reconnect ones skipped), so two runners never sync one connection and a connection syncs
  at its interval however often the runner loops. Each connection is its own transactions: one
  failing never stops the others.

Rate answers (429 / 403 rateLimitExceeded) are retried in the client with back-off; past that the
calendar is left alone until `backoff_until` with its cursor intact. NeedsReconnect (the core
marked the connection and told the office) stops that connection without retrying."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.db.engine import apply_org_now
from spotless.domain.integrations.google.calendars import PROVIDER, calendar_for, connection_of
from spotless.domain.integrations.google.channels import maintain_channel
from spotless.domain.integrations.google.client import GoogleApiError, RateLimited, http_client
from spotless.domain.integrations.google.config import GcalConfig, gcal_config
from spotless.domain.integrations.google.controllers import INBOX_SOURCE
from spotless.domain.integrations.google.models import GcalCalendar
from spotless.domain.integrations.google.push import push_visit
from spotless.domain.integrations.google.sync import SyncReport, client_for, sync_calendar
from spotless.domain.integrations.public import (
    IntegrationDisconnected,
    NeedsReconnect,
    access_token,
    claim_due,
    record_sync,
)
from spotless.domain.scheduling.events import (
    BookingAssignmentsChanged,
    BookingCancelled,
    BookingCreated,
    BookingEvent,
    BookingRescheduled,
)
from spotless.domain.workforce.public import clear_external_busy
from spotless.lib.events import subscriber
from spotless.lib.inbox import HandlerOutcome, ReceivedEvent, inbox_handler
from spotless.lib.jobs import job
from spotless.lib.jobs.runtime import JobRuntime, get_runtime
from spotless.lib.jobs.scheduler import exclusive_slot

logger = logging.getLogger("spotless.integrations.google")

PUSH_JOB = "integrations.gcal_push_visit"
REPUSH_JOB = "integrations.gcal_repush"
SYNC_CALENDAR_JOB = "integrations.gcal_sync_calendar"
POLL_JOB = "integrations.gcal_sync"
CLAIM_BATCH = 50
# A rate answer the client's own retries did not outlast: leave the calendar alone at least this long.
MIN_BACKOFF = timedelta(seconds=60)

Outcome = Literal["synced", "busy", "backing_off", "rate_limited", "needs_reconnect", "inactive", "failed"]


@dataclass
class SyncOutcome:
    outcome: Outcome
    report: SyncReport | None = None
    error: str | None = None


# --- push ----------------------------------------------------------------------------------------


async def run_push(rt: JobRuntime, org_id: UUID, booking_id: UUID, http: httpx.AsyncClient | None = None) -> None:
    cfg = gcal_config(rt.settings)
    async with http_client(cfg.timeout_seconds) as own, rt.session(org_id) as session:
        report = await push_visit(session, http or own, cfg, org_id, booking_id)
    logger.info("gcal push of booking %s: %s", booking_id, report)


@subscriber(
    BookingCreated,
    BookingRescheduled,
    BookingCancelled,
    BookingAssignmentsChanged,
    name=PUSH_JOB,
    max_retries=10,
    time_limit_ms=120_000,
)
async def push_visit_on_change(event: BookingEvent, event_id: str) -> None:
    """Idempotent on the booking's state, not the event: a late or repeated delivery pushes what
    the booking is now, and nothing when that is already in Google."""
    await run_push(get_runtime(), event.org_id, event.booking_id)


@job(REPUSH_JOB, max_retries=10, time_limit_ms=120_000)
async def repush_visit(org_id: UUID, booking_id: UUID) -> None:
    await run_push(get_runtime(), org_id, booking_id)


# --- pull ----------------------------------------------------------------------------------------


async def sync_connection(
    rt: JobRuntime,
    cfg: GcalConfig,
    http: httpx.AsyncClient,
    org_id: UUID,
    connection_id: UUID,
    *,
    now: datetime | None = None,
) -> SyncOutcome:
    """One calendar's pass, then its watch channel's upkeep (each its own transaction)."""
    now = now or datetime.now(UTC)
    try:
        async with rt.session(org_id) as session:
            connection = await connection_of(session, connection_id)
            if connection is None or connection.provider != PROVIDER or connection.status != "active":
                return SyncOutcome("inactive")
            calendar = await calendar_for(session, connection, for_update=True, skip_locked=True)
            if calendar is None:
                return SyncOutcome("busy")  # another worker is syncing it right now
            if calendar.backoff_until is not None and calendar.backoff_until > now:
                return SyncOutcome("backing_off")
            client = client_for(http, cfg, await access_token(session, connection_id, org_id=org_id))
            report = await sync_calendar(session, client, cfg, calendar, now=now)
            for booking_id in dict.fromkeys(report.ours_edited):
                repush_visit.enqueue(session, org_id, booking_id)
    except NeedsReconnect:
        return SyncOutcome("needs_reconnect", error="needs_reconnect")
    except RateLimited as exc:
        wait = max(timedelta(seconds=exc.retry_after), MIN_BACKOFF)
        await _note_failure(rt, org_id, connection_id, str(exc), backoff_until=now + wait)
        logger.warning("gcal sync of connection %s rate limited: backing off %ss", connection_id, wait.seconds)
        return SyncOutcome("rate_limited", error=str(exc))
    except (GoogleApiError, httpx.HTTPError) as exc:
        await _note_failure(rt, org_id, connection_id, str(exc)[:500])
        logger.warning("gcal sync of connection %s failed: %s", connection_id, exc)
        return SyncOutcome("failed", error=str(exc)[:500])
    logger.info("gcal sync of connection %s: %s", connection_id, report)
    if cfg.webhook_url:
        try:
            async with rt.session(org_id) as session:
                connection = await connection_of(session, connection_id)
                calendar = (
                    await calendar_for(session, connection, for_update=True, skip_locked=True) if connection else None
                )
                if calendar is not None:
                    client = client_for(http, cfg, await access_token(session, connection_id, org_id=org_id))
                    await maintain_channel(session, client, cfg, calendar, now)
        except (GoogleApiError, httpx.HTTPError, NeedsReconnect) as exc:
            # Polling still keeps the calendar fresh; the next pass tries the channel again.
            logger.warning("gcal watch channel upkeep for connection %s failed: %s", connection_id, exc)
    return SyncOutcome("synced", report=report)


async def _note_failure(
    rt: JobRuntime, org_id: UUID, connection_id: UUID, error: str, *, backoff_until: datetime | None = None
) -> None:
    async with rt.session(org_id) as session:
        connection = await connection_of(session, connection_id)
        calendar = await calendar_for(session, connection, for_update=True, skip_locked=True) if connection else None
        if calendar is not None:
            calendar.last_error = error
            if backoff_until is not None:
                calendar.backoff_until = backoff_until


@job(SYNC_CALENDAR_JOB, max_retries=5, time_limit_ms=5 * 60_000, max_age_ms=3_600_000)
async def sync_calendar_now(org_id: UUID, connection_id: UUID) -> None:
    """A watch notification: sync that calendar now (a running sync of it makes this a no-op; the
    notification's change is then read by the next pass, its cursor being before it)."""
    rt = get_runtime()
    cfg = gcal_config(rt.settings)
    async with http_client(cfg.timeout_seconds) as http:
        found = await sync_connection(rt, cfg, http, org_id, connection_id)
    logger.info("gcal notified sync of connection %s: %s", connection_id, found.outcome)


async def poll(rt: JobRuntime, *, limit: int = CLAIM_BATCH, now: datetime | None = None) -> Counter[str]:
    """Every connection due (claimed by the core's cadence), each synced and recorded."""
    cfg = gcal_config(rt.settings)
    outcomes: Counter[str] = Counter()
    async with http_client(cfg.timeout_seconds) as http:
        while True:
            async with rt.session() as session:
                due = await claim_due(session, PROVIDER, cfg.sync_interval_seconds, limit)
            for connection in due:
                found = await sync_connection(rt, cfg, http, connection.org_id, connection.id, now=now)
                outcomes[found.outcome] += 1
                if found.outcome in ("synced", "rate_limited", "failed"):
                    async with rt.session(connection.org_id) as session:
                        await record_sync(session, connection.id, ok=found.outcome == "synced", error=found.error)
            if len(due) < limit:
                return outcomes


@job(
    POLL_JOB,
    aliases=("gcal-sync",),
    every=timedelta(minutes=1),
    max_retries=3,
    time_limit_ms=10 * 60_000,
    max_age_ms=600_000,
)
async def gcal_sync(slot: str | None = None) -> None:
    rt = get_runtime()
    async with exclusive_slot(rt.sessionmaker, POLL_JOB, slot) as mine:
        if not mine:
            return
        outcomes = await poll(rt)
        logger.info("gcal-sync: %s", dict(outcomes))


async def forget_calendar(rt: JobRuntime, org_id: UUID, connection_id: UUID) -> None:
    """A disconnected calendar blocks nothing any more. Its tokens went with the disconnect, so its
    watch channels cannot be stopped at Google: they are forgotten here (their notifications are
    then answered as not ours) and Google drops them at expiry, GCAL_CHANNEL_TTL_SECONDS at most."""
    async with rt.session(org_id) as session:
        calendar = await session.scalar(
            select(GcalCalendar).where(GcalCalendar.connection_id == connection_id).with_for_update()
        )
        if calendar is None:
            return
        await clear_external_busy(session, calendar.id)
        calendar.sync_token = None
        calendar.full_synced_at = None
        calendar.channel_id = calendar.channel_resource_id = calendar.channel_token_hash = None
        calendar.old_channel_id = calendar.old_channel_resource_id = None
        calendar.channel_expires_at = None


@subscriber(IntegrationDisconnected, name="integrations.gcal_forget_calendar", max_retries=10, time_limit_ms=60_000)
async def gcal_forget_calendar(event: IntegrationDisconnected, event_id: str) -> None:
    if event.provider == PROVIDER:
        await forget_calendar(get_runtime(), event.org_id, event.connection_id)


@inbox_handler(INBOX_SOURCE)
async def handle_notification(session: AsyncSession, event: ReceivedEvent) -> HandlerOutcome:
    """A stored watch notification: queue that calendar's sync (the notification says only "something
    changed"; the sync reads what, with the stored token, so order and duplicates do not matter)."""
    org_id = UUID(event.payload["org_id"])
    await apply_org_now(session, org_id)
    connection_id = await session.scalar(
        select(GcalCalendar.connection_id).where(
            GcalCalendar.id == UUID(event.payload["calendar_row_id"]),
            GcalCalendar.channel_id == event.payload["channel_id"],
        )
    )
    if connection_id is None:
        logger.info("gcal notification for channel %s no longer ours: ignored", event.payload["channel_id"])
        return "ignored"
    sync_calendar_now.enqueue(session, org_id, connection_id)
    return "processed"
