"""Visits pushed to Google calendars: each cleaner's own calendar gets the visits they are assigned
to, the organisation's shared calendar every assigned visit; a move moves the event, a cancellation
deletes it, an unassignment removes it from that cleaner's calendar.

`push_visit` reconciles one booking with every calendar concerned: it computes the event we want
there, and calls Google only when its digest differs from what `gcal_events` says we last wrote.
So a redelivered or duplicated job calls nothing, and one move patches the event exactly once.
The event id is ours (derived from the booking id), so an insert replayed after a crash answers 409
and becomes a patch, never a second event. Jobs for one booking are serialised by an advisory lock.

The event carries only what the cleaner needs to see it is a Spotless visit and when; no client
name or address leaves for a personal calendar. Our booking id is in the private extended
properties (visible to the calendar's owner's apps only), which is how sync recognises our events."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from spotless.domain.integrations.google.calendars import active_connections, calendar_for, calendars_by_id
from spotless.domain.integrations.google.client import Duplicate, GoogleCalendarClient
from spotless.domain.integrations.google.config import GcalConfig
from spotless.domain.integrations.google.models import GcalCalendar, GcalEvent
from spotless.domain.integrations.public import NeedsReconnect, access_token
from spotless.domain.scheduling.public import VisitNotice, visit_notice

logger = logging.getLogger("spotless.integrations.google")

BOOKING_KEY = "spotless_booking_id"
ORG_KEY = "spotless_org_id"
SUMMARY = "Cleaning visit (Spotless)"


def event_id_for(booking_id: UUID) -> str:
    """Google accepts ids of base32hex characters (0-9, a-v): "spotless" and a UUID's hex are."""
    return "spotless" + booking_id.hex


def desired_event(visit: VisitNotice | None, calendar: GcalCalendar) -> dict[str, Any] | None:
    """The event this calendar should show for the visit, or None when it should show none."""
    if visit is None or visit.status == "cancelled" or not visit.worker_ids:
        return None
    if calendar.worker_id is not None and calendar.worker_id not in visit.worker_ids:
        return None
    return {
        "summary": SUMMARY,
        "description": f"Spotless booking {visit.id}. Changes made here are overwritten: change it in Spotless.",
        "start": {"dateTime": visit.starts_at.astimezone(UTC).isoformat()},
        "end": {"dateTime": visit.ends_at.astimezone(UTC).isoformat()},
        "status": "confirmed",
        "transparency": "opaque",
        "visibility": "private",
        "extendedProperties": {"private": {BOOKING_KEY: str(visit.id), ORG_KEY: str(calendar.org_id)}},
    }


def digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass
class PushReport:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    skipped: int = 0


async def _lock_booking(session: AsyncSession, booking_id: UUID) -> None:
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"gcal-push:{booking_id}"}
    )


async def push_visit(
    session: AsyncSession, http: httpx.AsyncClient, cfg: GcalConfig, org_id: UUID, booking_id: UUID
) -> PushReport:
    """Bring every calendar concerned in line with the booking (see the module docstring)."""
    await _lock_booking(session, booking_id)
    report = PushReport()
    visit = await visit_notice(session, booking_id)
    mapped = {
        m.calendar_id: m
        for m in await session.scalars(select(GcalEvent).where(GcalEvent.booking_id == booking_id).with_for_update())
    }
    targets: dict[UUID, GcalCalendar] = {}
    if visit is not None and visit.worker_ids and visit.status != "cancelled":
        for connection in await active_connections(session):
            calendar = await calendar_for(session, connection)
            if calendar is not None and (calendar.worker_id is None or calendar.worker_id in visit.worker_ids):
                targets[calendar.id] = calendar
    for calendar in await calendars_by_id(session, [c for c in mapped if c not in targets]):
        targets[calendar.id] = calendar
    statuses = await _connection_statuses(session, [c.connection_id for c in targets.values()])
    for calendar in targets.values():
        if statuses.get(calendar.connection_id) != "active":
            report.skipped += 1  # pushed again by the next change once reconnected
            continue
        try:
            await _push_one(session, http, cfg, org_id, visit, booking_id, calendar, mapped.get(calendar.id), report)
        except NeedsReconnect:
            logger.warning(
                "gcal push: connection %s needs reconnecting; booking %s not pushed", calendar.connection_id, booking_id
            )
            report.skipped += 1
    return report


async def _connection_statuses(session: AsyncSession, ids: list[UUID]) -> dict[UUID, str]:
    from spotless.domain.integrations.public import IntegrationConnection

    if not ids:
        return {}
    rows = await session.execute(
        select(IntegrationConnection.id, IntegrationConnection.status).where(IntegrationConnection.id.in_(ids))
    )
    return {r.id: r.status for r in rows}


async def _push_one(
    session: AsyncSession,
    http: httpx.AsyncClient,
    cfg: GcalConfig,
    org_id: UUID,
    visit: VisitNotice | None,
    booking_id: UUID,
    calendar: GcalCalendar,
    mapping: GcalEvent | None,
    report: PushReport,
) -> None:
    body = desired_event(visit, calendar)
    now = datetime.now(UTC)
    if body is None:
        if mapping is None or not mapping.live:
            report.unchanged += 1
            return
        client = await _client(session, http, cfg, org_id, calendar)
        await client.delete_event(calendar.calendar_id, mapping.google_event_id)
        mapping.live, mapping.pushed_version, mapping.etag, mapping.pushed_at = False, None, None, now
        report.deleted += 1
        return
    version = digest(body)
    if mapping is not None and mapping.live and mapping.pushed_version == version:
        report.unchanged += 1
        return
    client = await _client(session, http, cfg, org_id, calendar)
    event_id = mapping.google_event_id if mapping is not None else event_id_for(booking_id)
    if mapping is None:
        try:
            written = await client.insert_event(calendar.calendar_id, {"id": event_id, **body})
            report.created += 1
        except Duplicate:  # our own earlier insert whose mapping row was lost with its transaction
            written = await client.patch_event(calendar.calendar_id, event_id, body)
            report.updated += 1
        mapping = GcalEvent(
            id=uuid7(), org_id=org_id, calendar_id=calendar.id, booking_id=booking_id, google_event_id=event_id
        )
        session.add(mapping)
    else:
        written = await client.patch_event(calendar.calendar_id, event_id, body)
        report.updated += 1
    mapping.pushed_version, mapping.etag, mapping.live, mapping.pushed_at = version, written.etag, True, now
    await session.flush()


async def _client(
    session: AsyncSession, http: httpx.AsyncClient, cfg: GcalConfig, org_id: UUID, calendar: GcalCalendar
) -> GoogleCalendarClient:
    token = await access_token(session, calendar.connection_id, org_id=org_id)
    return GoogleCalendarClient(
        http,
        cfg.api_base_url,
        token,
        max_rate_retries=cfg.max_rate_retries,
        backoff_base_seconds=cfg.backoff_base_seconds,
    )


async def force_repush(session: AsyncSession, calendar_id: UUID, google_event_id: str) -> UUID | None:
    """An edit made in Google to our event: forget what we pushed so the next push overwrites it.
    Returns the booking to push, or None when the event is not (or no longer) ours to keep."""
    mapping = await session.scalar(
        select(GcalEvent)
        .where(GcalEvent.calendar_id == calendar_id, GcalEvent.google_event_id == google_event_id)
        .with_for_update()
    )
    if mapping is None:
        return None
    mapping.pushed_version = None
    mapping.overwritten = mapping.overwritten + 1
    return mapping.booking_id
