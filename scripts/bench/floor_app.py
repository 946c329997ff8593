"""The floors: each hot operation's data work and nothing else, served the way the API is (one
uvicorn worker, same flags), so `% of floor` says how much of what the hardware allows we reach.

No auth, no rate limiter, no logging, no metrics, no ORM: an asyncpg pool connected as the
application role (RLS in force), one transaction per request with `app.org_id` set locally, the
organisation given in the query string, msgspec out. Pure computations (price, free slots) call
the project's own functions, so only the plumbing around them differs.

    FLOOR_DATABASE_URL=postgresql://... FLOOR_APP_ROLE=spotless_app REDIS_URL=redis://...
    uvicorn scripts.bench.floor_app:app
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
from litestar import Litestar, Request, Response, get, post
from redis.asyncio import Redis

from spotless.domain.catalog.pricing import PricingParams, quote
from spotless.domain.scheduling import slots

_pool: asyncpg.Pool | None = None
_redis: Redis | None = None


def pool() -> asyncpg.Pool:
    assert _pool is not None
    return _pool


@asynccontextmanager
async def lifespan(_: Litestar) -> AsyncIterator[None]:
    global _pool, _redis
    _pool = await asyncpg.create_pool(
        os.environ["FLOOR_DATABASE_URL"],
        min_size=int(os.environ.get("FLOOR_POOL_SIZE", "20")),
        max_size=int(os.environ.get("FLOOR_POOL_SIZE", "20")),
        server_settings={"role": os.environ.get("FLOOR_APP_ROLE", "spotless_app"), "application_name": "bench-floor"},
    )
    _redis = Redis.from_url(os.environ["REDIS_URL"])
    try:
        yield
    finally:
        await _pool.close()
        await _redis.aclose()


class Price(msgspec.Struct):
    currency: str
    line_items: list[dict[str, Any]]
    subtotal_cents: int
    discount_cents: int
    tax_cents: int
    total_cents: int


class BookingRow(msgspec.Struct):
    """The fields of the API's BookingOut."""

    id: uuid.UUID
    client_id: uuid.UUID
    address_id: uuid.UUID
    service_id: uuid.UUID
    status: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    estimated_minutes: int
    worker_ids: list[uuid.UUID]
    total_cents: int
    currency: str
    price: Price
    params: dict[str, Any]
    addon_ids: list[uuid.UUID]
    frequency: str
    created_at: datetime
    updated_at: datetime
    team_id: uuid.UUID | None
    series_id: uuid.UUID | None
    occurrence_date: date | None
    notes: str | None
    cancel_reason: str | None
    override_reason: str | None
    confirmed_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None


class Page(msgspec.Struct):
    items: list[BookingRow]
    has_more: bool
    limit: int
    next_cursor: str | None = None


_decode_json = msgspec.json.decode
_ZONES: dict[str, ZoneInfo] = {}


def _zone(name: str) -> ZoneInfo:
    found = _ZONES.get(name)
    if found is None:
        found = _ZONES[name] = ZoneInfo(name)
    return found


async def _begin(conn: asyncpg.Connection, org_id: str) -> None:
    await conn.execute("SELECT set_config('app.org_id', $1, true)", org_id)


_LIST = """
SELECT b.id, b.client_id, b.address_id, b.service_id, b.status, b.starts_at, b.ends_at, b.estimated_minutes,
       b.total_cents, b.currency, b.price::text, b.params::text, b.addon_ids::text, b.frequency, b.created_at,
       b.updated_at, b.team_id, b.series_id, b.occurrence_date, b.notes, b.cancel_reason, b.override_reason,
       b.confirmed_at, b.started_at, b.completed_at, b.cancelled_at,
       ARRAY(SELECT a.worker_id FROM booking_assignment a WHERE a.booking_id = b.id AND a.org_id = b.org_id
             ORDER BY a.worker_id) AS worker_ids
FROM booking b
WHERE b.org_id = $1 AND b.starts_at >= $2 AND b.starts_at < $3
ORDER BY b.starts_at, b.id
LIMIT $4
"""


def _day_range(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, datetime.min.time(), tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz).astimezone(UTC)
    return start, end


