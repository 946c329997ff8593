"""Onboarding (invitations) and member administration under /v1/iam/users."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from spotless.db.engine import create_engine
from tests.support.identity import (
    DEFAULT_PASSWORD,
    add_member,
    deliver_invitation,
    join_existing,
    login,
    signup,
    temp_password_in,
    unique_email,
)


async def _audit(client, owner, **params) -> list[dict]:
    response = await client.get("/v1/admin/audit", params=params, headers=owner.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_adding_a_member_is_an_invitation_accepted_by_the_first_sign_in(client):
    owner = await signup(client)
    email = unique_email("cleaner")
    created = await client.post(
        "/v1/iam/users", json={"email": email.upper(), "role": "worker", "full_name": "Cleo"}, headers=owner.headers
    )
    assert created.status_code == 202, created.text
    body = created.json()
    assert body["email"] == email  # stored normalised
    assert body["role"] == "worker" and body["status"] == "pending" and body["display_name"] == "Cleo"
    assert "temp_password" not in created.text
    # Not a member until they sign in with the temporary password the invitation email carries.
    assert (await client.get("/v1/iam/users", headers=owner.headers)).json()["total"] == 1
    listed = (await client.get("/v1/iam/invitations", headers=owner.headers)).json()
    assert [i["id"] for i in listed["items"]] == [body["id"]]
    message = await deliver_invitation(owner.org_id, body["id"])
    assert message is not None and message.to == email
    signed_in = await login(client, email, temp_password_in(message.body), owner.org_slug)
    assert signed_in.status_code == 200, signed_in.text
    listing = await client.get("/v1/iam/users", params={"limit": 1}, headers=owner.headers)
    assert listing.status_code == 200
    page = listing.json()
    assert page["total"] == 2 and page["limit"] == 1 and len(page["items"]) == 1
    member_id = signed_in.json()["user"]["id"]
    one = await client.get(f"/v1/iam/users/{member_id}", headers=owner.headers)
    assert one.status_code == 200, one.text
    assert one.json()["display_name"] == "Cleo" and one.json()["status"] == "active"
    # The organisation sees its own view of the member, never the account's.
    assert not {"full_name", "last_login_at", "must_change_password", "temp_password"} & set(one.json())
    accepted = await client.get(f"/v1/iam/invitations/{body['id']}", headers=owner.headers)
    assert accepted.json()["status"] == "accepted"
    duplicate = await client.post("/v1/iam/users", json={"email": email, "role": "viewer"}, headers=owner.headers)
    assert duplicate.status_code == 409 and duplicate.json()["type"] == "/problems/email-taken"


async def test_only_user_managers_administer_members(client):
    owner = await signup(client)
    dispatcher = await add_member(client, owner, "dispatcher")
    for method, path in (("GET", "/v1/iam/users"), ("POST", f"/v1/iam/users/{owner.user_id}/logout")):
        response = await client.request(method, path, headers=dispatcher.headers)
        assert response.status_code == 403, (method, path)
        assert response.json()["type"] == "/problems/forbidden"


async def test_a_role_change_applies_on_the_next_request(client):
    owner = await signup(client)
    admin = await add_member(client, owner, "admin")
    assert (await client.get("/v1/iam/users", headers=admin.headers)).status_code == 200
    demoted = await client.post(f"/v1/iam/users/{admin.user_id}/role", json={"role": "viewer"}, headers=owner.headers)
    assert demoted.status_code == 200 and demoted.json()["role"] == "viewer"
    assert (await client.get("/v1/iam/users", headers=admin.headers)).status_code == 403
    me = (await client.get("/v1/auth/me", headers=admin.headers)).json()
    assert me["role"] == "viewer" and "users.manage" not in me["permissions"]


async def test_nobody_grants_or_manages_above_their_own_role(client):
    owner = await signup(client)
    admin = await add_member(client, owner, "admin")
    above = await client.post("/v1/iam/users", json={"email": unique_email(), "role": "owner"}, headers=admin.headers)
    assert above.status_code == 403 and above.json()["type"] == "/problems/role-above-own"
    promote = await client.post(f"/v1/iam/users/{admin.user_id}/role", json={"role": "owner"}, headers=admin.headers)
    assert promote.status_code == 403 and promote.json()["type"] == "/problems/role-above-own"
    for action in ("deactivate", "logout", "reset-temp-password"):
        response = await client.post(f"/v1/iam/users/{owner.user_id}/{action}", headers=admin.headers)
        assert response.status_code == 403, action
        assert response.json()["type"] == "/problems/role-above-own"
    # Up to their own rank is fine.
    peer = await client.post("/v1/iam/users", json={"email": unique_email(), "role": "admin"}, headers=admin.headers)
    assert peer.status_code == 202


async def test_the_last_owner_cannot_be_demoted_or_deactivated(client):
    owner = await signup(client)
    for response in (
        await client.post(f"/v1/iam/users/{owner.user_id}/role", json={"role": "admin"}, headers=owner.headers),
        await client.post(f"/v1/iam/users/{owner.user_id}/deactivate", headers=owner.headers),
    ):
        assert response.status_code == 409, response.text
        assert response.json()["type"] == "/problems/last-owner"
    second = await add_member(client, owner, "owner")
    stepped_down = await client.post(
        f"/v1/iam/users/{owner.user_id}/role", json={"role": "admin"}, headers=owner.headers
    )
    assert stepped_down.status_code == 200
    last = await client.post(f"/v1/iam/users/{second.user_id}/deactivate", headers=second.headers)
    assert last.status_code == 409 and last.json()["type"] == "/problems/last-owner"


async def test_the_database_also_keeps_an_owner(client, settings):
    """Whatever code path runs, the deferred trigger refuses to commit an ownerless organisation."""
    owner = await signup(client)
    engine = create_engine(settings.database, application_name="owner-trigger-test")
    try:
        with pytest.raises(DBAPIError, match="without an active owner"):
            async with engine.connect() as conn, conn.begin():
                await conn.execute(text("SELECT set_config('app.org_id', :o, true)"), {"o": str(owner.org_id)})
                await conn.execute(text("UPDATE memberships SET role = 'admin' WHERE org_id = :o"), {"o": owner.org_id})
    finally:
        await engine.dispose()


async def test_deactivation_refuses_the_member_at_once_and_blocks_sign_in(client):
    owner = await signup(client)
    member = await add_member(client, owner, "dispatcher")
    response = await client.post(f"/v1/iam/users/{member.user_id}/deactivate", headers=owner.headers)
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert (await client.get("/v1/auth/me", headers=member.headers)).status_code == 401
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": member.refresh_token})).status_code == 401
    assert (await login(client, member.email, member.password)).status_code == 401
    reactivated = await client.post(f"/v1/iam/users/{member.user_id}/activate", headers=owner.headers)
    assert reactivated.status_code == 200 and reactivated.json()["is_active"] is True
    assert (await login(client, member.email, member.password)).status_code == 200
    # The old session stays dead.
    assert (await client.get("/v1/auth/me", headers=member.headers)).status_code == 401


async def test_admin_logout_revokes_every_session_of_the_member(client):
    owner = await signup(client)
    member = await add_member(client, owner, "finance")
    second = (await login(client, member.email, member.password)).json()
    response = await client.post(f"/v1/iam/users/{member.user_id}/logout", headers=owner.headers)
    assert response.status_code == 200
    assert response.json()["revoked_sessions"] == 2
    assert (await client.get("/v1/auth/me", headers=member.headers)).status_code == 401
    headers = {"Authorization": f"Bearer {second['access_token']}"}
    assert (await client.get("/v1/auth/me", headers=headers)).status_code == 401
    assert (await client.get("/v1/auth/me", headers=owner.headers)).status_code == 200


async def test_reset_temp_password(client):
    owner = await signup(client)
    member = await add_member(client, owner, "viewer")
    response = await client.post(f"/v1/iam/users/{member.user_id}/reset-temp-password", headers=owner.headers)
    assert response.status_code == 200, response.text
    temp = response.json()["temp_password"]
    assert (await client.get("/v1/auth/me", headers=member.headers)).status_code == 401
    assert (await login(client, member.email, member.password)).status_code == 401
    session = (await login(client, member.email, temp)).json()
    assert session["user"]["must_change_password"] is True


async def test_an_existing_account_joins_by_accepting_with_its_own_password(client):
    """An admin of one organisation can invite a person who already has an account, but never
    reset that person's password: it also opens their other organisations."""
    first = await signup(client, name="First")
    second = await signup(client, name="Second")
    joined = await join_existing(client, second, first, "dispatcher")
    assert joined["organization"]["slug"] == second.org_slug and joined["role"] == "dispatcher"
    signed_in = await login(client, first.email, first.password, org_slug=second.org_slug)
    assert signed_in.status_code == 200 and signed_in.json()["role"] == "dispatcher"
    takeover = await client.post(f"/v1/iam/users/{first.user_id}/reset-temp-password", headers=second.headers)
    assert takeover.status_code == 409 and takeover.json()["type"] == "/problems/shared-account"
    assert (await login(client, first.email, first.password, org_slug=first.org_slug)).status_code == 200


