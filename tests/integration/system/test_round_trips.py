"""What one warm request sends to PostgreSQL and Redis, pinned so it cannot creep back.

Counted on the wire, in the request's own task (the outbox relay's task after a commit is not the
request's): every PostgreSQL round trip ends in a Sync or is one simple Query, so those messages
are counted as the app's asyncpg connections write them; every Redis command is counted as
redis-py packs it. `BEGIN`/`COMMIT` are round trips like any statement and are counted.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from redis.asyncio.connection import AbstractConnection
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.lib.resp import RespClient
from tests.conftest import make_settings
from tests.support.client import app_client
from tests.support.factories import api_world
from tests.support.identity import signup

LIMITER_ON = {
    "RATE_LIMIT_ENABLED": "true",
    "RATE_LIMIT_PER_MINUTE": "1000000",
    "RATE_LIMIT_BURST": "0",
    "EXPENSIVE_RATE_LIMIT_PER_MINUTE": "1000000",
    "ADMIN_ACTION_RATE_LIMIT_PER_MINUTE": "1000000",
}


@dataclass
class Wire:
    """Round trips seen in one task: SQL as (kind, text), Redis as command names."""

    task: asyncio.Task[Any] | None = None
    sql: list[str] = field(default_factory=list)
    redis: list[str] = field(default_factory=list)
    names: dict[bytes, str] = field(default_factory=dict)  # prepared statement name -> its SQL

    every_task: bool = False  # also count other tasks' (the readiness round runs in its own)

    def mine(self) -> bool:
        return self.task is not None and (self.every_task or asyncio.current_task() is self.task)


def _cstring(buf: bytes, at: int) -> tuple[bytes, int]:
    end = buf.index(b"\x00", at)
    return buf[at:end], end + 1


def _read_messages(wire: Wire, data: bytes, counted: bool) -> None:
    """Parse frontend messages: a Query or a Sync ends one round trip (statement names are
    learnt from every Parse, counted or not)."""
    at = 0
    pending: list[str] = []
    while at + 5 <= len(data):
        kind = data[at : at + 1]
        (length,) = struct.unpack("!i", data[at + 1 : at + 5])
        body = data[at + 5 : at + 1 + length]
        at += 1 + length
        if kind == b"Q" and counted:
            wire.sql.append(body.rstrip(b"\x00").decode())
        elif kind == b"P":
            name, rest = _cstring(body, 0)
            query, _ = _cstring(body, rest)
            wire.names[name] = query.decode()
            pending.append("PREPARE " + query.decode())
        elif kind == b"B":
            _portal, rest = _cstring(body, 0)
            name, _ = _cstring(body, rest)
            pending.append(wire.names.get(name, f"<statement {name!r}>"))
        elif kind == b"S" and counted:
            wire.sql.append(" + ".join(pending) if pending else "SYNC")
            pending = []


def _watch_connection(wire: Wire, asyncpg_connection: Any) -> None:
    transport = asyncpg_connection._transport
    if getattr(transport, "_spotless_counted", False):
        return
    original = transport.write

    def write(data: Any) -> None:
        _read_messages(wire, bytes(data), counted=wire.mine())
        original(data)

    transport.write = write
    transport._spotless_counted = True


@contextmanager
def counting(app: Litestar) -> Iterator[Wire]:
    wire = Wire()
    engine: AsyncEngine = app.state.engine

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        _watch_connection(wire, dbapi_connection._connection)

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        _watch_connection(wire, dbapi_connection._connection)

    event.listen(engine.sync_engine.pool, "connect", on_connect)
    event.listen(engine.sync_engine.pool, "checkout", on_checkout)
    original_pack = AbstractConnection.pack_command

    def pack_command(self: AbstractConnection, *args: Any) -> Any:
        if wire.mine():
            name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
            wire.redis.append(name.upper())
        return original_pack(self, *args)

    original_call = RespClient.call

    async def call(self: RespClient, *args: Any, **kwargs: Any) -> Any:
        if wire.mine():
            wire.redis.append(str(args[0]).upper())
        return await original_call(self, *args, **kwargs)

    AbstractConnection.pack_command = pack_command  # type: ignore[method-assign]
    RespClient.call = call  # type: ignore[method-assign]
    try:
        yield wire
    finally:
        AbstractConnection.pack_command = original_pack  # type: ignore[method-assign]
        RespClient.call = original_call  # type: ignore[method-assign]
        event.remove(engine.sync_engine.pool, "connect", on_connect)
        event.remove(engine.sync_engine.pool, "checkout", on_checkout)


@contextmanager
def measure(wire: Wire, every_task: bool = False) -> Iterator[Wire]:
    wire.sql.clear()
    wire.redis.clear()
    wire.task = asyncio.current_task()
    wire.every_task = every_task
    try:
        yield wire
    finally:
        wire.task = None
        wire.every_task = False


@pytest.fixture
async def limited_app() -> AsyncIterator[tuple[Litestar, Any]]:
    from spotless.app import create_app

    app = create_app(make_settings(**LIMITER_ON))
    async with app_client(app) as client:
        yield app, client


def _show(wire: Wire) -> str:
    return "\n".join([f"SQL {i + 1}: {q[:160]}" for i, q in enumerate(wire.sql)] + [f"Redis: {' '.join(wire.redis)}"])


def _pin(wire: Wire, sql: int, redis: list[str]) -> None:
    assert (len(wire.sql), wire.redis) == (sql, redis), _show(wire)


async def _warm(client: Any, wire: Wire, method: str, url: str, **kwargs: Any) -> tuple[Any, Wire]:
    """Warm the path (statements prepared on the connection, caches filled), then count it once."""
    for _ in range(3):
        warm = await client.request(method, url, **kwargs)
        assert warm.status_code < 400, warm.text
    with measure(wire):
        response = await client.request(method, url, **kwargs)
    assert response.status_code < 400, response.text
    return response, wire


# Every authenticated request below also costs two Redis commands, one round trip each:
#   EVALSHA  the rate limiter's atomic count (lib/ratelimit)
#   MGET     the session check, with the organisation's config version in the same command
AUTHENTICATED = ["EVALSHA", "MGET"]


async def test_round_trips_of_the_hot_operations(limited_app) -> None:
    app, client = limited_app
    with counting(app) as wire:
        owner = await signup(client, timezone="UTC")
        world = await api_world(client, owner, workers=10, hours=("00:00", "23:59"))
        h = owner.headers
        day = (datetime.now(UTC) + timedelta(days=40)).date()
        for i in range(50):
            body = world.booking(day, 2 * (i // 10), workers=[world.worker_ids[i % 10]])
            made = await client.post("/v1/bookings", json=body, headers=h)
            assert made.status_code == 201, made.text

        _, seen = await _warm(client, wire, "GET", "/healthz")
        _pin(seen, 0, [])  # liveness: no I/O at all

        _, seen = await _warm(client, wire, "GET", "/readyz")
        _pin(seen, 0, [])  # answered from the round at most 1 s old
        await app.state.relay.drain()  # the creates' outbox marks are the relay's, not the round's
        app.state.readiness._answered_at = 0.0  # the round is due: what one round costs
        with measure(wire, every_task=True):
            assert (await client.get("/readyz")).status_code == 200
        # One statement outside a transaction: the revision and the durable heartbeat (was BEGIN;
        # ROLLBACK pre-ping, BEGIN, SELECT, ROLLBACK); Redis PING. Once a second, never per caller.
        _pin(wire, 1, ["PING"])

        one_day = {"date_from": day.isoformat(), "date_to": day.isoformat(), "limit": 50}
        listed, seen = await _warm(client, wire, "GET", "/v1/bookings", params=one_day, headers=h)
        assert len(listed.json()["items"]) == 50
        # BEGIN; set_config(org)  (one simple query)
        # SELECT booking ... with its cleaners' ids aggregated  (the page, one statement)
        # COMMIT
        # (was 10: BEGIN; ROLLBACK pre-ping, BEGIN, set_config, organization, scheduling_settings,
        #  the page, its cleaners, COMMIT)
        _pin(seen, 3, AUTHENTICATED)

        empty = (day + timedelta(days=1)).isoformat()
        listed, seen = await _warm(
            client, wire, "GET", "/v1/bookings", params={"date_from": empty, "date_to": empty}, headers=h
        )
        assert listed.json()["items"] == []
        # BEGIN; set_config(org) / SELECT booking (empty page, no cleaners to read) / COMMIT  (was 9)
        _pin(seen, 3, AUTHENTICATED)

        params = {"service_id": str(world.service_id), "date_from": day.isoformat(), "date_to": day.isoformat()}
        await _warm(client, wire, "GET", "/v1/availability", params=params, headers=h)
        # BEGIN; set_config(org) / active workers with their hours and time off (one statement) /
        # booking_assignment (busy ranges) / COMMIT; the service's duration from the quote cache
        # (was 14)
        _pin(seen, 4, AUTHENTICATED)

        quote = {"service_id": str(world.service_id), "bedrooms": 2, "bathrooms": 1}
        await _warm(client, wire, "POST", "/v1/quotes", json=quote, headers=h)
        # Nothing: the service's pricing rows are cached per organisation like its profile (a
        # catalogue change drops them, db/org_cache.py), so no transaction is even begun (was 8)
        _pin(seen, 0, AUTHENTICATED)

        create_day = day + timedelta(days=3)
        for n in range(4):
            body = world.booking(create_day, 2 * n, workers=[world.worker_ids[0]])
            with measure(wire):
                made = await client.post("/v1/bookings", json=body, headers=h)
            assert made.status_code == 201, made.text
        # BEGIN; set_config(org) / client + address / worker / the worker's hours and time off (one
        # statement) / INSERT booking / INSERT booking_assignment (no savepoint around it) / INSERT
        # job_outbox (BookingCreated) / COMMIT; the service's price comes from the quote cache
        # (was 20: pre-ping 2, BEGIN, set_config, organization, scheduling_settings, ...,
        #  SAVEPOINT, set_config again, INSERT, RELEASE, ...)
        _pin(wire, 8, AUTHENTICATED)

        for n in range(4):
            body = world.booking(create_day, 2 * n + 1, workers=[world.worker_ids[1]])
            with measure(wire):
                made = await client.post("/v1/bookings", json=body, headers={**h, "Idempotency-Key": f"rt-{n}"})
            assert made.status_code == 201, made.text
        # With an Idempotency-Key: the claim's own transaction (BEGIN with set_config / INSERT the
        # claim / COMMIT), the 8 above, and the response recorded in the request's transaction.
        _pin(wire, 12, AUTHENTICATED)


async def test_a_cached_organisation_is_fresh_here_at_once_and_elsewhere_by_its_version(
    client, owner_engine: AsyncEngine, redis, settings, monkeypatch
) -> None:
    """The profile is not re-read per request, yet a change is seen: on this node at its commit,
    on another node (here: a change this process never saw) once the version key in Redis moves,
    and in any case within the cache's age."""
    from spotless.db import org_cache
    from spotless.domain.identity import public

    owner = await signup(client)
    world = await api_world(client, owner)
    quote = {"service_id": str(world.service_id), "bedrooms": 2, "bathrooms": 1}

    async def tax() -> int:
        response = await client.post("/v1/quotes", json=quote, headers=owner.headers)
        assert response.status_code == 200, response.text
        return int(response.json()["tax_rate_bps"])

    await tax()
    patched = await client.patch("/v1/org", json={"tax_rate_bps": 1300}, headers=owner.headers)
    assert patched.status_code == 200, patched.text
    assert await tax() == 1300  # the node that made the change: at once

    async def elsewhere(bps: int) -> None:  # another node's change: the row moves, this process is not told
        async with owner_engine.begin() as conn:
            await conn.execute(
                text("UPDATE organization SET tax_rate_bps = :bps WHERE id = :id"), {"bps": bps, "id": owner.org_id}
            )

    await elsewhere(500)
    assert await tax() == 1300  # cached: not re-read per request
    await redis.set(org_cache.version_key(settings.jobs.namespace, owner.org_id), "another node's change")
    assert await tax() == 500  # the version moved: read again

    await elsewhere(700)
    assert await tax() == 500
    monkeypatch.setattr(public._profiles, "max_age", 0.0)  # as if MAX_AGE_SECONDS had passed
    assert await tax() == 700


