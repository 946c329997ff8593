"""To clients, when their booking changes: confirmed, rescheduled, cancelled; and "on my way".

Each hears scheduling's event and requests one message in the subscriber's transaction; the
deliveries row's unique key (send key "confirmed" / the new start / "cancelled") makes a
redelivered event a no-op, so a booking is confirmed once however often the event arrives. What
the message says is loaded when it is sent: a booking cancelled before its confirmation went out
is not confirmed (`build_context` answers None, the delivery is skipped).

On my way: the field app's travel step (scheduling/field.travel) announces BookingTravelStarted
once per booking; the client hears it by text when they agreed to texts on their number (the
kind's `sms_when_consented`), else as they prefer, and not in the organisation's quiet hours (a
text then waits for their end, as every text does). One per visit: send key = the visit's start."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.messaging.notifications.context import (
    TEMPLATES,
    UPCOMING,
    load_visit,
    local_when,
    sample_visit,
    uuid_param,
    visit_context,
    with_recipient,
    worker_names,
    zone_of,
)
from spotless.domain.messaging.public import MessageKind, Recipient, register_kind, request_message
from spotless.domain.scheduling.events import (
    BookingCancelled,
    BookingConfirmed,
    BookingRescheduled,
    BookingTravelStarted,
)
from spotless.domain.scheduling.public import visit_notice
from spotless.lib.events import subscriber
from spotless.lib.jobs.runtime import get_runtime

CONFIRMED = "booking.confirmed"
RESCHEDULED = "booking.rescheduled"
CANCELLED = "booking.cancelled"
ON_MY_WAY = "booking.on_my_way"


async def _confirmed_context(session: AsyncSession, org_id: UUID, params: Mapping[str, Any]) -> dict[str, Any] | None:
    visit = await load_visit(session, params)
    if visit is None or visit.status != "confirmed":
        return None
    return await visit_context(session, org_id, visit)


async def _rescheduled_context(session: AsyncSession, org_id: UUID, params: Mapping[str, Any]) -> dict[str, Any] | None:
    visit = await load_visit(session, params)
    # Moved again since: the later move's own message tells of it.
    if visit is None or visit.status not in UPCOMING or visit.starts_at != datetime.fromisoformat(params["starts_at"]):
        return None
    context = await visit_context(session, org_id, visit)
    context["previous"] = local_when(
        datetime.fromisoformat(params["previous_starts_at"]), await zone_of(session, org_id)
    )
    return context


async def _cancelled_context(session: AsyncSession, org_id: UUID, params: Mapping[str, Any]) -> dict[str, Any] | None:
    visit = await load_visit(session, params)
    if visit is None or visit.status != "cancelled":
        return None
    return await visit_context(session, org_id, visit)


async def _on_my_way_context(session: AsyncSession, org_id: UUID, params: Mapping[str, Any]) -> dict[str, Any] | None:
    visit = await load_visit(session, params)
    # Cancelled or moved since the cleaner set off (a text deferred by quiet hours): not due.
    if visit is None or visit.status != "confirmed" or visit.starts_at != datetime.fromisoformat(params["starts_at"]):
        return None
    context = await visit_context(session, org_id, visit)
    names = await worker_names(session, [uuid_param(params, "worker_id")])
    context["cleaner"] = names[0] if names else ""
    return context


def _sample_on_my_way() -> dict[str, Any]:
    return {**sample_visit(), "cleaner": "Sam Lee"}


def _sample_rescheduled() -> dict[str, Any]:
    return {
        **sample_visit(),
        "previous": {"date": "Friday 6 March 2026", "time": "13:00", "iso": "2026-03-06T13:00:00-05:00"},
    }


register_kind(
    MessageKind(
        name=CONFIRMED,
        audience="client",
        transactional=True,
        channels=("email", "sms"),
        template="booking_confirmed",
        template_dir=TEMPLATES,
        build_context=_confirmed_context,
        sample_context=with_recipient(sample_visit),
    )
)
register_kind(
    MessageKind(
        name=RESCHEDULED,
        audience="client",
        transactional=True,
        channels=("email", "sms"),
        template="booking_rescheduled",
        template_dir=TEMPLATES,
        build_context=_rescheduled_context,
        sample_context=with_recipient(_sample_rescheduled),
    )
)
register_kind(
    MessageKind(
        name=CANCELLED,
        audience="client",
        transactional=True,
        channels=("email", "sms"),
        template="booking_cancelled",
        template_dir=TEMPLATES,
        build_context=_cancelled_context,
        sample_context=with_recipient(sample_visit),
    )
)

register_kind(
    MessageKind(
        name=ON_MY_WAY,
        audience="client",
        transactional=True,
        channels=("email", "sms"),
        template="booking_on_my_way",
        template_dir=TEMPLATES,
        build_context=_on_my_way_context,
        sample_context=with_recipient(_sample_on_my_way),
        sms_when_consented=True,
    )
)


async def _client_of(session: AsyncSession, booking_id: UUID) -> UUID | None:
    visit = await visit_notice(session, booking_id)
    return visit.client_id if visit is not None else None


async def _request(org_id: UUID, booking_id: UUID, kind: str, send_key: str, params: dict[str, Any]) -> None:
    async with get_runtime().session(org_id) as session:
        client_id = await _client_of(session, booking_id)
        if client_id is None:
            return
        await request_message(
            session,
            org_id=org_id,
            kind=kind,
            recipient=Recipient(kind="client", id=client_id),
            subject_type="booking",
            subject_id=booking_id,
            send_key=send_key,
            params={"booking_id": str(booking_id), **params},
        )


@subscriber(BookingConfirmed, name="messaging.booking_confirmed", max_retries=10, time_limit_ms=60_000)
async def booking_confirmed(event: BookingConfirmed, event_id: str) -> None:
    await _request(event.org_id, event.booking_id, CONFIRMED, "confirmed", {})


@subscriber(BookingRescheduled, name="messaging.booking_rescheduled", max_retries=10, time_limit_ms=60_000)
async def booking_rescheduled(event: BookingRescheduled, event_id: str) -> None:
    # One message per new start: the same move heard twice sends once.
    await _request(
        event.org_id,
        event.booking_id,
        RESCHEDULED,
        event.starts_at.isoformat(),
        {"starts_at": event.starts_at.isoformat(), "previous_starts_at": event.previous_starts_at.isoformat()},
    )


@subscriber(BookingCancelled, name="messaging.booking_cancelled", max_retries=10, time_limit_ms=60_000)
async def booking_cancelled(event: BookingCancelled, event_id: str) -> None:
    await _request(event.org_id, event.booking_id, CANCELLED, "cancelled", {})


@subscriber(BookingTravelStarted, name="messaging.booking_on_my_way", max_retries=10, time_limit_ms=60_000)
async def booking_on_my_way(event: BookingTravelStarted, event_id: str) -> None:
    # One per visit (the booking's start when the cleaner set off): heard twice, sent once.
    await _request(
        event.org_id,
        event.booking_id,
        ON_MY_WAY,
        f"on_my_way:{event.starts_at.isoformat()}",
        {"starts_at": event.starts_at.isoformat(), "worker_id": str(event.worker_id)},
    )