async def test_privileged_changes_are_audited_with_who_what_and_where(client):
    owner = await signup(client)
    member = await add_member(client, owner, "dispatcher")
    await client.post(
        f"/v1/iam/users/{member.user_id}/role",
        json={"role": "finance"},
        headers={**owner.headers, "X-Request-ID": "req-role-change-1"},
    )
    await client.post(f"/v1/iam/users/{member.user_id}/deactivate", headers=owner.headers)
    entries = await _audit(client, owner)
    actions = [e["action"] for e in entries]
    assert actions[:3] == ["user.deactivate", "user.role_change", "user.password_change"]
    assert "invitation.create" in actions and "invitation.accept" in actions and "organization.create" in actions
    role_change = next(e for e in entries if e["action"] == "user.role_change")
    assert role_change["actor_user_id"] == str(owner.user_id)
    assert role_change["actor_email"] == owner.email and role_change["admin_role"] == "owner"
    assert role_change["resource_type"] == "user" and role_change["resource_id"] == str(member.user_id)
    assert role_change["before"] == {"role": "dispatcher", "is_active": True}
    assert role_change["after"] == {"role": "finance", "is_active": True}
    assert role_change["request_id"] == "req-role-change-1"
    assert role_change["client_ip"]
    deactivate = next(e for e in entries if e["action"] == "user.deactivate")
    assert deactivate["metadata"]["revoked_sessions"] == 1


