"""No double booking under real concurrency: two API processes, 50 simultaneous requests for the
same worker and time. Postgres's exclusion constraint lets exactly one through."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import test_env as child_env
from tests.support.factories import api_world, next_weekday
from tests.support.identity import signup
from tests.support.processes import start_api

pytestmark = pytest.mark.slow


async def test_fifty_simultaneous_requests_across_two_nodes_book_once(client, owner_engine: AsyncEngine) -> None:
    owner = await signup(client)
    world = await api_world(client, owner, workers=1)
    day = next_weekday(2)
    # Modest pools: 25 requests per node still overlap, without crowding a shared Postgres.
    env = child_env(DATABASE_POOL_SIZE="5", DATABASE_MAX_OVERFLOW="10")
    nodes = [start_api(env), start_api(env)]
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            # Warm both nodes (connection pools, first-request imports) so the burst really overlaps.
            for node in nodes:
                warm = await http.get(f"{node.base_url}/v1/bookings", headers=owner.headers)
                assert warm.status_code == 200, warm.text
            start = asyncio.Event()

            async def fire(i: int) -> httpx.Response:
                await start.wait()
                # Slightly different start times: all overlap the same 2-hour job of the same worker.
                body = world.booking(day, 9, (i % 4) * 15)
                return await http.post(f"{nodes[i % 2].base_url}/v1/bookings", json=body, headers=owner.headers)

            tasks = [asyncio.create_task(fire(i)) for i in range(50)]
            await asyncio.sleep(0.2)
            start.set()
            responses = await asyncio.gather(*tasks)
    finally:
        logs = [node.log() for node in nodes]
        for node in nodes:
            node.stop()

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 49}, (
        statuses,
        [r.text for r in responses if r.status_code not in (201, 409)],
        logs,
    )
    winner = next(r.json() for r in responses if r.status_code == 201)
    for refused in (r.json() for r in responses if r.status_code == 409):
        assert refused["type"] == "/problems/booking-conflict"
        assert refused["conflicting_booking_id"] == winner["id"]
    async with owner_engine.connect() as conn:
        count = await conn.scalar(text("SELECT count(*) FROM booking WHERE org_id = :org"), {"org": owner.org_id})
        active = await conn.scalar(
            text("SELECT count(*) FROM booking_assignment WHERE org_id = :org AND active"), {"org": owner.org_id}
        )
    assert count == 1 and active == 1