@get("/list")
async def list_bookings(org: str, day: date, tz: str = "UTC", limit: int = 50) -> Response[bytes]:
    """One transaction: the page's bookings with their cleaners' ids (one statement), msgspec out."""
    zone = _zone(tz)
    start, end = _day_range(day, zone)
    async with pool().acquire() as conn, conn.transaction():
        await _begin(conn, org)
        rows = await conn.fetch(_LIST, uuid.UUID(org), start, end, limit + 1)
    items = []
    for r in rows[:limit]:
        price = _decode_json(r[10])
        items.append(
            BookingRow(
                id=r[0],
                client_id=r[1],
                address_id=r[2],
                service_id=r[3],
                status=r[4],
                starts_at=r[5].astimezone(zone),
                ends_at=r[6].astimezone(zone),
                timezone=tz,
                estimated_minutes=r[7],
                worker_ids=list(r[26]),
                total_cents=r[8],
                currency=r[9],
                price=Price(
                    currency=r[9],
                    line_items=list(price.get("line_items", [])),
                    subtotal_cents=int(price.get("subtotal_cents", r[8])),
                    discount_cents=int(price.get("discount_cents", 0)),
                    tax_cents=int(price.get("tax_cents", 0)),
                    total_cents=r[8],
                ),
                params=_decode_json(r[11]),
                addon_ids=[uuid.UUID(a) for a in _decode_json(r[12])],
                frequency=r[13],
                created_at=r[14],
                updated_at=r[15],
                team_id=r[16],
                series_id=r[17],
                occurrence_date=r[18],
                notes=r[19],
                cancel_reason=r[20],
                override_reason=r[21],
                confirmed_at=r[22],
                started_at=r[23],
                completed_at=r[24],
                cancelled_at=r[25],
            )
        )
    body = msgspec.json.encode(Page(items=items, has_more=len(rows) > limit, limit=limit))
    return Response(body, media_type="application/json")


_SERVICE = """
SELECT s.id, s.name, s.pricing_mode, s.base_price_cents, s.base_minutes, s.price_per_bedroom_cents,
       s.minutes_per_bedroom, s.price_per_bathroom_cents, s.minutes_per_bathroom, s.price_per_100_sqft_cents,
       s.minutes_per_100_sqft, s.active, o.tax_rate_bps, o.currency, o.timezone
FROM service s JOIN organization o ON o.id = s.org_id
WHERE s.id = $1 AND s.org_id = $2
"""


@dataclass(frozen=True)
class _Service:
    id: uuid.UUID
    name: str
    pricing_mode: str
    base_price_cents: int
    base_minutes: int
    price_per_bedroom_cents: int
    minutes_per_bedroom: int
    price_per_bathroom_cents: int
    minutes_per_bathroom: int
    price_per_100_sqft_cents: int
    minutes_per_100_sqft: int


def _service(row: asyncpg.Record) -> _Service:
    return _Service(*row[:11])


class QuoteIn(msgspec.Struct):
    service_id: uuid.UUID
    bedrooms: int = 0
    bathrooms: int = 0
    square_feet: int | None = None


@post("/quote", status_code=200)
async def price_quote(org: str, data: QuoteIn) -> Response[bytes]:
    """The service and the organisation's tax and currency (one statement), priced by the project's
    own pure function."""
    async with pool().acquire() as conn, conn.transaction():
        await _begin(conn, org)
        row = await conn.fetchrow(_SERVICE, data.service_id, uuid.UUID(org))
    if row is None:
        return Response(b'{"status":404}', status_code=404, media_type="application/json")
    found = quote(
        _service(row),
        [],
        PricingParams(bedrooms=data.bedrooms, bathrooms=data.bathrooms, square_feet=data.square_feet),
        "once",
        tax_rate_bps=row[12],
        currency=row[13],
    )
    return Response(msgspec.json.encode(found), media_type="application/json")


class SlotOut(msgspec.Struct):
    starts_at: datetime
    ends_at: datetime
    worker_ids: list[uuid.UUID]


class AvailabilityOut(msgspec.Struct):
    service_id: uuid.UUID
    timezone: str
    date_from: date
    date_to: date
    duration_minutes: int
    step_minutes: int
    buffer_minutes: int
    slots: list[SlotOut]