async def test_audit_listing_filters_and_permission(client):
    owner = await signup(client)
    viewer = await add_member(client, owner, "viewer")
    dispatcher = await add_member(client, owner, "dispatcher")
    await client.post(f"/v1/iam/users/{dispatcher.user_id}/logout", headers=owner.headers)
    only = await _audit(client, owner, action="user.logout")
    assert [e["resource_id"] for e in only] == [str(dispatcher.user_id)]
    by_resource = await _audit(client, owner, resource_id=str(viewer.user_id))
    assert {e["action"] for e in by_resource} == {"user.password_change"}
    by_actor = await _audit(client, owner, actor_user_id=str(viewer.user_id))
    assert [e["action"] for e in by_actor] == ["user.password_change", "invitation.accept"]
    page = (await client.get("/v1/admin/audit", params={"limit": 2}, headers=owner.headers)).json()
    assert page["limit"] == 2 and page["has_more"] and len(page["items"]) == 2
    rest = (await client.get("/v1/admin/audit", params={"cursor": page["next_cursor"]}, headers=owner.headers)).json()
    assert rest["items"] and not {e["id"] for e in rest["items"]} & {e["id"] for e in page["items"]}
    future = await _audit(client, owner, created_after="2100-01-01T00:00:00Z")
    assert future == []
    assert (await client.get("/v1/admin/audit", headers=viewer.headers)).status_code == 403
    # Another organisation's trail is invisible.
    other = await signup(client, name="Other")
    assert {e["action"] for e in await _audit(client, other)} == {"organization.create"}


async def test_the_app_cannot_rewrite_or_delete_audit_rows(client, settings):
    owner = await signup(client)
    engine = create_engine(settings.database, application_name="audit-immutability-test")
    try:
        for statement in ("UPDATE admin_audit_logs SET action = 'nothing'", "DELETE FROM admin_audit_logs"):
            with pytest.raises(DBAPIError, match="permission denied"):
                async with engine.connect() as conn, conn.begin():
                    await conn.execute(text("SELECT set_config('app.org_id', :o, true)"), {"o": str(owner.org_id)})
                    await conn.execute(text(statement))
    finally:
        await engine.dispose()
    assert [e["action"] for e in await _audit(client, owner)] == ["organization.create"]


