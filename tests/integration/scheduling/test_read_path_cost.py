"""The hot reads' cost in SQL statements per warm request, pinned so it cannot creep back: the
list of one day's 50 bookings (with each one's cleaners), availability for one day and 10
cleaners, and a price quote. Each is read from columns in a fixed number of statements,
whatever the number of rows or cleaners (no per-row or per-worker query).

With READ_PATH_PROFILE=1 each operation is also run 100 times under cProfile and the counts
(SQL statements and Python function calls per request) are printed: how the read paths were
measured (`pytest -s -k read_path_cost`)."""

from __future__ import annotations

import cProfile
import os
import pstats
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from litestar import Litestar
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.factories import arrange_world, next_weekday
from tests.support.identity import signup

# SQL statements SQLAlchemy sends for one warm request (BEGIN with its set_config, and COMMIT, are
# not cursor executions; the organisation and scheduling settings come from the per-process cache):
# the list 1 (rows and their cleaners' ids), availability 3 (price; workers with hours and time off;
# busy ranges), the quote 1 (service, add-ons and discount). The exact wire counts, BEGIN/COMMIT
# included, are pinned in tests/integration/system/test_round_trips.py.
MAX_STATEMENTS = {"list": 1, "availability": 3, "quote": 1}


async def _world(
    client: httpx.AsyncClient, owner_engine: AsyncEngine
) -> tuple[Any, dict[str, Callable[[], Awaitable[httpx.Response]]]]:
    owner = await signup(client)
    world = await arrange_world(owner_engine, owner.org_id, workers=10, service_minutes=60)
    day = next_weekday(1, weeks_ahead=2)
    # 50 bookings on one day: 5 with two cleaners, 40 with one, 5 with none.
    crews = [world.worker_ids[:2]] + [[w] for w in world.worker_ids[2:]] + [[]]
    for crew in crews:
        for h in range(5):
            response = await client.post(
                "/v1/bookings", json=world.booking(day, 8 + h, workers=crew), headers=owner.headers
            )
            assert response.status_code == 201, response.text
    addon = await client.post(
        f"/v1/services/{world.service_id}/addons",
        json={"name": "Oven", "price_cents": 3000, "minutes": 30},
        headers=owner.headers,
    )
    assert addon.status_code == 201, addon.text
    await client.put("/v1/frequency-discounts", json={"weekly": 1500}, headers=owner.headers)
    day_s = day.isoformat()
    ops: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
        "list": lambda: client.get(
            "/v1/bookings", params={"date_from": day_s, "date_to": day_s, "limit": 50}, headers=owner.headers
        ),
        "availability": lambda: client.get(
            "/v1/availability",
            params={"service_id": str(world.service_id), "date_from": day_s, "date_to": day_s},
            headers=owner.headers,
        ),
        "quote": lambda: client.post(
            "/v1/quotes",
            json={
                "service_id": str(world.service_id),
                "bedrooms": 2,
                "addon_ids": [addon.json()["id"]],
                "frequency": "weekly",
            },
            headers=owner.headers,
        ),
    }
    return world, ops


async def test_hot_reads_cost_a_fixed_number_of_statements(
    client: httpx.AsyncClient, app: Litestar, owner_engine: AsyncEngine
) -> None:
    _, ops = await _world(client, owner_engine)
    engine = app.state.engine.sync_engine
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # The outbox delivery marks jobs sent from its own task, not the request's.
        if "job_outbox" not in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    report: list[str] = []
    try:
        for name, op in ops.items():
            first = await op()
            assert first.status_code == 200, first.text
            if name == "list":
                assert len(first.json()["items"]) == 50
            seen.clear()
            again = await op()
            assert again.status_code == 200 and again.json() == first.json()
            statements = len(seen)
            assert statements <= MAX_STATEMENTS[name], (name, seen)
            if os.environ.get("READ_PATH_PROFILE"):
                seen.clear()
                profile = cProfile.Profile()
                profile.enable()
                for _ in range(100):
                    await op()
                profile.disable()
                stats = pstats.Stats(profile)
                calls = stats.total_calls  # type: ignore[attr-defined]
                if os.environ.get("READ_PATH_PROFILE") == name:
                    stats.sort_stats(os.environ.get("READ_PATH_SORT", "cumulative")).print_stats(45)
                report.append(f"{name}: {len(seen) / 100:.1f} statements, {calls / 100:.0f} calls per request")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    if report:
        print("\n" + "\n".join(report))
