"""A vacation hold pauses a series: its visits in the window are cancelled (and announced), none is
booked there while it holds, and lifting it early books the freed dates again."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.factories import api_world, next_weekday
from tests.support.identity import signup


async def _visits(client: Any, owner: Any, series_id: str) -> dict[str, dict[str, Any]]:
    response = await client.get("/v1/bookings", params={"series_id": series_id, "limit": 200}, headers=owner.headers)
    assert response.status_code == 200, response.text
    live: dict[str, dict[str, Any]] = {}
    for b in response.json()["items"]:
        if b["status"] != "cancelled" or b["occurrence_date"] not in live:
            live[b["occurrence_date"]] = b
    return live


async def _weekly(client: Any, owner: Any, start: date, weeks: int) -> tuple[Any, str]:
    world = await api_world(client, owner, workers=1)
    created = await client.post("/v1/series", json=world.series(start, count=weeks), headers=owner.headers)
    assert created.status_code == 201, created.text
    return world, created.json()["series"]["id"]


async def test_a_hold_cancels_the_visits_in_its_window_and_announces_them(client, owner_engine: AsyncEngine) -> None:
    owner = await signup(client)
    start = next_weekday(1, weeks_ahead=1)
    _, series_id = await _weekly(client, owner, start, 5)
    window = {"starts_on": (start + timedelta(days=7)).isoformat(), "ends_on": (start + timedelta(days=20)).isoformat()}
    placed = await client.post(
        f"/v1/series/{series_id}/holds", json={**window, "reason": "family trip"}, headers=owner.headers
    )
    assert placed.status_code == 201, placed.text
    body = placed.json()
    assert body["hold"]["starts_on"] == window["starts_on"] and body["hold"]["reason"] == "family trip"
    assert len(body["cancelled_booking_ids"]) == 2  # weeks 2 and 3

    visits = await _visits(client, owner, series_id)
    by_week = [visits[(start + timedelta(days=7 * n)).isoformat()] for n in range(5)]
    assert [v["status"] for v in by_week] == ["pending", "cancelled", "cancelled", "pending", "pending"]
    assert by_week[1]["cancel_reason"] == "series paused: family trip"

    listed = await client.get(f"/v1/series/{series_id}/holds", headers=owner.headers)
    assert [h["id"] for h in listed.json()] == [body["hold"]["id"]]
    async with owner_engine.connect() as conn:
        # One row per subscriber of each event: count the events (their ids), not the rows.
        events = (
            (
                await conn.execute(
                    text("SELECT DISTINCT ON (args->>1) args->>0 AS name FROM job_outbox ORDER BY args->>1")
                )
            )
            .scalars()
            .all()
        )
    assert events.count("scheduling.BookingCancelled") == 2


async def test_holds_of_one_series_never_overlap_and_bad_windows_are_refused(client) -> None:
    owner = await signup(client)
    start = next_weekday(1, weeks_ahead=1)
    _, series_id = await _weekly(client, owner, start, 3)
    url = f"/v1/series/{series_id}/holds"
    first = {"starts_on": (start + timedelta(days=1)).isoformat(), "ends_on": (start + timedelta(days=9)).isoformat()}
    assert (await client.post(url, json=first, headers=owner.headers)).status_code == 201
    overlapping = {
        "starts_on": (start + timedelta(days=9)).isoformat(),
        "ends_on": (start + timedelta(days=12)).isoformat(),
    }
    refused = await client.post(url, json=overlapping, headers=owner.headers)
    assert refused.status_code == 409 and refused.json()["type"].endswith("/hold-overlaps")

    backwards = {"starts_on": first["ends_on"], "ends_on": first["starts_on"]}
    bad = await client.post(url, json=backwards, headers=owner.headers)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "ends_on"
    past = {"starts_on": "2020-01-01", "ends_on": "2020-01-05"}
    bad = await client.post(url, json=past, headers=owner.headers)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "starts_on"
    assert len((await client.get(url, headers=owner.headers)).json()) == 1  # nothing half-written


async def test_lifting_a_hold_that_has_not_started_books_its_dates_again(client) -> None:
    owner = await signup(client)
    start = next_weekday(1, weeks_ahead=1)
    _, series_id = await _weekly(client, owner, start, 4)
    window = {"starts_on": (start + timedelta(days=7)).isoformat(), "ends_on": (start + timedelta(days=13)).isoformat()}
    hold = (await client.post(f"/v1/series/{series_id}/holds", json=window, headers=owner.headers)).json()["hold"]
    week2 = (start + timedelta(days=7)).isoformat()
    assert (await _visits(client, owner, series_id))[week2]["status"] == "cancelled"

    lifted = await client.post(f"/v1/series/{series_id}/holds/{hold['id']}/lift", headers=owner.headers)
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["hold"] is None and len(lifted.json()["booking_ids"]) == 1
    visits = await _visits(client, owner, series_id)
    assert visits[week2]["status"] == "pending" and visits[week2]["id"] == lifted.json()["booking_ids"][0]
    assert (await client.get(f"/v1/series/{series_id}/holds", headers=owner.headers)).json() == []
    again = await client.post(f"/v1/series/{series_id}/holds/{hold['id']}/lift", headers=owner.headers)
    assert again.status_code == 404


async def test_a_visit_cancelled_on_its_own_stays_cancelled_when_a_hold_is_lifted(client) -> None:
    owner = await signup(client)
    start = next_weekday(1, weeks_ahead=1)
    _, series_id = await _weekly(client, owner, start, 4)
    week2 = (start + timedelta(days=7)).isoformat()
    cancelled = await client.post(
        f"/v1/series/{series_id}/occurrences/{week2}/cancel",
        json={"scope": "this", "reason": "client asked"},
        headers=owner.headers,
    )
    assert cancelled.status_code == 200, cancelled.text
    window = {"starts_on": week2, "ends_on": (start + timedelta(days=13)).isoformat()}
    hold = (await client.post(f"/v1/series/{series_id}/holds", json=window, headers=owner.headers)).json()
    assert hold["cancelled_booking_ids"] == []
    lifted = await client.post(f"/v1/series/{series_id}/holds/{hold['hold']['id']}/lift", headers=owner.headers)
    assert lifted.json()["booking_ids"] == []
    visits = await _visits(client, owner, series_id)
    assert visits[week2]["status"] == "cancelled" and visits[week2]["cancel_reason"] == "client asked"


async def test_the_materialiser_books_nothing_inside_a_hold(client, settings) -> None:
    from datetime import UTC, datetime

    from spotless.domain.scheduling.actors import materialise_series
    from spotless.lib.jobs.runtime import build_runtime, set_runtime

    owner = await signup(client)
    horizon = settings.scheduling.horizon_days
    anchor = next_weekday(1, weeks_ahead=horizon // 7 + 2)  # past the horizon: created with no visit
    world = await api_world(client, owner, workers=1)
    created = await client.post("/v1/series", json=world.series(anchor, count=3), headers=owner.headers)
    assert created.status_code == 201 and created.json()["booking_ids"] == []
    series_id = created.json()["series"]["id"]
    week2 = anchor + timedelta(days=7)
    hold = {"starts_on": week2.isoformat(), "ends_on": week2.isoformat()}
    assert (await client.post(f"/v1/series/{series_id}/holds", json=hold, headers=owner.headers)).status_code == 201

    runtime = build_runtime(settings, application_name="spotless-tests-holds")
    set_runtime(runtime)
    try:
        moment = datetime.combine(anchor, datetime.min.time(), UTC)
        await materialise_series(now=moment.isoformat())
    finally:
        set_runtime(None)
        await runtime.close()
    booked = sorted(await _visits(client, owner, series_id))
    assert booked == [anchor.isoformat(), (anchor + timedelta(days=14)).isoformat()]
