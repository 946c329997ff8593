"""An organisation's calendar: a `World` ready to book (below the API with `arrange_world`, or
through it with `api_world`), bookings, series and scheduling settings; and scheduling's
cross-organisation factories (tests/support/tenancy.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from spotless.domain.identity.models import Organization
from spotless.domain.scheduling.models import Booking, BookingAssignment, BookingSeries, SchedulingSettings
from spotless.domain.scheduling.states import HOLDS_TIME
from tests.support.factories._http import expect
from tests.support.factories.catalog import new_service
from tests.support.factories.clients import new_address, new_client
from tests.support.factories.db import add, arrange
from tests.support.factories.identity import new_org
from tests.support.factories.workforce import EVERY_DAY, new_time_off, new_worker
from tests.support.tenancy import REQUEST_BODIES, register


@dataclass
class World:
    """One organisation ready to book: ids of what a booking needs."""

    org_id: UUID
    timezone: str
    client_id: UUID
    address_id: UUID
    service_id: UUID
    worker_ids: list[UUID] = field(default_factory=list)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def at(self, day: date, hh: int, mm: int = 0) -> str:
        """ISO instant (with the org's offset) of a local wall-clock time (a time in a DST gap
        lands past it, as the scheduler reads it)."""
        instant = datetime.combine(day, time(hh, mm), tzinfo=self.tz).astimezone(UTC)
        return instant.astimezone(self.tz).isoformat()

    def booking(self, day: date, hh: int, mm: int = 0, workers: list[UUID] | None = None, **extra: object) -> dict:
        """A POST /v1/bookings body at local `hh:mm` on `day`, by the first worker unless told."""
        body: dict[str, object] = {
            "client_id": str(self.client_id),
            "address_id": str(self.address_id),
            "service_id": str(self.service_id),
            "starts_at": self.at(day, hh, mm),
            "worker_ids": [str(w) for w in (self.worker_ids[:1] if workers is None else workers)],
        }
        body.update(extra)
        return body

    def series(
        self, start: date, start_time: str = "09:00", workers: list[UUID] | None = None, **extra: object
    ) -> dict:
        """A weekly POST /v1/series body from `start`, by the first worker unless told (none in
        a world without workers)."""
        body: dict[str, object] = {
            "client_id": str(self.client_id),
            "address_id": str(self.address_id),
            "service_id": str(self.service_id),
            "frequency": "weekly",
            "start_date": start.isoformat(),
            "start_time": start_time,
        }
        cleaners = self.worker_ids[:1] if workers is None else workers
        if cleaners or workers is not None:
            body["worker_ids"] = [str(w) for w in cleaners]
        body.update(extra)
        return body


def next_weekday(weekday: int, weeks_ahead: int = 1, start: date | None = None) -> date:
    """A date safely in the future on `weekday` (0 = Monday)."""
    base = (start or datetime.now(UTC).date()) + timedelta(days=7 * weeks_ahead)
    return base + timedelta(days=(weekday - base.weekday()) % 7)


# --- rows, below the API ----------------------------------------------------------------------


async def new_scheduling_settings(db: AsyncSession, org_id: UUID, **overrides: Any) -> SchedulingSettings:
    """The organisation's one settings row, made or changed (`travel_buffer_minutes` ...)."""
    row = await db.scalar(select(SchedulingSettings).where(SchedulingSettings.org_id == org_id))
    if row is None:
        fields: dict[str, Any] = {"travel_buffer_minutes": 0, "slot_step_minutes": 30}
        return await add(db, SchedulingSettings(org_id=org_id, **{**fields, **overrides}))
    for name, value in overrides.items():
        setattr(row, name, value)
    await db.flush()
    return row


