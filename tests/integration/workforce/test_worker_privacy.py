"""Workers' contact and pay details: a cleaner sees their own profile whole and their colleagues'
names, skills and hours, never their phone, email, hourly rate or the reasons of their time off.
Office roles get contact details (workers.contact.view), finance also the rate (workers.pay.view).
A hidden field is absent from the answer, not null (null means "not set")."""

from __future__ import annotations

from typing import Any

from tests.support.client import Client
from tests.support.identity import Member, add_member, signup

CONTACT = ("phone", "email")
PAY = ("hourly_rate_cents",)


async def _worker(client: Client, owner: Member, name: str, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/workers", json={"name": name, **body}, headers=owner.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _team(client: Client) -> tuple[Member, dict[str, Member], dict[str, Any], dict[str, Any]]:
    """An organisation with one member of each role; two worker profiles with full details, the
    first linked to the `worker` member's login; each with a time off whose reason is personal."""
    owner = await signup(client)
    members = {"owner": owner}
    for role in ("admin", "dispatcher", "finance", "viewer", "worker"):
        members[role] = await add_member(client, owner, role)
    mine = await _worker(
        client,
        owner,
        "Mia Mine",
        user_id=str(members["worker"].user_id),
        phone="+1 416 555 0101",
        email="mia@example.com",
        hourly_rate_cents=2600,
    )
    colleague = await _worker(
        client, owner, "Cole Colleague", phone="+1 416 555 0199", email="cole@example.com", hourly_rate_cents=3100
    )
    for worker, reason in ((mine, "dentist"), (colleague, "chemotherapy")):
        response = await client.post(
            f"/v1/workers/{worker['id']}/time-off",
            json={"starts_at": "2030-03-01T09:00:00Z", "ends_at": "2030-03-01T12:00:00Z", "reason": reason},
            headers=owner.headers,
        )
        assert response.status_code == 201, response.text
    return owner, members, mine, colleague


def _shown(body: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: body[f] for f in fields if f in body}


async def test_a_cleaner_sees_their_own_details_and_not_their_colleagues(client: Client) -> None:
    _owner, members, mine, colleague = await _team(client)
    cleaner = members["worker"]

    listed = (await client.get("/v1/workers", headers=cleaner.headers)).json()["items"]
    by_id = {w["id"]: w for w in listed}
    assert set(by_id) == {mine["id"], colleague["id"]}  # colleagues are listed, by name and skills
    assert _shown(by_id[mine["id"]], CONTACT + PAY) == {
        "phone": "+1 416 555 0101",
        "email": "mia@example.com",
        "hourly_rate_cents": 2600,
    }
    assert _shown(by_id[colleague["id"]], CONTACT + PAY) == {}
    assert by_id[colleague["id"]]["name"] == "Cole Colleague"

    one = (await client.get(f"/v1/workers/{colleague['id']}", headers=cleaner.headers)).json()
    assert _shown(one, CONTACT + PAY) == {}
    own = (await client.get(f"/v1/workers/{mine['id']}", headers=cleaner.headers)).json()
    assert own["hourly_rate_cents"] == 2600 and own["phone"] == "+1 416 555 0101"

    theirs = (await client.get(f"/v1/workers/{colleague['id']}/time-off", headers=cleaner.headers)).json()["items"]
    assert len(theirs) == 1 and "reason" not in theirs[0]
    ours = (await client.get(f"/v1/workers/{mine['id']}/time-off", headers=cleaner.headers)).json()["items"]
    assert [t["reason"] for t in ours] == ["dentist"]


async def test_a_cleaner_cannot_find_a_colleague_by_phone_or_email(client: Client) -> None:
    _owner, members, _mine, colleague = await _team(client)
    for q in ("555 0199", "cole@example"):
        found = (await client.get("/v1/workers", params={"q": q}, headers=members["worker"].headers)).json()
        assert found["total"] == 0, q
        office = (await client.get("/v1/workers", params={"q": q}, headers=members["dispatcher"].headers)).json()
        assert [w["id"] for w in office["items"]] == [colleague["id"]], q
    by_name = (await client.get("/v1/workers", params={"q": "Cole"}, headers=members["worker"].headers)).json()
    assert [w["id"] for w in by_name["items"]] == [colleague["id"]]


async def test_each_role_sees_the_worker_details_its_permissions_allow(client: Client) -> None:
    _owner, members, _mine, colleague = await _team(client)
    expected = {
        "owner": CONTACT + PAY,
        "admin": CONTACT + PAY,
        "dispatcher": CONTACT,
        "finance": CONTACT + PAY,
        "viewer": CONTACT,
        "worker": (),
    }
    for role, fields in expected.items():
        headers = members[role].headers
        body = (await client.get(f"/v1/workers/{colleague['id']}", headers=headers)).json()
        assert set(_shown(body, CONTACT + PAY)) == set(fields), role
        listed = (await client.get("/v1/workers", headers=headers)).json()["items"]
        row = next(w for w in listed if w["id"] == colleague["id"])
        assert set(_shown(row, CONTACT + PAY)) == set(fields), role
        off = (await client.get(f"/v1/workers/{colleague['id']}/time-off", headers=headers)).json()["items"]
        assert ("reason" in off[0]) is ("phone" in fields), role
        if "phone" in fields:
            assert off[0]["reason"] == "chemotherapy"


async def test_a_detail_that_is_not_set_is_null_and_a_hidden_one_is_absent(client: Client) -> None:
    owner = await signup(client)
    cleaner = await add_member(client, owner, "worker")
    bare = await _worker(client, owner, "No Phone")
    assert bare["phone"] is None and bare["hourly_rate_cents"] is None  # the owner sees "not set"
    seen = (await client.get(f"/v1/workers/{bare['id']}", headers=cleaner.headers)).json()
    assert "phone" not in seen and "hourly_rate_cents" not in seen
