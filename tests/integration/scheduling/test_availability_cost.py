"""Availability's cost is bounded before it is spent: cleaners x days and candidate start times are
capped with a 400 that says what to narrow, no cleaner is silently dropped, the largest answer
allowed stays about a megabyte, and the route is in the `expensive` limiter class."""

from __future__ import annotations

import time as clock
from datetime import time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.app import create_app
from spotless.domain.scheduling.availability import MAX_CANDIDATE_STARTS, MAX_WORKER_DAYS
from tests.conftest import make_settings
from tests.support.client import app_client
from tests.support.factories import arrange_world, next_weekday
from tests.support.identity import signup

ALL_DAY = (time(0), time(23, 55))


async def _availability(client: Any, owner: Any, world: Any, days: int, **params: Any) -> Any:
    day = next_weekday(0, weeks_ahead=2)
    return await client.get(
        "/v1/availability",
        params={
            "service_id": str(world.service_id),
            "date_from": day.isoformat(),
            "date_to": (day + timedelta(days=days - 1)).isoformat(),
            **params,
        },
        headers=owner.headers,
    )


async def test_more_than_500_cleaners_are_all_considered(client, owner_engine: AsyncEngine) -> None:
    owner = await signup(client)
    world = await arrange_world(owner_engine, owner.org_id, workers=501, service_minutes=60)
    response = await _availability(client, owner, world, 1, step_minutes=240)
    assert response.status_code == 200, response.text
    offered = {w for slot in response.json()["slots"] for w in slot["worker_ids"]}
    assert offered == {str(w) for w in world.worker_ids}  # 501, not the first 500


async def test_too_many_cleaner_days_is_a_400_saying_what_to_narrow(client, owner_engine: AsyncEngine) -> None:
    owner = await signup(client)
    world = await arrange_world(owner_engine, owner.org_id, workers=40, service_minutes=60)
    response = await _availability(client, owner, world, 31)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["type"] == "/problems/availability-too-large"
    assert problem["cleaner_days"] == 40 * 31 and problem["max_cleaner_days"] == MAX_WORKER_DAYS
    assert {e["field"] for e in problem["errors"]} == {"date_to", "worker_id"}
    assert "fewer days" in problem["detail"] and "worker_id" in problem["detail"]
    # Narrowed as told: one worker, or fewer days, is answered.
    one = await _availability(client, owner, world, 31, worker_id=str(world.worker_ids[0]))
    assert one.status_code == 200, one.text
    assert (await _availability(client, owner, world, 7)).status_code == 200


async def test_too_many_candidate_start_times_is_a_400_naming_the_step(client, owner_engine: AsyncEngine) -> None:
    owner = await signup(client)
    world = await arrange_world(owner_engine, owner.org_id, workers=40, hours=ALL_DAY, service_minutes=60)
    response = await _availability(client, owner, world, 2, step_minutes=5)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["type"] == "/problems/availability-too-large"
    assert problem["candidate_starts"] > MAX_CANDIDATE_STARTS
    assert "step_minutes" in {e["field"] for e in problem["errors"]}
    assert (await _availability(client, owner, world, 2, step_minutes=15)).status_code == 200


async def test_the_largest_answer_allowed_is_bounded(client, owner_engine: AsyncEngine) -> None:
    """Just under the candidate cap (69 cleaners free all day in 5-minute steps): every slot lists
    every cleaner, the worst case for the answer's size and the work."""
    owner = await signup(client)
    world = await arrange_world(owner_engine, owner.org_id, workers=69, hours=ALL_DAY, service_minutes=30)
    started = clock.perf_counter()
    response = await _availability(client, owner, world, 1, step_minutes=5)
    elapsed = clock.perf_counter() - started
    assert response.status_code == 200, response.text
    pairs = sum(len(s["worker_ids"]) for s in response.json()["slots"])
    assert pairs > MAX_CANDIDATE_STARTS * 0.9
    assert len(response.content) < 1_200_000, len(response.content)
    print(f"\nlargest availability answer: {len(response.content)} bytes, {pairs} cleaner-slots, {elapsed:.2f}s")


async def test_availability_is_in_the_expensive_limiter_class(owner_engine: AsyncEngine) -> None:
    app = create_app(make_settings(RATE_LIMIT_ENABLED="true", EXPENSIVE_RATE_LIMIT_PER_MINUTE="2"))
    async with app_client(app) as client:
        owner = await signup(client)
        world = await arrange_world(owner_engine, owner.org_id, workers=1, service_minutes=60)
        first = await _availability(client, owner, world, 1)
        assert first.status_code == 200, first.text
        assert first.headers["ratelimit-policy"] == '"expensive";q=2;w=60'
        await _availability(client, owner, world, 1)
        refused = await _availability(client, owner, world, 1)
        assert refused.status_code == 429 and "retry-after" in refused.headers
        # Other routes keep their own (default) budget.
        assert (await client.get("/v1/bookings", headers=owner.headers)).status_code == 200
