"""An organisation cannot reach into another's accounts: adding an existing person's email is an
invitation that person accepts in their own session, and until then (and after) the inviting
organisation learns nothing about the account and cannot change it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from spotless.db.engine import create_engine
from spotless.domain.identity import passwords
from tests.support.identity import (
    deliver_invitation,
    invite,
    join_existing,
    login,
    signup,
    temp_password_in,
    token_in,
    unique_email,
)


def _shape(value: Any) -> Any:
    """The structure of a JSON value: keys and types, not contents."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__


async def _audit(client, member) -> list[dict]:
    response = await client.get("/v1/admin/audit", headers=member.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def _as_app(settings, org_id, statement: str, *, as_user=None, **params) -> int:
    """Run one statement as the application role under an organisation's RLS scope (and, with
    `as_user`, as that user acting on their own rows)."""
    engine = create_engine(settings.database, application_name="cross-account-test")
    try:
        async with engine.connect() as conn, conn.begin():
            await conn.execute(text("SELECT set_config('app.org_id', :o, true)"), {"o": str(org_id)})
            if as_user is not None:
                await conn.execute(text("SELECT set_config('app.user_id', :u, true)"), {"u": str(as_user)})
            return (await conn.execute(text(statement), params)).rowcount  # type: ignore[no-any-return]
    finally:
        await engine.dispose()


async def test_an_attacker_organisation_learns_nothing_and_gains_nothing(client, settings, monkeypatch):
    victim = await signup(client, name="Victim Co", email=unique_email("victim"))
    attacker = await signup(client, name="Attacker Co")
    hashes: list[str] = []
    real_hash = passwords.hash_password

    async def counting_hash(auth_settings, password):
        hashes.append(password)
        return await real_hash(auth_settings, password)

    monkeypatch.setattr(passwords, "hash_password", counting_hash)
    existing = await client.post(
        "/v1/iam/users", json={"email": victim.email, "role": "viewer", "full_name": "Vic"}, headers=attacker.headers
    )
    existing_hashes = len(hashes)
    fresh = await client.post(
        "/v1/iam/users",
        json={"email": unique_email("fresh"), "role": "viewer", "full_name": "Vic"},
        headers=attacker.headers,
    )
    monkeypatch.undo()
    # The same answer, status and shape, and the same argon2 work, whether or not the email has an account.
    assert existing.status_code == fresh.status_code == 202, (existing.text, fresh.text)
    assert _shape(existing.json()) == _shape(fresh.json())
    assert existing_hashes == 1 and len(hashes) == 2
    for answer in (existing.json(), fresh.json()):
        assert answer["status"] == "pending" and answer["display_name"] == "Vic"
    assert "Owner Person" not in existing.text and "last_login" not in existing.text
    assert str(victim.user_id) not in existing.text
    # Nor does its audit trail tell the two apart.
    created = [e for e in await _audit(client, attacker) if e["action"] == "invitation.create"]
    assert len(created) == 2 and _shape(created[0]) == _shape(created[1])
    assert created[0]["metadata"] == created[1]["metadata"] == {}

    # The victim's account stays out of the attacker's reach.
    members = (await client.get("/v1/iam/users", headers=attacker.headers)).json()
    assert [m["email"] for m in members["items"]] == [attacker.email]
    for method, path in (
        ("GET", f"/v1/iam/users/{victim.user_id}"),
        ("POST", f"/v1/iam/users/{victim.user_id}/reset-temp-password"),
        ("POST", f"/v1/iam/users/{victim.user_id}/deactivate"),
    ):
        assert (await client.request(method, path, headers=attacker.headers)).status_code == 404, path
    updated = await _as_app(
        settings, attacker.org_id, "UPDATE users SET full_name = 'pwned' WHERE id = :u", u=victim.user_id
    )
    assert updated == 0

    # The victim's sign-in offers only their own organisation until they accept.
    plain = await login(client, victim.email, victim.password)
    assert plain.status_code == 200 and plain.json()["organization"]["slug"] == victim.org_slug
    assert (await login(client, victim.email, victim.password, attacker.org_slug)).status_code == 401
    # Their email invites them; it carries no password and changes nothing by itself.
    message = await deliver_invitation(attacker.org_id, existing.json()["id"])
    assert message is not None and message.to == victim.email
    assert "Attacker Co" in message.subject and "temporary password" not in message.body
    assert (await login(client, victim.email, victim.password)).status_code == 200
    # The link alone is nothing: accepting needs the invited account's own session.
    token = token_in(message.body)
    anonymous = await client.post("/v1/me/invitations/accept", json={"token": token})
    assert anonymous.status_code == 401
    assert (
        await client.post("/v1/me/invitations/accept", json={"token": token}, headers=attacker.headers)
    ).status_code == 400
    # The victim sees the invitation and declines it: nothing appears for them, then or later.
    mine = (await client.get("/v1/me/invitations", headers=victim.headers)).json()
    assert [(i["organization"]["name"], i["role"]) for i in mine] == [("Attacker Co", "viewer")]
    declined = await client.post(
        "/v1/me/invitations/decline", json={"invitation_id": mine[0]["id"]}, headers=victim.headers
    )
    assert declined.status_code == 204, declined.text
    assert (await client.get("/v1/me/invitations", headers=victim.headers)).json() == []
    assert (
        await client.post("/v1/me/invitations/accept", json={"token": token}, headers=victim.headers)
    ).status_code == 400
    assert (await login(client, victim.email, victim.password, attacker.org_slug)).status_code == 401
    status = (await client.get(f"/v1/iam/invitations/{existing.json()['id']}", headers=attacker.headers)).json()
    assert status["status"] == "declined"


async def test_once_accepted_the_organisation_still_cannot_change_the_account(client, settings):
    victim = await signup(client, name="Home Co")
    other = await signup(client, name="Other Co")
    joined = await join_existing(client, other, victim, "dispatcher")
    assert joined == {
        "organization": {"id": str(other.org_id), "name": "Other Co", "slug": other.org_slug},
        "role": "dispatcher",
    }
    both = await login(client, victim.email, victim.password)
    assert both.status_code == 400 and both.json()["type"] == "/problems/org-slug-required"
    assert {o["slug"] for o in both.json()["organizations"]} == {victim.org_slug, other.org_slug}
    member = (await client.get(f"/v1/iam/users/{victim.user_id}", headers=other.headers)).json()
    assert member["role"] == "dispatcher" and member["status"] == "active"
    assert not {"full_name", "last_login_at", "must_change_password"} & set(member)
    # The users row is the person's own: another organisation's scope cannot write it, and the admin
    # path (a narrowly granted function) refuses an account shared with another organisation.
    updated = await _as_app(
        settings, other.org_id, "UPDATE users SET password_hash = 'x' WHERE id = :u", u=victim.user_id
    )
    assert updated == 0
    # (The row is there and writable: by its own user.)
    own = await _as_app(
        settings,
        other.org_id,
        "UPDATE users SET full_name = full_name WHERE id = :u",
        as_user=victim.user_id,
        u=victim.user_id,
    )
    assert own == 1
    takeover = await client.post(f"/v1/iam/users/{victim.user_id}/reset-temp-password", headers=other.headers)
    assert takeover.status_code == 409 and takeover.json()["type"] == "/problems/shared-account"
    assert (await login(client, victim.email, victim.password, victim.org_slug)).status_code == 200
    # Deactivating there ends only that membership.
    assert (await client.post(f"/v1/iam/users/{victim.user_id}/deactivate", headers=other.headers)).status_code == 200
    assert (await login(client, victim.email, victim.password, other.org_slug)).status_code == 401
    assert (await login(client, victim.email, victim.password, victim.org_slug)).status_code == 200


async def test_invitations_expire_and_can_be_revoked_and_resent_and_every_step_is_audited(client, owner_engine):
    person = await signup(client, name="Person Co")
    org = await signup(client, name="Inviting Co")
    first = await invite(client, org, person.email, "finance")
    again = await client.post("/v1/iam/users", json={"email": person.email, "role": "viewer"}, headers=org.headers)
    assert again.status_code == 409 and again.json()["type"] == "/problems/invitation-pending"
    old_token = token_in((await deliver_invitation(org.org_id, first["id"])).body)  # type: ignore[union-attr]

    # Re-sending rotates the token: the old link stops working at once.
    resent = await client.post(f"/v1/iam/invitations/{first['id']}/resend", headers=org.headers)
    assert resent.status_code == 202 and resent.json()["status"] == "pending"
    stale = await client.post("/v1/me/invitations/accept", json={"token": old_token}, headers=person.headers)
    assert stale.status_code == 400 and stale.json()["type"] == "/problems/invalid-invitation"
    token = token_in((await deliver_invitation(org.org_id, first["id"])).body)  # type: ignore[union-attr]

    # Expired: listed as such, refused, and a re-send opens it again.
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE invitations SET expires_at = now() - interval '1 minute' WHERE id = :i"), {"i": first["id"]}
        )
    assert (await client.get(f"/v1/iam/invitations/{first['id']}", headers=org.headers)).json()["status"] == "expired"
    expired = await client.get("/v1/iam/invitations", params={"status": "expired"}, headers=org.headers)
    assert [i["id"] for i in expired.json()["items"]] == [first["id"]]
    assert (await client.get("/v1/me/invitations", headers=person.headers)).json() == []
    refused = await client.post("/v1/me/invitations/accept", json={"token": token}, headers=person.headers)
    assert refused.status_code == 400
    assert (await client.post(f"/v1/iam/invitations/{first['id']}/resend", headers=org.headers)).status_code == 202
    token = token_in((await deliver_invitation(org.org_id, first["id"])).body)  # type: ignore[union-attr]

    # Revoked: the link is dead and the invitation closed for good.
    revoked = await client.post(f"/v1/iam/invitations/{first['id']}/revoke", headers=org.headers)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert (
        await client.post("/v1/me/invitations/accept", json={"token": token}, headers=person.headers)
    ).status_code == 400
    closed = await client.post(f"/v1/iam/invitations/{first['id']}/resend", headers=org.headers)
    assert closed.status_code == 409 and closed.json()["type"] == "/problems/invitation-closed"
    assert await deliver_invitation(org.org_id, first["id"]) is None  # a late delivery sends nothing

    # A new invitation, accepted.
    second = await invite(client, org, person.email, "finance")
    token = token_in((await deliver_invitation(org.org_id, second["id"])).body)  # type: ignore[union-attr]
    accepted = await client.post("/v1/me/invitations/accept", json={"token": token}, headers=person.headers)
    assert accepted.status_code == 200 and accepted.json()["role"] == "finance"
    assert (
        await client.post("/v1/me/invitations/accept", json={"token": token}, headers=person.headers)
    ).status_code == 400
    assert (await login(client, person.email, person.password, org.org_slug)).json()["role"] == "finance"

    trail = [(e["action"], e["resource_id"], e["actor_user_id"]) for e in await _audit(client, org)]
    invitation_steps = [(a, r) for a, r, _ in reversed(trail) if a.startswith("invitation.")]
    assert invitation_steps == [
        ("invitation.create", first["id"]),
        ("invitation.resend", first["id"]),
        ("invitation.resend", first["id"]),
        ("invitation.revoke", first["id"]),
        ("invitation.create", second["id"]),
        ("invitation.accept", second["id"]),
    ]
    accept_actor = next(actor for a, _, actor in trail if a == "invitation.accept")
    assert accept_actor == str(person.user_id)


async def test_a_new_accounts_invitation_email_signs_it_in_once(client):
    org = await signup(client, name="Hiring Co")
    email = unique_email("hire")
    invitation = await invite(client, org, email, "worker", "Hana")
    first = await deliver_invitation(org.org_id, invitation["id"])
    assert first is not None and first.to == email
    # The broker redelivering the job sends nothing twice, and the one email's secret still works.
    assert await deliver_invitation(org.org_id, invitation["id"], again=True) is None
    new = temp_password_in(first.body)
    signed_in = await login(client, email, new)
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["organization"]["slug"] == org.org_slug and signed_in.json()["role"] == "worker"
    assert signed_in.json()["user"]["must_change_password"] is True
    listed = (await client.get(f"/v1/iam/invitations/{invitation['id']}", headers=org.headers)).json()
    assert listed["status"] == "accepted"
    # Once used, a late delivery neither mails nor resets anything.
    assert await deliver_invitation(org.org_id, invitation["id"], again=True) is None
    assert (await login(client, email, new)).status_code == 200
