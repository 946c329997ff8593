"""The periodic materialiser cannot be stalled: more stuck series than one page (anchored past the
horizon, their service deactivated) never keep another organisation's series from being booked,
and a series that fails says so (on the series, in a metric) and recovers once fixed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.scheduling.actors import materialise_series
from spotless.domain.scheduling.materialise import PAGE, RETRY_FAILED_AFTER, due_page
from spotless.domain.scheduling.models import BookingSeries
from spotless.lib.jobs.runtime import JobRuntime, build_runtime, set_runtime
from spotless.settings import Settings
from tests.support.factories import api_world, arrange, new_series
from tests.support.identity import signup


@pytest.fixture
async def job_runtime(settings: Settings) -> AsyncIterator[JobRuntime]:
    runtime = build_runtime(settings, application_name="spotless-tests-jobs")
    set_runtime(runtime)
    yield runtime
    set_runtime(None)
    await runtime.close()


def local_today() -> date:
    return datetime.now(ZoneInfo("America/Toronto")).date()


async def create_series(client, owner, body: dict) -> str:
    created = await client.post("/v1/series", json=body, headers=owner.headers)
    assert created.status_code == 201, created.text
    assert created.json()["booking_ids"] == []  # anchored past the horizon: the job books it
    return str(created.json()["series"]["id"])


async def booked_dates(client, owner, series_id: str) -> list[str]:
    response = await client.get("/v1/bookings", params={"series_id": series_id, "limit": 200}, headers=owner.headers)
    assert response.status_code == 200, response.text
    return [b["occurrence_date"] for b in response.json()["items"]]


async def failures_metric(client, reason: str) -> float:
    body = (await client.get("/metrics")).text
    found = re.search(rf'^series_materialise_failures_total\{{reason="{re.escape(reason)}"\}} (\S+)$', body, re.M)
    return float(found.group(1)) if found else 0.0


async def clone_series(
    owner_engine: AsyncEngine,
    template_id: str,
    ids: Sequence[UUID],
    anchor: date,
    until: date | None = None,
) -> None:
    """Copies of a series as they were left by the materialiser before this fix: never
    materialised (`materialised_until` NULL), with the template's cleaners in its order."""
    async with arrange(owner_engine) as db:
        template = await db.get_one(BookingSeries, UUID(template_id))
        copied = {
            name: getattr(template, name)
            for name in (
                "team_id",
                "frequency",
                "interval",
                "day_of_month",
                "start_time",
                "timezone",
                "duration_minutes",
                "params",
                "addon_ids",
                "notes",
                "created_by",
            )
        }
        for series_id in ids:
            await new_series(
                db,
                template.org_id,
                template.client_id,
                template.address_id,
                template.service_id,
                worker_ids=list(template.worker_ids),
                id=series_id,
                anchor_date=anchor,
                until_date=until,
                **copied,
            )


async def series_state(owner_engine: AsyncEngine, ids: Sequence[UUID]) -> list[tuple]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            select(
                BookingSeries.id,
                BookingSeries.materialised_until,
                BookingSeries.materialise_error,
                BookingSeries.materialise_failed_at,
            )
            .where(BookingSeries.id.in_(ids))
            .order_by(BookingSeries.id)
        )
        return [tuple(r) for r in rows]


async def test_more_stuck_series_than_a_page_do_not_hold_up_another_organisation(
    client, owner_engine: AsyncEngine, job_runtime: JobRuntime
) -> None:
    today = local_today()
    stuck_owner = await signup(client)
    stuck_world = await api_world(client, stuck_owner, workers=1)
    template = await create_series(client, stuck_owner, stuck_world.series(today + timedelta(days=400)))
    # 250 series that make no progress, all sorted before any series made through the API (their
    # ids are the smallest there are): half anchored far past the horizon, half booked on a
    # service that is then deactivated.
    # A few more ended before they were ever materialised (the materialiser was down meanwhile).
    far = [UUID(int=i) for i in range(1, 126)]
    broken = [UUID(int=i) for i in range(126, 251)]
    ended = [UUID(int=i) for i in range(251, 261)]
    assert len(far) + len(broken) > PAGE
    await clone_series(owner_engine, template, far, today + timedelta(days=400))
    await clone_series(owner_engine, template, ended, today - timedelta(days=30), today - timedelta(days=10))
    await clone_series(owner_engine, template, broken, today)
    gone = await client.delete(f"/v1/services/{stuck_world.service_id}", headers=stuck_owner.headers)
    assert gone.status_code == 204, gone.text

    # Another organisation's healthy series, due once the clock has moved on.
    owner = await signup(client)
    world = await api_world(client, owner, workers=1)
    healthy = await create_series(client, owner, world.series(today + timedelta(days=70)))
    before = await failures_metric(client, "service-inactive")

    moment = datetime.now(UTC) + timedelta(days=20)
    await materialise_series(slot=moment.replace(microsecond=0).isoformat(), now=moment.isoformat())

    booked = await booked_dates(client, owner, healthy)
    assert booked and booked[0] == (today + timedelta(days=70)).isoformat()
    # The series with nothing due have their marker advanced: they leave the due set.
    assert all(until is not None for _, until, _, _ in await series_state(owner_engine, far))
    finished = await series_state(owner_engine, ended)
    assert {until for _, until, _, _ in finished} == {today - timedelta(days=10)}
    # The broken ones say why, keep their marker (nothing skipped) and are counted.
    states = await series_state(owner_engine, broken)
    assert {(until, (error or "").split(":")[0]) for _, until, error, _ in states} == {(None, "service-inactive")}
    assert await failures_metric(client, "service-inactive") - before == len(broken)
    shown = (await client.get(f"/v1/series/{broken[0]}", headers=stuck_owner.headers)).json()
    assert shown["materialise_error"]["reason"] == "service-inactive"
    assert "deactivated" in shown["materialise_error"]["detail"]
    assert shown["materialise_error"]["failed_at"]

    # Nothing is due any more: the failed series wait for their back-off, the rest are done.
    async with job_runtime.session() as session:
        assert await due_page(session, moment, job_runtime.settings.scheduling.horizon_days, None) == []


