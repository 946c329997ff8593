"""Scheduling test helpers: an organisation's calendar arranged as the table owner (client, address,
service, workers with weekly hours), and the cross-organisation resource factories registered
with tests/support/tenancy.py for scheduling's path parameters."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from spotless.domain.catalog.models import Service
from spotless.domain.clients.models import Client, ClientAddress
from spotless.domain.scheduling import timeutil
from spotless.domain.scheduling.models import SchedulingSettings
from spotless.domain.workforce.models import TimeOff, Worker, WorkingHours
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
    def tz(self):  # type: ignore[no-untyped-def]
        return timeutil.zone(self.timezone)

    def at(self, day: date, hh: int, mm: int = 0) -> str:
        """ISO instant (with the org's offset) of a local wall-clock time."""
        return timeutil.local(timeutil.to_utc(day, time(hh, mm), self.tz), self.tz).isoformat()

    def booking(self, day: date, hh: int, mm: int = 0, workers: list[UUID] | None = None, **extra: object) -> dict:
        body: dict[str, object] = {
            "client_id": str(self.client_id),
            "address_id": str(self.address_id),
            "service_id": str(self.service_id),
            "starts_at": self.at(day, hh, mm),
            "worker_ids": [str(w) for w in (self.worker_ids[:1] if workers is None else workers)],
        }
        body.update(extra)
        return body


def next_weekday(weekday: int, weeks_ahead: int = 1, start: date | None = None) -> date:
    """A date safely in the future on `weekday` (0 = Monday)."""
    base = (start or datetime.now(UTC).date()) + timedelta(days=7 * weeks_ahead)
    return base + timedelta(days=(weekday - base.weekday()) % 7)


async def ensure_org(owner_engine: AsyncEngine, org_id: UUID | None, timezone: str) -> UUID:
    if org_id is not None:
        async with owner_engine.begin() as conn:
            await conn.execute(
                text("UPDATE organization SET timezone = :tz WHERE id = :id"), {"tz": timezone, "id": org_id}
            )
        return org_id
    new_id = uuid.uuid4()
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO organization (id, name, slug, timezone, currency, locale, business_hours, tax_rate_bps,"
                " created_at, updated_at) VALUES (:id, 'Org', :slug, :tz, 'CAD', 'en-CA', '{}'::jsonb, 500, now(), now())"
            ),
            {"id": new_id, "slug": f"org-{new_id.hex[:12]}", "tz": timezone},
        )
    return new_id


async def arrange_world(
    owner_engine: AsyncEngine,
    org_id: UUID | None = None,
    *,
    timezone: str = "America/Toronto",
    workers: int = 2,
    hours: tuple[time, time] = (time(8), time(17)),
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6),
    service_minutes: int = 120,
    price_cents: int = 10_000,
    buffer_minutes: int | None = None,
    worker_user_ids: list[UUID] | None = None,
) -> World:
    org_id = await ensure_org(owner_engine, org_id, timezone)
    async with AsyncSession(owner_engine, expire_on_commit=False) as session, session.begin():
        client = Client(org_id=org_id, name="Ada Client", email="ada@example.com", tags=[])
        session.add(client)
        await session.flush()
        address = ClientAddress(
            org_id=org_id,
            client_id=client.id,
            line1="1 Main St",
            city="Toronto",
            country="CA",
            bedrooms=2,
            bathrooms=1,
        )
        service = Service(
            org_id=org_id,
            name=f"Standard {uuid.uuid4().hex[:6]}",
            base_price_cents=price_cents,
            base_minutes=service_minutes,
        )
        session.add_all([address, service])
        made: list[Worker] = []
        for i in range(workers):
            user_id = worker_user_ids[i] if worker_user_ids and i < len(worker_user_ids) else None
            worker = Worker(org_id=org_id, name=f"Cleaner {i}", skills=[], user_id=user_id)
            session.add(worker)
            made.append(worker)
        await session.flush()
        for worker in made:
            for weekday in weekdays:
                session.add(
                    WorkingHours(
                        org_id=org_id, worker_id=worker.id, weekday=weekday, start_time=hours[0], end_time=hours[1]
                    )
                )
        if buffer_minutes is not None:
            session.add(SchedulingSettings(org_id=org_id, travel_buffer_minutes=buffer_minutes, slot_step_minutes=30))
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
    async with AsyncSession(owner_engine, expire_on_commit=False) as session, session.begin():
        entry = TimeOff(org_id=world.org_id, worker_id=worker_id, starts_at=start, ends_at=end, reason="vacation")
        session.add(entry)
    return entry.id


async def set_buffer(owner_engine: AsyncEngine, org_id: UUID, minutes: int) -> None:
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO scheduling_settings (id, org_id, travel_buffer_minutes, slot_step_minutes, created_at,"
                " updated_at) VALUES (:id, :org, :m, 30, now(), now())"
                " ON CONFLICT (org_id) DO UPDATE SET travel_buffer_minutes = EXCLUDED.travel_buffer_minutes"
            ),
            {"id": uuid.uuid4(), "org": org_id, "m": minutes},
        )


# --- through the API, as a client would -------------------------------------------------------


def _ok(response: Any, status: int, what: str) -> dict[str, Any]:
    assert response.status_code == status, f"{what}: {response.status_code} {response.text}"
    return response.json() if response.content else {}


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
    worker_id = UUID(_ok(await client.post("/v1/workers", json=body, headers=owner.headers), 201, "worker")["id"])
    if hours is not None:
        items = [{"weekday": d, "start": hours[0], "end": hours[1]} for d in weekdays]
        _ok(
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
    created = _ok(
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
    service = _ok(
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
async def make_booking(client: Any, member: Any) -> str:
    world = await api_world(client, member, workers=1, hours=None)
    body = world.booking(next_weekday(2), 10, override={"reason": "factory: no hours set"})
    booking = _ok(await client.post("/v1/bookings", json=body, headers=member.headers), 201, "booking")
    _BOOKING_WORKER[booking["id"]] = str(world.worker_ids[0])
    return str(booking["id"])


@register("series_id")
async def make_series(client: Any, member: Any) -> str:
    world = await api_world(client, member, workers=0)
    body = {
        "client_id": str(world.client_id),
        "address_id": str(world.address_id),
        "service_id": str(world.service_id),
        "frequency": "weekly",
        "start_date": next_weekday(2).isoformat(),
        "start_time": "09:00",
        "count": 4,
    }
    return str(_ok(await client.post("/v1/series", json=body, headers=member.headers), 201, "series")["series"]["id"])


@register("occurrence_date")
async def make_occurrence_date(client: Any, member: Any, ids: dict[str, str]) -> str:
    series_id = ids.get("series_id") or await make_series(client, member)
    found = _ok(await client.get(f"/v1/series/{series_id}", headers=member.headers), 200, "series")
    return str(found["start_date"])


def _worker_body(ids: dict[str, str]) -> dict[str, Any]:
    return {"worker_ids": [_BOOKING_WORKER.get(ids["booking_id"], str(uuid.uuid4()))]}


REQUEST_BODIES[("POST", "/v1/bookings/{booking_id:uuid}/assign")] = _worker_body
REQUEST_BODIES[("POST", "/v1/bookings/{booking_id:uuid}/unassign")] = _worker_body
REQUEST_BODIES[("POST", "/v1/worker/jobs/{booking_id:uuid}/finish")] = {}
