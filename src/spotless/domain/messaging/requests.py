"""Asking for a message: in the caller's transaction, so a rollback sends nothing."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from spotless.domain.identity.public import ROLE_PERMISSIONS, Membership
from spotless.domain.messaging.delivery import DELIVER_JOB
from spotless.domain.messaging.kinds import Recipient, get_kind
from spotless.domain.messaging.models import Delivery
from spotless.lib.jobs import enqueue


async def request_message(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    kind: str,
    recipient: Recipient,
    subject_type: str,
    subject_id: uuid.UUID,
    send_key: str,
    params: Mapping[str, Any] | None = None,
) -> bool:
    """One `deliveries` row per channel the kind can use (the job decides which one goes, from the
    recipient's preference), and a delivery job per new row through the outbox. A repeat of the
    same request (same organisation, kind, subject, send key, recipient) is a no-op: False."""
    spec = get_kind(kind)
    # JSON now (ids and dates become strings), so the job reads exactly what was stored.
    plain = msgspec.to_builtins(dict(params or {}))
    now = datetime.now(UTC)
    rows = [
        {
            "id": uuid7(),
            "org_id": org_id,
            "kind": spec.name,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "send_key": send_key,
            "recipient_kind": recipient.kind,
            "recipient_id": recipient.id,
            "channel": channel,
            "status": "queued",
            "params": plain,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for channel in spec.channels
    ]
    inserted = (
        (
            await session.execute(
                pg_insert(Delivery)
                .values(rows)
                .on_conflict_do_nothing(constraint="uq_deliveries_request")
                .returning(Delivery.id)
            )
        )
        .scalars()
        .all()
    )
    for delivery_id in inserted:
        enqueue(session, DELIVER_JOB, str(org_id), str(delivery_id))
    return bool(inserted)


async def office_recipients(session: AsyncSession, org_id: uuid.UUID, permission: str) -> list[Recipient]:
    """The organisation's active members whose role holds `permission` (e.g. "settings.manage"
    for owners and admins), oldest membership first."""
    roles = sorted(role for role, keys in ROLE_PERMISSIONS.items() if permission in keys)
    if not roles:
        return []
    user_ids = (
        await session.scalars(
            select(Membership.user_id)
            .where(Membership.org_id == org_id, Membership.is_active.is_(True), Membership.role.in_(roles))
            .order_by(Membership.created_at, Membership.user_id)
        )
    ).all()
    return [Recipient(kind="user", id=user_id) for user_id in user_ids]
