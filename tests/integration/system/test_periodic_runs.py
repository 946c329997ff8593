"""A periodic run's (job, slot) is done once: a run that fails is really run again by its retry,
a done slot delivered twice runs once, two deliveries at once run the work once, and a slot whose
runner died is taken over once its lease has run out. Exercised with the real
`scheduling.materialise_series` job, whose effect (bookings) shows whether the work ran."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dramatiq import Message
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain import registry
from spotless.domain.scheduling.actors import JOB, materialise_series
from spotless.domain.system.models import ScheduledRun
from spotless.lib.jobs.broker import build_broker
from spotless.lib.jobs.runtime import JobRuntime, build_runtime, set_runtime
from spotless.settings import Settings
from tests.support.factories import api_world, arrange, new_scheduled_run
from tests.support.identity import signup

registry.import_jobs()

DUE_FUNCTION = "scheduling_due_series(date, timestamptz, uuid, integer)"


@pytest.fixture
async def job_runtime(settings: Settings) -> AsyncIterator[JobRuntime]:
    runtime = build_runtime(settings, application_name="spotless-tests-jobs")
    set_runtime(runtime)
    yield runtime
    set_runtime(None)
    await runtime.close()


def local_today() -> date:
    return datetime.now(ZoneInfo("America/Toronto")).date()


async def due_series(client) -> tuple[object, str]:
    """A series anchored past today's horizon: only a run of the job (on a later day) books it."""
    owner = await signup(client)
    world = await api_world(client, owner, workers=1)
    body = world.series(local_today() + timedelta(days=70))
    created = await client.post("/v1/series", json=body, headers=owner.headers)
    assert created.status_code == 201 and created.json()["booking_ids"] == [], created.text
    return owner, created.json()["series"]["id"]


async def booked(client, owner, series_id: str) -> int:
    response = await client.get("/v1/bookings", params={"series_id": series_id, "limit": 200}, headers=owner.headers)
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


async def run_row(owner_engine: AsyncEngine, slot: str) -> tuple | None:
    async with owner_engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT status, attempts, finished_at IS NOT NULL, last_error FROM scheduled_runs"
                    " WHERE job_name = :job AND slot = :slot"
                ),
                {"job": JOB, "slot": datetime.fromisoformat(slot)},
            )
        ).first()
    return None if row is None else tuple(row)


async def runs_metric(client, outcome: str) -> float:
    body = (await client.get("/metrics")).text
    pattern = rf'^scheduled_runs_total\{{job="{re.escape(JOB)}",outcome="{outcome}"\}} (\S+)$'
    found = re.search(pattern, body, re.M)
    return float(found.group(1)) if found else 0.0


def a_slot(moment: datetime) -> str:
    return moment.replace(minute=0, second=0, microsecond=0).isoformat()


async def _set_due_function_access(owner_engine: AsyncEngine, allowed: bool) -> None:
    statement = (
        "GRANT EXECUTE ON FUNCTION {} TO spotless_app" if allowed else "REVOKE EXECUTE ON FUNCTION {} FROM spotless_app"
    )
    async with owner_engine.begin() as conn:
        await conn.execute(text(statement.format(DUE_FUNCTION)))


async def test_a_failed_periodic_run_really_runs_on_its_retry(
    client, owner_engine: AsyncEngine, job_runtime: JobRuntime
) -> None:
    owner, series_id = await due_series(client)
    moment = datetime.now(UTC) + timedelta(days=20)
    slot = a_slot(moment)
    # The first attempt fails after its claim (the due set cannot be read).
    await _set_due_function_access(owner_engine, allowed=False)
    try:
        with pytest.raises(DBAPIError):
            await materialise_series(slot=slot, now=moment.isoformat())
    finally:
        await _set_due_function_access(owner_engine, allowed=True)
    status, attempts, finished, error = await run_row(owner_engine, slot)
    assert (status, attempts, finished) == ("failed", 1, True) and "permission denied" in error
    assert await booked(client, owner, series_id) == 0

    # Dramatiq's retry delivers the same message again: this time the work is done.
    await materialise_series(slot=slot, now=moment.isoformat())
    assert await booked(client, owner, series_id) > 0
    assert (await run_row(owner_engine, slot))[:3] == ("done", 2, True)


