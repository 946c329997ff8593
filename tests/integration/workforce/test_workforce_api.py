"""/v1/workers (profile, weekly hours, time off) and /v1/teams through the API."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.client import Client
from tests.support.identity import add_member, signup


async def _worker(client: Client, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/workers", json={"name": "Ana Cleaner", **body}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_worker_profile_linked_to_a_worker_login(client: Client) -> None:
    owner = await signup(client, currency="CAD")
    login = await add_member(client, owner, "worker")
    viewer = await add_member(client, owner, "viewer")
    worker = await _worker(
        client,
        owner.headers,
        user_id=str(login.user_id),
        phone="+1 416 555 0100",
        skills=["Deep", "windows"],
        hourly_rate_cents=2500,
    )
    assert (worker["user_id"], worker["skills"], worker["currency"], worker["active"]) == (
        str(login.user_id),
        ["deep", "windows"],
        "CAD",
        True,
    )
    # Only a member with the worker role can be a worker's login, and only once.
    for user_id, status in ((viewer.user_id, 400), (uuid.uuid4(), 400), (login.user_id, 409)):
        response = await client.post("/v1/workers", json={"name": "X", "user_id": str(user_id)}, headers=owner.headers)
        assert response.status_code == status, response.text

    patched = await client.patch(f"/v1/workers/{worker['id']}", json={"hourly_rate_cents": 2700}, headers=owner.headers)
    assert patched.json()["hourly_rate_cents"] == 2700
    assert (await client.delete(f"/v1/workers/{worker['id']}", headers=owner.headers)).status_code == 204
    assert (await client.get("/v1/workers", headers=owner.headers)).json()["total"] == 0
    everyone = (await client.get("/v1/workers?include_inactive=true", headers=owner.headers)).json()
    assert [w["active"] for w in everyone["items"]] == [False]
    again = await client.patch(f"/v1/workers/{worker['id']}", json={"active": True}, headers=owner.headers)
    assert again.json()["active"] is True

    for bad in ({"name": "X", "hourly_rate_cents": -1}, {"name": "X", "skills": [""]}, {"name": ""}, {}):
        assert (await client.post("/v1/workers", json=bad, headers=owner.headers)).status_code == 400, bad


async def test_weekly_hours_put_and_get_in_org_local_time(client: Client) -> None:
    owner = await signup(client, timezone="America/Vancouver")
    worker = await _worker(client, owner.headers)
    path = f"/v1/workers/{worker['id']}/hours"
    week = {
        "hours": [
            {"weekday": 1, "start": "13:00", "end": "17:30"},
            {"weekday": 0, "start": "08:00", "end": "12:00"},
            {"weekday": 1, "start": "08:00", "end": "12:00:00"},
        ]
    }
    response = await client.put(path, json=week, headers=owner.headers)
    assert response.status_code == 200, response.text
    expected = {
        "worker_id": worker["id"],
        "timezone": "America/Vancouver",
        "hours": [
            {"weekday": 0, "start": "08:00", "end": "12:00"},
            {"weekday": 1, "start": "08:00", "end": "12:00"},
            {"weekday": 1, "start": "13:00", "end": "17:30"},
        ],
    }
    assert response.json() == expected
    assert (await client.get(path, headers=owner.headers)).json() == expected

    bad_weeks = [
        ([{"weekday": 7, "start": "08:00", "end": "12:00"}], "hours[0].weekday"),
        ([{"weekday": 0, "start": "8am", "end": "12:00"}], "hours[0].start"),
        ([{"weekday": 0, "start": "12:00", "end": "08:00"}], "hours[0].end"),
        (
            [{"weekday": 0, "start": "08:00", "end": "12:00"}, {"weekday": 0, "start": "11:00", "end": "13:00"}],
            "hours[1]",
        ),
    ]
    for hours, field in bad_weeks:
        response = await client.put(path, json={"hours": hours}, headers=owner.headers)
        assert response.status_code == 400, response.text
        assert [e["field"] for e in response.json()["errors"]] == [field], response.text
    assert (
        await client.put(
            path, json={"hours": [{"weekday": "monday", "start": "08:00", "end": "09:00"}]}, headers=owner.headers
        )
    ).status_code == 400
    assert (await client.get(path, headers=owner.headers)).json() == expected  # unchanged by refused weeks

    cleared = await client.put(path, json={"hours": []}, headers=owner.headers)
    assert cleared.json()["hours"] == []


async def test_time_off_create_list_delete_and_validation(client: Client) -> None:
    owner = await signup(client)
    worker = await _worker(client, owner.headers)
    path = f"/v1/workers/{worker['id']}/time-off"
    created = await client.post(
        path,
        json={"starts_at": "2030-07-01T09:00:00-04:00", "ends_at": "2030-07-08T09:00:00-04:00", "reason": "holiday"},
        headers=owner.headers,
    )
    assert created.status_code == 201, created.text
    entry = created.json()
    assert entry["starts_at"].startswith("2030-07-01T13:00:00")  # stored as the same instant, in UTC
    later = await client.post(
        path, json={"starts_at": "2030-09-01T00:00:00Z", "ends_at": "2030-09-02T00:00:00Z"}, headers=owner.headers
    )
    assert later.status_code == 201

    listed = (await client.get(path, headers=owner.headers)).json()
    assert [t["id"] for t in listed["items"]] == [entry["id"], later.json()["id"]]
    window = (
        await client.get(f"{path}?from=2030-08-01T00:00:00Z&to=2030-12-01T00:00:00Z", headers=owner.headers)
    ).json()
    assert [t["id"] for t in window["items"]] == [later.json()["id"]]
    assert (await client.get(f"{path}?from=2030-08-01T00:00:00", headers=owner.headers)).status_code == 400

    for body in (
        {"starts_at": "2030-07-01T09:00:00Z", "ends_at": "2030-07-01T09:00:00Z"},
        {"starts_at": "2030-07-02T09:00:00Z", "ends_at": "2030-07-01T09:00:00Z"},
        {"starts_at": "2030-07-01T09:00:00", "ends_at": "2030-07-02T09:00:00"},  # no offset
        {"starts_at": "tomorrow", "ends_at": "2030-07-02T09:00:00Z"},
        {"starts_at": "2030-07-01T09:00:00Z"},
    ):
        response = await client.post(path, json=body, headers=owner.headers)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["errors"]

    assert (await client.delete(f"{path}/{entry['id']}", headers=owner.headers)).status_code == 204
    assert (await client.delete(f"{path}/{entry['id']}", headers=owner.headers)).status_code == 404
    assert (await client.get(path, headers=owner.headers)).json()["total"] == 1


async def test_teams_and_members(client: Client) -> None:
    owner = await signup(client)
    ana, ben = await _worker(client, owner.headers, name="Ana"), await _worker(client, owner.headers, name="Ben")
    response = await client.post("/v1/teams", json={"name": "North", "worker_ids": [ana["id"]]}, headers=owner.headers)
    assert response.status_code == 201, response.text
    team = response.json()
    assert team["worker_ids"] == [ana["id"]]
    assert (await client.post("/v1/teams", json={"name": "north"}, headers=owner.headers)).status_code == 409
    assert (
        await client.post("/v1/teams", json={"name": "South", "worker_ids": [str(uuid.uuid4())]}, headers=owner.headers)
    ).status_code == 400

    members = f"/v1/teams/{team['id']}/members"
    added = await client.post(members, json={"worker_id": ben["id"]}, headers=owner.headers)
    assert added.status_code == 201 and added.json()["worker_ids"] == [ana["id"], ben["id"]]
    again = await client.post(members, json={"worker_id": ben["id"]}, headers=owner.headers)
    assert again.json()["worker_ids"] == [ana["id"], ben["id"]]
    assert (await client.delete(f"{members}/{ana['id']}", headers=owner.headers)).status_code == 204
    assert (await client.delete(f"{members}/{ana['id']}", headers=owner.headers)).status_code == 404

    renamed = await client.patch(
        f"/v1/teams/{team['id']}", json={"name": "North East", "worker_ids": [ana["id"]]}, headers=owner.headers
    )
    assert (renamed.json()["name"], renamed.json()["worker_ids"]) == ("North East", [ana["id"]])
    listed = (await client.get("/v1/teams", headers=owner.headers)).json()
    assert [(t["name"], t["worker_ids"]) for t in listed["items"]] == [("North East", [ana["id"]])]
    assert (await client.delete(f"/v1/teams/{team['id']}", headers=owner.headers)).status_code == 204
    assert (await client.get(f"/v1/teams/{team['id']}", headers=owner.headers)).status_code == 404
    assert (await client.get(f"/v1/workers/{ana['id']}", headers=owner.headers)).status_code == 200


async def test_permissions_and_other_organisations(client: Client) -> None:
    owner, stranger = await signup(client), await signup(client)
    dispatcher = await add_member(client, owner, "dispatcher")
    field = await add_member(client, owner, "worker")
    worker = await _worker(client, owner.headers)
    # Everyone in the organisation can see who works when; only managers of people change it.
    for member in (dispatcher, field):
        assert (await client.get("/v1/workers", headers=member.headers)).status_code == 200
        assert (await client.get(f"/v1/workers/{worker['id']}/hours", headers=member.headers)).status_code == 200
        for method, path, body in [
            ("POST", "/v1/workers", {"name": "X"}),
            ("PATCH", f"/v1/workers/{worker['id']}", {"name": "X"}),
            ("PUT", f"/v1/workers/{worker['id']}/hours", {"hours": []}),
            (
                "POST",
                f"/v1/workers/{worker['id']}/time-off",
                {"starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-02T00:00:00Z"},
            ),
            ("POST", "/v1/teams", {"name": "X"}),
        ]:
            response = await client.request(method, path, json=body, headers=member.headers)
            assert response.status_code == 403, (member.role, method, path)

    for method, path in [
        ("GET", f"/v1/workers/{worker['id']}"),
        ("GET", f"/v1/workers/{worker['id']}/hours"),
        ("GET", f"/v1/workers/{worker['id']}/time-off"),
        ("DELETE", f"/v1/workers/{worker['id']}"),
    ]:
        assert (await client.request(method, path, headers=stranger.headers)).status_code == 404, path
    response = await client.post(
        "/v1/teams", json={"name": "Mine", "worker_ids": [worker["id"]]}, headers=stranger.headers
    )
    assert response.status_code == 400  # another organisation's worker is unknown here
