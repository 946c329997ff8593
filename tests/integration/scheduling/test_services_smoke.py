"""Service-level checks (no HTTP): placing, conflicts, moving."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.identity.permissions import permissions_for
from spotless.domain.identity.principal import Principal
from spotless.domain.scheduling import placement
from spotless.domain.scheduling.context import org_context
from spotless.domain.scheduling.rules import SchedulingConflict
from spotless.domain.scheduling.schemas import BookingCreate
from tests.support.factories import AppSessions, arrange_world, next_weekday


def principal(org_id: uuid.UUID, role: str = "dispatcher") -> Principal:
    return Principal(
        user_id=uuid.uuid4(),
        org_id=org_id,
        session_id=uuid.uuid4(),
        role=role,
        permissions=permissions_for(role),
        email="d@example.com",
    )


async def test_second_booking_for_same_worker_conflicts(owner_engine: AsyncEngine, app_sessions: AppSessions) -> None:
    world = await arrange_world(owner_engine)
    who = principal(world.org_id)
    day = next_weekday(2)
    body = BookingCreate(
        client_id=world.client_id,
        address_id=world.address_id,
        service_id=world.service_id,
        starts_at=datetime.fromisoformat(world.at(day, 9)),
        worker_ids=[world.worker_ids[0]],
    )
    async with app_sessions.scoped(world.org_id) as session:
        ctx = await org_context(session, world.org_id)
        booking, workers = await placement.create_booking(session, who, ctx, body)
        assert workers == [world.worker_ids[0]]
        first_id = booking.id
    async with app_sessions.scoped(world.org_id) as session:
        ctx = await org_context(session, world.org_id)
        with pytest.raises(SchedulingConflict) as caught:
            await placement.create_booking(session, who, ctx, body)
        assert caught.value.conflicting_booking_id == first_id