async def test_a_done_slot_is_not_run_again_when_delivered_twice(
    client, owner_engine: AsyncEngine, job_runtime: JobRuntime
) -> None:
    moment = datetime.now(UTC) + timedelta(days=20)
    slot = a_slot(moment)
    await materialise_series(slot=slot, now=moment.isoformat())
    assert (await run_row(owner_engine, slot))[:3] == ("done", 1, True)
    # Work appears after the slot is done: a second delivery of that slot must not do it ...
    owner, series_id = await due_series(client)
    await materialise_series(slot=slot, now=moment.isoformat())
    assert await booked(client, owner, series_id) == 0
    assert (await run_row(owner_engine, slot))[:2] == ("done", 1)
    # ... the next slot does.
    await materialise_series(slot=a_slot(moment + timedelta(hours=1)), now=moment.isoformat())
    assert await booked(client, owner, series_id) > 0


async def test_two_deliveries_of_a_slot_at_once_run_the_work_once(
    client, owner_engine: AsyncEngine, job_runtime: JobRuntime
) -> None:
    owner, series_id = await due_series(client)
    moment = datetime.now(UTC) + timedelta(days=20)
    slot = a_slot(moment)
    claimed, skipped = await runs_metric(client, "claimed"), await runs_metric(client, "skipped")
    await asyncio.gather(*(materialise_series(slot=slot, now=moment.isoformat()) for _ in range(2)))
    assert await runs_metric(client, "claimed") - claimed == 1
    assert await runs_metric(client, "skipped") - skipped == 1
    assert (await run_row(owner_engine, slot))[:3] == ("done", 1, True)
    assert await booked(client, owner, series_id) > 0


async def test_a_started_slot_is_left_alone_under_lease_and_taken_over_after_it(
    client, owner_engine: AsyncEngine, job_runtime: JobRuntime
) -> None:
    owner, series_id = await due_series(client)
    moment = datetime.now(UTC) + timedelta(days=20)
    slot = a_slot(moment)

    async def started(lease: float) -> None:
        """The slot's run as another runner left it (started), its lease running `lease` s from now."""
        lease_until = datetime.now(UTC) + timedelta(seconds=lease)
        async with arrange(owner_engine) as db:
            run = await db.get(ScheduledRun, (JOB, datetime.fromisoformat(slot)))
            if run is None:
                await new_scheduled_run(
                    db, JOB, datetime.fromisoformat(slot), status="started", lease_until=lease_until
                )
            else:
                run.lease_until = lease_until

    # Another runner is on it (its lease holds): a redelivery does nothing.
    await started(600.0)
    await materialise_series(slot=slot, now=moment.isoformat())
    assert await booked(client, owner, series_id) == 0
    # That runner died (its lease ran out, it never finished): the next delivery takes over.
    await started(-1.0)
    await materialise_series(slot=slot, now=moment.isoformat())
    assert await booked(client, owner, series_id) > 0
    assert (await run_row(owner_engine, slot))[:3] == ("done", 2, True)


async def test_the_worker_retries_a_failed_periodic_run_for_real(
    client, settings: Settings, owner_engine: AsyncEngine, worker_process
) -> None:
    """End to end: the scheduler's message fails in a real worker, Dramatiq retries it, the retry works."""
    owner, series_id = await due_series(client)
    moment = datetime.now(UTC) + timedelta(days=20)
    slot = a_slot(moment)
    await _set_due_function_access(owner_engine, allowed=False)
    broker = build_broker(settings)
    try:
        message: Message[object] = Message(
            queue_name="default", actor_name=JOB, args=(), kwargs={"slot": slot, "now": moment.isoformat()}, options={}
        )
        await asyncio.to_thread(broker.enqueue, message)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (await run_row(owner_engine, slot) or ("",))[0] != "failed":
            await asyncio.sleep(0.1)
        assert (await run_row(owner_engine, slot) or ("",))[0] == "failed", worker_process.log()
    finally:
        await _set_due_function_access(owner_engine, allowed=True)
        broker.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not await booked(client, owner, series_id):
        await asyncio.sleep(0.2)
    assert await booked(client, owner, series_id) > 0, worker_process.log()
    status, attempts, _, _ = await run_row(owner_engine, slot)
    assert status == "done" and attempts >= 2