_WORKERS = """
SELECT w.id, h.weekday, h.start_time, h.end_time
FROM worker w JOIN working_hours h ON h.worker_id = w.id AND h.org_id = w.org_id
WHERE w.org_id = $1 AND w.active AND h.weekday = $2
ORDER BY w.id
"""
# Busy time synced from a cleaner's own calendar blocks like time off: the floor reads it too.
_TIME_OFF = """
SELECT worker_id, starts_at, ends_at FROM time_off WHERE org_id = $1 AND starts_at < $3 AND ends_at > $2
UNION ALL
SELECT worker_id, starts_at, ends_at FROM external_busy WHERE org_id = $1 AND starts_at < $3 AND ends_at > $2
"""
_BUSY = """
SELECT worker_id, lower(during), upper(during) FROM booking_assignment
WHERE org_id = $1 AND active AND starts_at > $2::timestamptz - interval '1 day' AND starts_at < $3
  AND during && tstzrange($2, $3, '[)')
"""


@get("/availability")
async def availability(org: str, service_id: uuid.UUID, day: date, step_minutes: int = 30) -> Response[bytes]:
    """Service + organisation, active cleaners with that weekday's hours, their time off and their
    busy ranges (four statements in one transaction), then the project's own slot search."""
    org_id = uuid.UUID(org)
    async with pool().acquire() as conn, conn.transaction():
        await _begin(conn, org)
        row = await conn.fetchrow(_SERVICE, service_id, org_id)
        if row is None:
            return Response(b'{"status":404}', status_code=404, media_type="application/json")
        zone = _zone(row[14])
        start, end = _day_range(day, zone)
        hours = await conn.fetch(_WORKERS, org_id, day.weekday())
        off = await conn.fetch(_TIME_OFF, org_id, start - timedelta(days=1), end + timedelta(days=1))
        busy = await conn.fetch(_BUSY, org_id, start - timedelta(days=1), end + timedelta(days=1))
    price = quote(_service(row), [], PricingParams(), "once", tax_rate_bps=row[12], currency=row[13])
    duration = timedelta(minutes=max(price.estimated_minutes, 1))
    calendars: dict[uuid.UUID, slots.WorkerCalendar] = {}
    for worker_id, weekday, h_start, h_end in hours:
        calendars.setdefault(worker_id, slots.WorkerCalendar()).hours.append(slots.WeeklyHours(weekday, h_start, h_end))
    for worker_id, s, e in off:
        if worker_id in calendars:
            calendars[worker_id].time_off.append((s, e))
    for worker_id, s, e in busy:
        if worker_id in calendars:
            calendars[worker_id].busy.append((s, e))
    step = timedelta(minutes=step_minutes)
    now = datetime.now(UTC)
    per_worker = {
        w: slots.free_slots(c, [day], zone, duration, timedelta(0), step, not_before=now) for w, c in calendars.items()
    }
    found = [
        SlotOut(
            starts_at=s.starts_at.astimezone(zone), ends_at=s.ends_at.astimezone(zone), worker_ids=list(s.worker_ids)
        )
        for s in slots.collect(per_worker, duration)
    ]
    out = AvailabilityOut(
        service_id=service_id,
        timezone=row[14],
        date_from=day,
        date_to=day,
        duration_minutes=int(duration.total_seconds() // 60),
        step_minutes=step_minutes,
        buffer_minutes=0,
        slots=found,
    )
    return Response(msgspec.json.encode(out), media_type="application/json")


class CreateIn(msgspec.Struct):
    client_id: uuid.UUID
    address_id: uuid.UUID
    service_id: uuid.UUID
    starts_at: datetime
    worker_ids: list[uuid.UUID]


class Created(msgspec.Struct):
    id: uuid.UUID
    status: str
    starts_at: datetime
    ends_at: datetime
    worker_ids: list[uuid.UUID]
    total_cents: int
    currency: str
    price: Any


_INSERT_BOOKING = """
INSERT INTO booking (id, org_id, client_id, address_id, service_id, starts_at, ends_at, status, frequency, price,
                     total_cents, currency, estimated_minutes, params, addon_ids, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 'once', $8::jsonb, $9, $10, $11, '{}', '[]', now(), now())
"""
_INSERT_ASSIGNMENT = """
INSERT INTO booking_assignment (id, org_id, booking_id, worker_id, starts_at, ends_at, during, active,
                                created_at, updated_at)
SELECT gen_random_uuid(), $1, $2, w, $3, $4, tstzrange($3, $4, '[)'), true, now(), now() FROM unnest($5::uuid[]) w
"""


_CLAIM = """
INSERT INTO idempotency_keys (id, org_id, user_id, key, method, path, request_hash, status, locked_at,
                              created_at, updated_at)
VALUES ($1, $2, $3, $4, 'POST', '/v1/bookings', $5, 'in_flight', now(), now(), now())
ON CONFLICT ON CONSTRAINT uq_idempotency_keys_org_user_key DO NOTHING
RETURNING id
"""
_BOOKABLE = """
SELECT c.archived_at, c.blocked, a.id, a.archived_at, a.bedrooms, a.bathrooms, a.square_feet
FROM client c LEFT JOIN client_address a ON a.client_id = c.id AND a.id = $2
WHERE c.id = $1
"""
_ACTIVE_WORKERS = "SELECT id, active FROM worker WHERE id = ANY($1::uuid[])"
_RULES = """
SELECT 0, h.worker_id, h.weekday, h.start_time, h.end_time
FROM working_hours h WHERE h.worker_id = ANY($1::uuid[])
UNION ALL
SELECT 1, t.worker_id, NULL, NULL, NULL
FROM time_off t WHERE t.worker_id = ANY($1::uuid[]) AND t.starts_at < $3 AND t.ends_at > $2
UNION ALL
SELECT 1, b.worker_id, NULL, NULL, NULL
FROM external_busy b WHERE b.worker_id = ANY($1::uuid[]) AND b.starts_at < $3 AND b.ends_at > $2
"""
_OUTBOX = """
INSERT INTO job_outbox (id, actor_name, queue_name, args, kwargs, available_at, attempts, created_at, updated_at)
SELECT j.id, j.actor, 'default', j.args, '{}', now() + interval '10 seconds', 0, now(), now()
FROM unnest($1::uuid[], $2::varchar[], $3::jsonb[]) AS j(id, actor, args)
"""
_COMPLETE = """
UPDATE idempotency_keys SET status = 'done', response_status = 201, response_body = $2, updated_at = now()
WHERE id = $1 AND status = 'in_flight'
"""
_SUBSCRIBERS = ["system.count_booking", "webhooks.fan_out"]


def _conflict(slug: str) -> Response[bytes]:
    return Response(msgspec.json.encode({"status": 409, "type": slug}), status_code=409, media_type="application/json")


@post("/create", status_code=201)
async def create_booking(org: str, user: str, data: CreateIn, request: Request[Any, Any, Any]) -> Response[bytes]:
    """The API's data work for a keyed booking, and nothing else: the Idempotency-Key claimed in a
    transaction of its own; then, in one transaction, the client and address, the workers, the
    service (priced), their hours and time off (checked), the booking and its assignments (the
    exclusion constraint is the double-booking check), one outbox row per subscriber of its event
    and the key's stored response; commit; the jobs handed to Redis. No auth, no limiter, no ORM."""
    org_id, user_id = uuid.UUID(org), uuid.UUID(user)
    key = request.headers.get("idempotency-key") or uuid.uuid4().hex
    digest = hashlib.sha256(b"POST\0/v1/bookings\0" + await request.body()).hexdigest()
    async with pool().acquire() as conn:
        async with conn.transaction():
            await _begin(conn, org)
            claim = await conn.fetchval(_CLAIM, uuid.uuid4(), org_id, user_id, key, digest)
        if claim is None:
            return _conflict("idempotency-key-in-flight")
    booking_id = uuid.uuid4()
    job_ids = [uuid.uuid4() for _ in _SUBSCRIBERS]
    async with pool().acquire() as conn, conn.transaction():
        await _begin(conn, org)
        bookable = await conn.fetchrow(_BOOKABLE, data.client_id, data.address_id)
        if bookable is None or bookable[0] is not None or bookable[2] is None or bookable[3] is not None:
            return Response(b'{"status":404}', status_code=404, media_type="application/json")
        if bookable[1]:
            return _conflict("client-blocked")
        active = dict(await conn.fetch(_ACTIVE_WORKERS, data.worker_ids))
        if any(not active.get(w) for w in data.worker_ids):
            return Response(b'{"status":404}', status_code=404, media_type="application/json")
        row = await conn.fetchrow(_SERVICE, data.service_id, org_id)
        if row is None:
            return Response(b'{"status":404}', status_code=404, media_type="application/json")
        params = PricingParams(bedrooms=bookable[4] or 0, bathrooms=bookable[5] or 0, square_feet=bookable[6])
        price = quote(_service(row), [], params, "once", tax_rate_bps=row[12], currency=row[13])
        ends_at = data.starts_at + timedelta(minutes=price.estimated_minutes)
        zone = _zone(row[14])
        hours: dict[uuid.UUID, list[slots.WeeklyHours]] = {w: [] for w in data.worker_ids}
        for kind, worker_id, weekday, h_start, h_end in await conn.fetch(
            _RULES, data.worker_ids, data.starts_at, ends_at
        ):
            if kind == 1:
                return _conflict("worker-time-off")
            hours[worker_id].append(slots.WeeklyHours(weekday, h_start, h_end))
        if not all(slots.fits_working_hours(data.starts_at, ends_at, h, zone) for h in hours.values()):
            return _conflict("outside-working-hours")
        try:
            await conn.execute(
                _INSERT_BOOKING,
                booking_id,
                org_id,
                data.client_id,
                data.address_id,
                data.service_id,
                data.starts_at,
                ends_at,
                msgspec.json.encode(price).decode(),
                price.total_cents,
                price.currency,
                price.estimated_minutes,
            )
            await conn.execute(_INSERT_ASSIGNMENT, org_id, booking_id, data.starts_at, ends_at, data.worker_ids)
        except asyncpg.ExclusionViolationError:
            return _conflict("booking-conflict")
        event = msgspec.json.encode(
            ["scheduling.BookingCreated", str(uuid.uuid4()), {"org_id": org, "booking_id": str(booking_id)}]
        ).decode()
        await conn.execute(_OUTBOX, job_ids, _SUBSCRIBERS, [event] * len(_SUBSCRIBERS))
        out = Created(
            id=booking_id,
            status="pending",
            starts_at=data.starts_at,
            ends_at=ends_at,
            worker_ids=data.worker_ids,
            total_cents=price.total_cents,
            currency=price.currency,
            price=price,
        )
        body = msgspec.json.encode(out)
        await conn.execute(_COMPLETE, claim, body)
    assert _redis is not None
    async with _redis.pipeline(transaction=False) as pipe:  # the outbox fast path: one round trip for the jobs
        for job_id in job_ids:
            pipe.lpush("floor:jobs", str(job_id))
        pipe.ltrim("floor:jobs", 0, 999)
        await pipe.execute()
    return Response(body, status_code=201, media_type="application/json")


class _Ready:
    """What /readyz does per round: one database query and a Redis PING, answered from a result at
    most 1 s old, concurrent callers sharing the round in flight."""

    def __init__(self) -> None:
        self.at = 0.0
        self.body = b""
        self.inflight: asyncio.Task[bytes] | None = None

    async def _round(self) -> bytes:
        assert _redis is not None
        async with pool().acquire() as conn:
            revision = await conn.fetchval("SELECT version_num FROM alembic_version")
        await _redis.ping()
        self.at = time.monotonic()
        self.body = msgspec.json.encode({"status": "ready", "checks": {"database": bool(revision), "redis": True}})
        return self.body

    async def get(self) -> bytes:
        if self.body and time.monotonic() - self.at < 1.0:
            return self.body
        if self.inflight is None or self.inflight.done():
            self.inflight = asyncio.ensure_future(self._round())
        return await asyncio.shield(self.inflight)


_ready = _Ready()


@get("/readyz")
async def readyz() -> Response[bytes]:
    return Response(await _ready.get(), media_type="application/json")


app = Litestar(
    [list_bookings, price_quote, availability, create_booking, readyz],
    lifespan=[lifespan],
    logging_config=None,
    openapi_config=None,
)