async def test_a_deactivated_service_or_a_pricing_failure_is_recorded_and_recovers(
    client, job_runtime: JobRuntime
) -> None:
    today = local_today()
    owner = await signup(client)
    world = await api_world(client, owner, workers=1)
    start = today + timedelta(days=70)
    second = await client.post(
        "/v1/services",
        json={"name": "Deep clean", "base_price_cents": 20_000, "base_minutes": 90},
        headers=owner.headers,
    )
    assert second.status_code == 201, second.text
    second_id = second.json()["id"]
    addon = await client.post(
        f"/v1/services/{second_id}/addons", json={"name": "Oven", "price_cents": 2_500}, headers=owner.headers
    )
    assert addon.status_code == 201, addon.text
    addon_id = addon.json()["id"]

    inactive_service = await create_series(client, owner, world.series(start, "09:00"))
    retired_addon = await create_series(
        client, owner, world.series(start, "12:00", service_id=second_id, addon_ids=[addon_id])
    )
    healthy = await create_series(client, owner, world.series(start, "15:00", service_id=second_id))
    assert (await client.delete(f"/v1/services/{world.service_id}", headers=owner.headers)).status_code == 204
    assert (
        await client.delete(f"/v1/services/{second_id}/addons/{addon_id}", headers=owner.headers)
    ).status_code == 204
    before = {r: await failures_metric(client, r) for r in ("service-inactive", "validation-error")}

    moment = datetime.now(UTC) + timedelta(days=20)
    await materialise_series(now=moment.isoformat())

    # One failing series rolls back alone: the others of the same organisation are booked.
    assert await booked_dates(client, owner, healthy)
    assert await booked_dates(client, owner, inactive_service) == []
    assert await booked_dates(client, owner, retired_addon) == []
    first = (await client.get(f"/v1/series/{inactive_service}", headers=owner.headers)).json()
    assert first["materialise_error"]["reason"] == "service-inactive"
    pricing = (await client.get(f"/v1/series/{retired_addon}", headers=owner.headers)).json()
    assert pricing["materialise_error"]["reason"] == "validation-error"
    assert "no longer offered" in pricing["materialise_error"]["detail"]
    for reason in before:
        assert await failures_metric(client, reason) - before[reason] == 1

    # Within the back-off a failed series is not retried on every run.
    await materialise_series(now=(moment + timedelta(hours=1)).isoformat())
    again = (await client.get(f"/v1/series/{inactive_service}", headers=owner.headers)).json()
    assert again["materialise_error"] == first["materialise_error"]

    # Fixed by the owner: the next run after the back-off books it and clears the error.
    reactivated = await client.patch(f"/v1/services/{world.service_id}", json={"active": True}, headers=owner.headers)
    assert reactivated.status_code == 200, reactivated.text
    await materialise_series(now=(moment + RETRY_FAILED_AFTER + timedelta(minutes=1)).isoformat())
    assert (await booked_dates(client, owner, inactive_service))[0] == start.isoformat()
    recovered = (await client.get(f"/v1/series/{inactive_service}", headers=owner.headers)).json()
    assert recovered["materialise_error"] is None
    still = (await client.get(f"/v1/series/{retired_addon}", headers=owner.headers)).json()
    assert still["materialise_error"]["reason"] == "validation-error"


async def test_a_series_with_nothing_due_leaves_the_due_set(client, job_runtime: JobRuntime) -> None:
    today = local_today()
    owner = await signup(client)
    world = await api_world(client, owner, workers=1)
    far = await create_series(client, owner, world.series(today + timedelta(days=300)))
    horizon = job_runtime.settings.scheduling.horizon_days
    shown = (await client.get(f"/v1/series/{far}", headers=owner.headers)).json()
    assert shown["materialised_until"] == (today + timedelta(days=horizon)).isoformat()
    async with job_runtime.session() as session:
        assert await due_page(session, datetime.now(UTC), horizon, None) == []
    # A later day makes it due again, and the run moves it on once more.
    tomorrow = datetime.now(UTC) + timedelta(days=2)
    async with job_runtime.session() as session:
        assert [s for _, s in await due_page(session, tomorrow, horizon, None)] == [UUID(far)]
    await materialise_series(now=tomorrow.isoformat())
    async with job_runtime.session() as session:
        assert await due_page(session, tomorrow, horizon, None) == []