async def test_a_cached_price_moves_with_the_catalogue_here_at_once_and_elsewhere_by_its_version(
    client, owner_engine: AsyncEngine, redis, settings
) -> None:
    """Quotes are not re-read per request (no round trip), yet every catalogue change is priced:
    a service edit, an add-on's price, a frequency discount on this node at commit; a change this
    process never saw once the organisation's version key moves."""
    from spotless.db import org_cache

    owner = await signup(client)
    world = await api_world(client, owner)
    h = owner.headers
    sid = str(world.service_id)

    async def price(**extra: Any) -> int:
        body = {"service_id": sid, "bedrooms": 2, "bathrooms": 1, **extra}
        response = await client.post("/v1/quotes", json=body, headers=h)
        assert response.status_code == 200, response.text
        return int(response.json()["subtotal_cents"])

    before = await price()
    patched = await client.patch(f"/v1/services/{sid}", json={"base_price_cents": 99_00}, headers=h)
    assert patched.status_code == 200, patched.text
    after = await price()
    assert after != before  # this node: at its commit

    addon = await client.post(f"/v1/services/{sid}/addons", json={"name": "Oven", "price_cents": 25_00}, headers=h)
    assert addon.status_code == 201, addon.text
    addon_id = addon.json()["id"]
    assert await price(addon_ids=[addon_id]) == after + 25_00
    moved = await client.patch(f"/v1/services/{sid}/addons/{addon_id}", json={"price_cents": 30_00}, headers=h)
    assert moved.status_code == 200, moved.text
    assert await price(addon_ids=[addon_id]) == after + 30_00

    async def weekly_discount() -> int:
        body = {"service_id": sid, "bedrooms": 2, "bathrooms": 1, "frequency": "weekly"}
        response = await client.post("/v1/quotes", json=body, headers=h)
        assert response.status_code == 200, response.text
        return int(response.json()["discount_bps"])

    await weekly_discount()
    discounts = await client.put("/v1/frequency-discounts", json={"weekly": 1000}, headers=h)
    assert discounts.status_code == 200, discounts.text
    assert await weekly_discount() == 1000

    assert await price() == after  # read again after the discount change, and cached
    async with owner_engine.begin() as conn:  # another node's change: the row moves, this process is not told
        await conn.execute(text("UPDATE service SET base_price_cents = 1 WHERE id = :id"), {"id": sid})
    assert await price() == after  # cached: not re-read per request
    await redis.set(org_cache.version_key(settings.jobs.namespace, owner.org_id), "another node's change")
    assert await price() != after  # the version moved: read again