async def new_booking(
    db: AsyncSession,
    org_id: UUID,
    client_id: UUID,
    address_id: UUID,
    service_id: UUID,
    *,
    starts_at: datetime | None = None,
    minutes: int = 120,
    worker_ids: Sequence[UUID] = (),
    buffer_minutes: int = 0,
    **overrides: Any,
) -> Booking:
    """A pending one-off booking (tomorrow on the hour unless told), with an assignment per
    worker that holds `minutes` plus the travel buffer, as the scheduler writes them."""
    starts_at = starts_at or (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    fields: dict[str, Any] = {
        "ends_at": starts_at + timedelta(minutes=minutes),
        "status": "pending",
        "frequency": "once",
        "price": {},
        "total_cents": 10_000,
        "currency": "CAD",
        "estimated_minutes": minutes,
        "params": {},
        "addon_ids": [],
    }
    booking = await add(
        db,
        Booking(
            org_id=org_id,
            client_id=client_id,
            address_id=address_id,
            service_id=service_id,
            starts_at=starts_at,
            **{**fields, **overrides},
        ),
    )
    for worker_id in worker_ids:
        db.add(
            BookingAssignment(
                org_id=org_id,
                booking_id=booking.id,
                worker_id=worker_id,
                starts_at=booking.starts_at,
                ends_at=booking.ends_at,
                during=Range(booking.starts_at, booking.ends_at + timedelta(minutes=buffer_minutes)),
                active=booking.status in HOLDS_TIME,
            )
        )
    await db.flush()
    return booking


async def new_series(
    db: AsyncSession,
    org_id: UUID,
    client_id: UUID,
    address_id: UUID,
    service_id: UUID,
    *,
    worker_ids: Sequence[UUID] = (),
    **overrides: Any,
) -> BookingSeries:
    """An active weekly series at 09:00 Toronto time from next Wednesday, done by `worker_ids`
    in that order; never materialised unless told (`materialised_until`)."""
    fields: dict[str, Any] = {
        "frequency": "weekly",
        "interval": 1,
        "start_time": time(9),
        "timezone": "America/Toronto",
        "anchor_date": next_weekday(2),
        "params": {},
        "addon_ids": [],
        "status": "active",
    }
    series = BookingSeries(
        org_id=org_id,
        client_id=client_id,
        address_id=address_id,
        service_id=service_id,
        **{**fields, **overrides},
    )
    series.worker_ids.extend(worker_ids)
    return await add(db, series)


async def arrange_world(
    owner_engine: AsyncEngine,
    org_id: UUID | None = None,
    *,
    timezone: str = "America/Toronto",
    workers: int = 2,
    hours: tuple[time, time] = (time(8), time(17)),
    weekdays: tuple[int, ...] = EVERY_DAY,
    service_minutes: int = 120,
    price_cents: int = 10_000,
    buffer_minutes: int | None = None,
    worker_user_ids: list[UUID] | None = None,
) -> World:
    """A client with an address, a service and `workers` cleaners working `hours` on `weekdays`,
    in `org_id` (its timezone set to `timezone`) or in a new organisation."""
    async with arrange(owner_engine) as db:
        if org_id is None:
            org_id = (await new_org(db, name="Org", timezone=timezone)).id
        else:
            org = await db.get_one(Organization, org_id)
            org.timezone = timezone
        client = await new_client(db, org_id)
        address = await new_address(db, org_id, client.id)
        service = await new_service(db, org_id, base_price_cents=price_cents, base_minutes=service_minutes)
        made = []
        for i in range(workers):
            user_id = worker_user_ids[i] if worker_user_ids and i < len(worker_user_ids) else None
            made.append(
                await new_worker(db, org_id, name=f"Cleaner {i}", user_id=user_id, hours=hours, weekdays=weekdays)
            )
        if buffer_minutes is not None:
            await new_scheduling_settings(db, org_id, travel_buffer_minutes=buffer_minutes)
    return World(
        org_id=org_id,
        timezone=timezone,
        client_id=client.id,
        address_id=address.id,
        service_id=service.id,
        worker_ids=[w.id for w in made],
    )


async def add_time_off(
    owner_engine: AsyncEngine, world: World, worker_id: UUID, start: datetime, end: datetime
) -> UUID:
    async with arrange(owner_engine) as db:
        entry = await new_time_off(db, world.org_id, worker_id, start, end)
    return entry.id


async def set_buffer(owner_engine: AsyncEngine, org_id: UUID, minutes: int) -> None:
    async with arrange(owner_engine) as db:
        await new_scheduling_settings(db, org_id, travel_buffer_minutes=minutes)


# --- through the API, as a client would -------------------------------------------------------


async def api_worker(
    client: Any,
    owner: Any,
    *,
    name: str = "Cleaner",
    user_id: UUID | None = None,
    hours: tuple[str, str] | None = ("08:00", "17:00"),
    weekdays: Sequence[int] = range(7),
) -> UUID:
    body: dict[str, Any] = {"name": name}
    if user_id is not None:
        body["user_id"] = str(user_id)
    worker_id = UUID(expect(await client.post("/v1/workers", json=body, headers=owner.headers), 201, "worker")["id"])
    if hours is not None:
        items = [{"weekday": d, "start": hours[0], "end": hours[1]} for d in weekdays]
        expect(
            await client.put(f"/v1/workers/{worker_id}/hours", json={"hours": items}, headers=owner.headers),
            200,
            "hours",
        )
    return worker_id


async def api_world(
    client: Any,
    owner: Any,
    *,
    workers: int = 1,
    service_minutes: int = 120,
    price_cents: int = 10_000,
    timezone: str = "America/Toronto",
    hours: tuple[str, str] | None = ("08:00", "17:00"),
) -> World:
    """Client with an address, a service and `workers` cleaners with daily hours, made by `owner`."""
    created = expect(
        await client.post(
            "/v1/clients",
            json={
                "name": "Ada Client",
                "addresses": [
                    {"line1": "1 Main St", "city": "Toronto", "country": "CA", "bedrooms": 2, "bathrooms": 1}
                ],
            },
            headers=owner.headers,
        ),
        201,
        "client",
    )
    service = expect(
        await client.post(
            "/v1/services",
            json={
                "name": f"Standard {uuid.uuid4().hex[:6]}",
                "base_price_cents": price_cents,
                "base_minutes": service_minutes,
            },
            headers=owner.headers,
        ),
        201,
        "service",
    )
    worker_ids = [await api_worker(client, owner, name=f"Cleaner {i}", hours=hours) for i in range(workers)]
    return World(
        org_id=owner.org_id,
        timezone=timezone,
        client_id=UUID(created["id"]),
        address_id=UUID(created["addresses"][0]["id"]),
        service_id=UUID(service["id"]),
        worker_ids=worker_ids,
    )


# --- cross-organisation factories (tests/support/tenancy.py) ----------------------------------

# The worker each factory-made booking was given, for the assign/unassign bodies below.
_BOOKING_WORKER: dict[str, str] = {}


@register("booking_id")
async def api_booking_id(client: Any, member: Any) -> str:
    world = await api_world(client, member, workers=1, hours=None)
    body = world.booking(next_weekday(2), 10, override={"reason": "factory: no hours set"})
    booking = expect(await client.post("/v1/bookings", json=body, headers=member.headers), 201, "booking")
    _BOOKING_WORKER[booking["id"]] = str(world.worker_ids[0])
    return str(booking["id"])


@register("series_id")
async def api_series_id(client: Any, member: Any) -> str:
    world = await api_world(client, member, workers=0)
    body = world.series(next_weekday(2), count=4)
    return str(
        expect(await client.post("/v1/series", json=body, headers=member.headers), 201, "series")["series"]["id"]
    )


@register("occurrence_date")
async def api_occurrence_date(client: Any, member: Any, ids: dict[str, str]) -> str:
    series_id = ids.get("series_id") or await api_series_id(client, member)
    found = expect(await client.get(f"/v1/series/{series_id}", headers=member.headers), 200, "series")
    return str(found["start_date"])


def hold_body(days_ahead: int = 100, days: int = 7) -> dict[str, Any]:
    """A POST /v1/series/{id}/holds body: a week's pause starting `days_ahead` from today."""
    starts = datetime.now(UTC).date() + timedelta(days=days_ahead)
    return {"starts_on": starts.isoformat(), "ends_on": (starts + timedelta(days=days)).isoformat()}


@register("hold_id")
async def api_hold_id(client: Any, member: Any, ids: dict[str, str]) -> str:
    series_id = ids.get("series_id") or await api_series_id(client, member)
    url = f"/v1/series/{series_id}/holds"
    return str(expect(await client.post(url, json=hold_body(), headers=member.headers), 201, "hold")["hold"]["id"])


def _worker_body(ids: dict[str, str]) -> dict[str, Any]:
    return {"worker_ids": [_BOOKING_WORKER.get(ids["booking_id"], str(uuid.uuid4()))]}


REQUEST_BODIES[("POST", "/v1/bookings/{booking_id:uuid}/assign")] = _worker_body
REQUEST_BODIES[("POST", "/v1/bookings/{booking_id:uuid}/unassign")] = _worker_body
REQUEST_BODIES[("POST", "/v1/worker/jobs/{booking_id:uuid}/finish")] = {}
REQUEST_BODIES[("POST", "/v1/series/{series_id:uuid}/holds")] = lambda ids: hold_body()
