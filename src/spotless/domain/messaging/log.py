"""The message log the office reads: what was sent about a booking, or to a client, to whom,
when, and what became of it (delivered or bounced, once the provider reports it: reports.py). Addresses of workers and members are masked for a reader who may
not see their contact details."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.clients.public import Client
from spotless.domain.identity.public import Principal
from spotless.domain.messaging.models import Delivery
from spotless.domain.messaging.schemas import MessageLog, MessageLogEntry
from spotless.domain.scheduling.public import Booking
from spotless.lib.errors import not_found


def mask(address: str | None) -> str | None:
    if not address:
        return address
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"***{address[-4:]}"


def _visible(principal: Principal, row: Delivery) -> str | None:
    if row.recipient_kind == "worker" and not principal.can("workers.contact.view"):
        return mask(row.address)
    if row.recipient_kind == "user" and not principal.can("users.manage"):
        return mask(row.address)
    return row.address


def _entries(principal: Principal, rows: Any) -> MessageLog:
    return MessageLog(
        items=[
            MessageLogEntry(
                id=row.id,
                kind=row.kind,
                channel=row.channel,
                recipient_kind=row.recipient_kind,
                recipient_id=row.recipient_id,
                to=_visible(principal, row),
                status=row.status,  # type: ignore[arg-type]  # the check constraint's values
                attempts=row.attempts,
                summary=row.summary,
                reason=row.error,
                subject_type=row.subject_type,
                subject_id=row.subject_id,
                requested_at=row.created_at,
                finished_at=row.finished_at,
                reported_at=row.reported_at,
            )
            for row in rows
        ]
    )


async def booking_log(session: AsyncSession, principal: Principal, booking_id: uuid.UUID, limit: int) -> MessageLog:
    if await session.scalar(select(Booking.id).where(Booking.id == booking_id)) is None:
        raise not_found("booking")
    rows = await session.scalars(
        select(Delivery)
        .where(Delivery.subject_type == "booking", Delivery.subject_id == booking_id)
        .order_by(Delivery.id.desc())
        .limit(limit)
    )
    return _entries(principal, rows)


async def client_log(session: AsyncSession, principal: Principal, client_id: uuid.UUID, limit: int) -> MessageLog:
    if await session.scalar(select(Client.id).where(Client.id == client_id)) is None:
        raise not_found("client")
    rows = await session.scalars(
        select(Delivery).where(Delivery.client_id == client_id).order_by(Delivery.id.desc()).limit(limit)
    )
    return _entries(principal, rows)
