"""Checklist templates per service (office), a job's copy ticked by its cleaner, and what the
office sees of it."""

from __future__ import annotations

from tests.integration.evidence.support import arrange
from tests.support.identity import add_member, signup


async def test_a_cleaner_ticks_the_services_checklist_and_the_office_sees_who_and_when(client):
    owner, _world, cleaner, booking = await arrange(client)
    service_url = f"/v1/services/{booking['service_id']}/checklist"
    labels = ["Kitchen surfaces", "Bathroom", "Floors"]
    made = await client.put(service_url, json={"items": labels}, headers=owner.headers)
    assert made.status_code == 200, made.text
    assert [i["label"] for i in made.json()["items"]] == labels
    assert (await client.put(service_url, json={"items": ["x"]}, headers=cleaner.headers)).status_code == 403
    assert (await client.put(service_url, json={"items": [""]}, headers=owner.headers)).status_code == 400

    job_url = f"/v1/worker/jobs/{booking['id']}/checklist"
    opened = await client.get(job_url, headers=cleaner.headers)
    assert opened.status_code == 200, opened.text
    items = opened.json()["items"]
    assert [i["label"] for i in items] == labels and opened.json()["done"] == 0
    # Editing the template now does not rewrite the opened job's checklist.
    await client.put(service_url, json={"items": ["Only this"]}, headers=owner.headers)
    assert [i["label"] for i in (await client.get(job_url, headers=cleaner.headers)).json()["items"]] == labels

    ticked = await client.put(f"{job_url}/{items[1]['id']}", json={"done": True}, headers=cleaner.headers)
    assert ticked.status_code == 200, ticked.text
    assert ticked.json()["done"] == 1
    first_at = ticked.json()["items"][1]["done_at"]
    again = await client.put(f"{job_url}/{items[1]['id']}", json={"done": True}, headers=cleaner.headers)
    assert again.json()["items"][1]["done_at"] == first_at

    evidence = (await client.get(f"/v1/bookings/{booking['id']}/evidence", headers=owner.headers)).json()
    bathroom = evidence["checklist"]["items"][1]
    assert bathroom["done"] and bathroom["done_by_user_id"] == str(cleaner.user_id) and bathroom["done_at"]
    assert bathroom["done_by_worker_id"]
    assert evidence["checklist"]["total"] == 3

    undone = await client.put(f"{job_url}/{items[1]['id']}", json={"done": False}, headers=cleaner.headers)
    assert undone.json()["items"][1]["done_at"] is None


async def test_other_cleaners_and_organisations_cannot_touch_a_jobs_checklist(client, app_sessions):
    from sqlalchemy import func, select

    from spotless.domain.evidence.models import JobChecklistItem

    owner, _world, cleaner, booking = await arrange(client)
    await client.put(f"/v1/services/{booking['service_id']}/checklist", json={"items": ["A"]}, headers=owner.headers)
    items = (await client.get(f"/v1/worker/jobs/{booking['id']}/checklist", headers=cleaner.headers)).json()["items"]
    colleague = await add_member(client, owner, "worker")
    from tests.support.factories import api_worker

    await api_worker(client, owner, name="Kim", user_id=colleague.user_id, hours=("00:00", "23:59"))
    job_url = f"/v1/worker/jobs/{booking['id']}/checklist"
    assert (await client.get(job_url, headers=colleague.headers)).status_code == 404
    assert (
        await client.put(f"{job_url}/{items[0]['id']}", json={"done": True}, headers=colleague.headers)
    ).status_code == 404
    stranger = await signup(client, name="Other org")
    assert (
        await client.get(f"/v1/services/{booking['service_id']}/checklist", headers=stranger.headers)
    ).status_code == 404
    assert (
        await client.put(
            f"/v1/services/{booking['service_id']}/checklist", json={"items": ["x"]}, headers=stranger.headers
        )
    ).status_code == 404
    async with app_sessions.scoped(stranger.org_id) as session:
        assert await session.scalar(select(func.count()).select_from(JobChecklistItem)) == 0
    async with app_sessions.scoped(owner.org_id) as session:
        assert await session.scalar(select(func.count()).select_from(JobChecklistItem)) == 1
