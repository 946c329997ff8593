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

from spotless.lib.ratelimit.resp import RespClient
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

    def mine(self) -> bool:
        return self.task is not None and asyncio.current_task() is self.task


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
def measure(wire: Wire) -> Iterator[Wire]:
    wire.sql.clear()
    wire.redis.clear()
    wire.task = asyncio.current_task()
    try:
        yield wire
    finally:
        wire.task = None


@pytest.fixture
async def limited_app() -> AsyncIterator[tuple[Litestar, Any]]:
    from spotless.app import create_app

    app = create_app(make_settings(**LIMITER_ON))
    async with app_client(app) as client:
        yield app, client


def _show(wire: Wire) -> str:
    return "\n".join([f"SQL {i + 1}: {s}" for i, s in enumerate(wire.sql)] + [f"Redis: {' '.join(wire.redis)}"])


async def _twice(client: Any, wire: Wire, method: str, url: str, **kwargs: Any) -> tuple[Any, Wire]:
    """Warm the path (statements prepared on the connection, caches filled), then count it."""
    for _ in range(3):
        warm = await client.request(method, url, **kwargs)
        assert warm.status_code < 400, warm.text
    with measure(wire):
        response = await client.request(method, url, **kwargs)
    return response, wire


async def test_round_trips_of_the_hot_operations(limited_app, owner_engine: AsyncEngine) -> None:
    app, client = limited_app
    with counting(app) as wire:
        owner = await signup(client, timezone="UTC")
        world = await api_world(client, owner, workers=10, hours=("00:00", "23:59"))
        h = owner.headers
        day = (datetime.now(UTC) + timedelta(days=40)).date()
        empty_day = day + timedelta(days=1)
        for i in range(50):
            worker = world.worker_ids[i % 10]
            hour = i // 10
            body = world.booking(day, 2 * hour, workers=[worker])
            made = await client.post("/v1/bookings", json=body, headers=h)
            assert made.status_code == 201, made.text

        health, seen = await _twice(client, wire, "GET", "/healthz")
        assert health.status_code == 200
        assert (len(seen.sql), len(seen.redis)) == (0, 0), _show(seen)

        ready, seen = await _twice(client, wire, "GET", "/readyz")
        assert len(seen.sql) == 0, _show(seen)

        params = {"date_from": day.isoformat(), "date_to": day.isoformat(), "limit": 50}
        listed, seen = await _twice(client, wire, "GET", "/v1/bookings", params=params, headers=h)
        assert len(listed.json()["items"]) == 50
        print("list 50\n" + _show(seen))

        params = {"date_from": empty_day.isoformat(), "date_to": empty_day.isoformat(), "limit": 50}
        listed, seen = await _twice(client, wire, "GET", "/v1/bookings", params=params, headers=h)
        assert listed.json()["items"] == []
        print("list 0\n" + _show(seen))

        params = {"service_id": str(world.service_id), "date_from": day.isoformat(), "date_to": day.isoformat()}
        found, seen = await _twice(client, wire, "GET", "/v1/availability", params=params, headers=h)
        print("availability\n" + _show(seen))

        quote = {"service_id": str(world.service_id), "bedrooms": 2, "bathrooms": 1}
        priced, seen = await _twice(client, wire, "POST", "/v1/quotes", json=quote, headers=h)
        print("quote\n" + _show(seen))

        create_day = day + timedelta(days=3)
        for n in range(4):
            body = world.booking(create_day, 2 * n, workers=[world.worker_ids[0]])
            if n == 3:
                with measure(wire):
                    made = await client.post("/v1/bookings", json=body, headers=h)
            else:
                made = await client.post("/v1/bookings", json=body, headers=h)
            assert made.status_code == 201, made.text
        print("create\n" + _show(wire))
    _ = text