async def test_member_password_is_not_weakened_by_onboarding(client):
    owner = await signup(client)
    member = await add_member(client, owner, "worker", password=DEFAULT_PASSWORD)
    me = (await client.get("/v1/auth/me", headers=member.headers)).json()
    assert me["user"]["must_change_password"] is False
    assert me["permissions"] == ["bookings.status", "bookings.view", "core.view"]


async def _jobs(owner_engine, actor: str) -> list[list]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(text("SELECT args FROM job_outbox WHERE actor_name = :a ORDER BY id"), {"a": actor})
        return [r[0] for r in rows]


async def test_by_default_a_reset_temp_password_is_shown_once_and_the_email_only_notifies(
    client, owner_engine, smtp_server
):
    from spotless.domain.messaging.actors import deliver_message
    from spotless.lib.jobs.runtime import build_runtime, set_runtime
    from tests.conftest import make_settings

    owner = await signup(client, name="Notify Co")
    member = await add_member(client, owner, "worker")
    response = await client.post(f"/v1/iam/users/{member.user_id}/reset-temp-password", headers=owner.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["delivery"] == "response" and body["temp_password"]
    # The notice goes through messaging's one delivery path: a delivery row and its job, no text at rest.
    async with owner_engine.connect() as conn:
        [delivery] = (
            await conn.execute(
                text("SELECT id, recipient_id, status FROM deliveries WHERE kind = 'identity.temp_password_reset'")
            )
        ).all()
    assert delivery.recipient_id == member.user_id and delivery.status == "queued"
    org_id, delivery_id = (await _jobs(owner_engine, "messaging.deliver"))[-1]  # after the invitation's
    assert delivery_id == str(delivery.id)
    runtime = build_runtime(make_settings(**smtp_server.env()), application_name="iam-notice-test")
    set_runtime(runtime)
    try:
        await deliver_message(org_id, delivery_id)
    finally:
        set_runtime(None)
        await runtime.close()
    [reset] = smtp_server.messages
    assert reset.rcpt_tos == [member.email] and "signed you out" in reset.body
    assert reset.message["Subject"] == "Your Notify Co password was reset"
    assert body["temp_password"] not in reset.body
    assert (await login(client, member.email, body["temp_password"])).status_code == 200


async def test_email_temp_passwords_mails_one_minted_at_send_time(owner_engine, smtp_server):
    from spotless.app import create_app
    from spotless.domain.messaging.actors import deliver_message
    from spotless.lib.jobs.runtime import build_runtime, set_runtime
    from tests.conftest import make_settings
    from tests.support.client import app_client

    settings = make_settings(EMAIL_TEMP_PASSWORDS="true", **smtp_server.env())
    async with app_client(create_app(settings)) as client:
        owner = await signup(client)
        member = await add_member(client, owner, "viewer")
        smtp_server.messages.clear()
        response = await client.post(f"/v1/iam/users/{member.user_id}/reset-temp-password", headers=owner.headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"user_id": str(member.user_id), "delivery": "email", "temp_password": None}
        # The old password stopped at once; the reset's message goes through messaging's one delivery
        # path, its row and job holding ids and a timestamp only.
        assert (await login(client, member.email, member.password)).status_code == 401
        async with owner_engine.connect() as conn:
            [delivery] = (
                await conn.execute(
                    text("SELECT id, params FROM deliveries WHERE kind = 'identity.temp_password_reset'")
                )
            ).all()
        assert delivery.params["emailed"] is True and set(delivery.params) == {"user_id", "changed_at", "emailed"}
        org_id, delivery_id = (await _jobs(owner_engine, "messaging.deliver"))[-1]
        assert delivery_id == str(delivery.id)
        runtime = build_runtime(settings, application_name="temp-password-test")
        set_runtime(runtime)
        try:
            for _ in range(2):  # the job delivered twice: one email
                await deliver_message(org_id, delivery_id)
        finally:
            set_runtime(None)
            await runtime.close()
        [mail] = [m for m in smtp_server.messages if m.rcpt_tos == [member.email]]
        temp = temp_password_in(mail.body)
        async with owner_engine.connect() as conn:
            stored = (
                await conn.execute(text("SELECT summary FROM deliveries WHERE id = :d"), {"d": delivery.id})
            ).scalar_one()
        assert temp not in (stored or "")
        assert (await login(client, member.email, temp)).status_code == 200
