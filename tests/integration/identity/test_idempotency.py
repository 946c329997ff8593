"""Idempotency-Key on POSTs that create things (here: invitations and temporary passwords).

Adding a member answers 202 with an invitation; the person becomes a member only when they accept
it, so the effect counted here is the invitation, not a membership."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, text

from spotless.lib.idempotency import IN_FLIGHT_LEASE_SECONDS, IdempotencyKey, request_hash
from tests.support.factories import api_world, arrange, new_idempotency_key, next_weekday
from tests.support.identity import add_member, deliver_invitation, login, signup, temp_password_in, unique_email


def _json(body: dict) -> bytes:
    return json.dumps(body).encode()


async def _post(client, path: str, member, key: str, body: dict | None = None):
    headers = {**member.headers, "Idempotency-Key": key, "Content-Type": "application/json"}
    return await client.post(path, content=_json(body) if body is not None else b"", headers=headers)


async def _count(owner_engine, table: str, org_id) -> int:
    async with owner_engine.connect() as conn:
        return (await conn.execute(text(f"SELECT count(*) FROM {table} WHERE org_id = :o"), {"o": org_id})).scalar_one()


async def _invitations(owner_engine, org_id) -> int:
    return await _count(owner_engine, "invitations", org_id)


async def test_same_key_and_body_replays_the_first_response(client, owner_engine):
    owner = await signup(client)
    body = {"email": unique_email(), "role": "dispatcher"}
    first = await _post(client, "/v1/iam/users", owner, "create-1", body)
    assert first.status_code == 202, first.text
    again = await _post(client, "/v1/iam/users", owner, "create-1", body)
    assert again.status_code == 202
    assert again.json() == first.json()  # the same invitation, not a second one
    assert again.headers["idempotent-replayed"] == "true"
    assert await _invitations(owner_engine, owner.org_id) == 1
    assert await _count(owner_engine, "memberships", owner.org_id) == 1  # a member only once they accept
    audit = (await client.get("/v1/admin/audit", params={"action": "invitation.create"}, headers=owner.headers)).json()
    assert len(audit["items"]) == 1


async def test_same_key_with_another_body_is_a_conflict(client):
    owner = await signup(client)
    await _post(client, "/v1/iam/users", owner, "k", {"email": unique_email(), "role": "viewer"})
    other = await _post(client, "/v1/iam/users", owner, "k", {"email": unique_email(), "role": "viewer"})
    assert other.status_code == 409
    assert other.json()["type"] == "/problems/idempotency-key-mismatch"


async def test_a_key_still_in_flight_is_a_conflict_with_retry_after(client, owner_engine):
    owner = await signup(client)
    body = {"email": unique_email(), "role": "viewer"}
    digest = request_hash("POST", "/v1/iam/users", _json(body))

    async def claim(locked_at: datetime) -> None:
        async with arrange(owner_engine) as db:
            await db.execute(delete(IdempotencyKey))
            await new_idempotency_key(
                db,
                owner.org_id,
                owner.user_id,
                key="busy",
                path="/v1/iam/users",
                request_hash=digest,
                locked_at=locked_at,
            )

    await claim(datetime.now(UTC))
    busy = await _post(client, "/v1/iam/users", owner, "busy", body)
    assert busy.status_code == 409
    assert busy.json()["type"] == "/problems/idempotency-key-in-flight"
    assert int(busy.headers["retry-after"]) >= 1
    # A claim abandoned by a crashed process is taken over once its lease has passed.
    await claim(datetime.now(UTC) - timedelta(seconds=IN_FLIGHT_LEASE_SECONDS + 5))
    taken_over = await _post(client, "/v1/iam/users", owner, "busy", body)
    assert taken_over.status_code == 202, taken_over.text


async def test_concurrent_retries_create_exactly_one_invitation(client, owner_engine):
    owner = await signup(client)
    body = {"email": unique_email(), "role": "viewer"}
    responses = await asyncio.gather(*(_post(client, "/v1/iam/users", owner, "race", body) for _ in range(5)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(202) >= 1 and set(statuses) <= {202, 409}, statuses
    created = {r.json()["id"] for r in responses if r.status_code == 202}
    assert len(created) == 1
    assert await _invitations(owner_engine, owner.org_id) == 1


async def test_a_failed_request_releases_its_key(client, owner_engine):
    owner = await signup(client)
    admin = await add_member(client, owner, "admin")
    body = {"email": unique_email(), "role": "owner"}
    refused = await _post(client, "/v1/iam/users", admin, "retry-me", body)
    assert refused.status_code == 403
    async with owner_engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM idempotency_keys"))).scalar_one() == 0
    # Not replayed: the request runs again (and is refused again, for the same reason).
    assert (await _post(client, "/v1/iam/users", admin, "retry-me", body)).status_code == 403


async def test_keys_belong_to_one_user(client):
    owner = await signup(client)
    admin = await add_member(client, owner, "admin")
    body = {"email": unique_email(), "role": "viewer"}
    first = await _post(client, "/v1/iam/users", owner, "shared-key", body)
    second = await _post(client, "/v1/iam/users", admin, "shared-key", body)
    assert first.status_code == 202
    # The admin's own request ran (it was not the owner's response replayed): the email is already invited.
    assert second.status_code == 409 and second.json()["type"] == "/problems/invitation-pending"


async def test_temp_password_reset_is_idempotent(client):
    owner = await signup(client)
    member = await add_member(client, owner, "viewer")
    path = f"/v1/iam/users/{member.user_id}/reset-temp-password"
    first = await _post(client, path, owner, "reset-1")
    again = await _post(client, path, owner, "reset-1")
    assert first.status_code == again.status_code == 200
    assert first.json()["temp_password"] and again.json()["temp_password"] is None  # shown once only
    assert again.headers["idempotent-withheld"] == "temp_password"
    assert again.json()["user_id"] == first.json()["user_id"]
    audit = (
        await client.get("/v1/admin/audit", params={"action": "user.reset_temp_password"}, headers=owner.headers)
    ).json()
    assert len(audit["items"]) == 1
    # The member's sessions ended with the first reset, not later.
    assert (await client.get("/v1/auth/me", headers=member.headers)).status_code == 401
    # The replay did not reset again: the password the first answer showed still signs in.
    signed_in = await login(client, member.email, first.json()["temp_password"], owner.org_slug)
    assert signed_in.status_code == 200, signed_in.text


async def test_a_malformed_key_is_400(client):
    owner = await signup(client)
    response = await _post(client, "/v1/iam/users", owner, "x" * 300, {"email": unique_email(), "role": "viewer"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"


# --- secrets are shown once, never recorded or replayed ----------------------------------------


async def _recorded_bodies(owner_engine) -> list[bytes]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(text("SELECT response_body FROM idempotency_keys WHERE response_body IS NOT NULL"))
        return [bytes(r[0]) for r in rows]


async def test_a_temporary_password_is_never_recorded_nor_replayed(client, owner_engine):
    owner = await signup(client)
    email = unique_email()
    body = {"email": email, "role": "viewer"}
    first = await _post(client, "/v1/iam/users", owner, "secret-1", body)
    assert first.status_code == 202, first.text
    assert "temp_password" not in first.json()  # the invitation's answer carries no secret at all
    # The new account's temporary password is minted by the delivery job, into the email only.
    message = await deliver_invitation(owner.org_id, first.json()["id"])
    assert message is not None
    secret = temp_password_in(message.body)
    bodies = await _recorded_bodies(owner_engine)
    assert bodies and all(secret.encode() not in b for b in bodies)
    again = await _post(client, "/v1/iam/users", owner, "secret-1", body)
    assert again.status_code == 202
    assert again.json() == first.json()
    assert secret not in again.text
    # It is the real password (so the scans above looked for the right thing): signing in with it accepts.
    joined = await login(client, email, secret, owner.org_slug)
    assert joined.status_code == 200, joined.text

    member_id = joined.json()["user"]["id"]
    reset = await _post(client, f"/v1/iam/users/{member_id}/reset-temp-password", owner, "secret-2")
    reset_secret = reset.json()["temp_password"]
    assert reset.status_code == 200 and reset_secret
    assert all(reset_secret.encode() not in b for b in await _recorded_bodies(owner_engine))
    replay = await _post(client, f"/v1/iam/users/{member_id}/reset-temp-password", owner, "secret-2")
    assert replay.status_code == 200 and replay.json()["temp_password"] is None
    assert replay.headers["idempotent-withheld"] == "temp_password"
    assert reset_secret not in replay.text


# --- fenced leases: a slow request cannot run twice, nor free its successor's claim -----------


async def _waiting_on_locks(owner_engine) -> list[int]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = 'spotless-api' AND wait_event_type = 'Lock' ORDER BY query_start"
            )
        )
        return [r[0] for r in rows]


async def _until(predicate, what: str) -> None:
    for _ in range(200):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def _expire_lease(owner_engine) -> None:
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE idempotency_keys SET locked_at = now() - make_interval(secs => :s)"),
            {"s": IN_FLIGHT_LEASE_SECONDS * 2},
        )


async def _bookings(owner_engine, org_id) -> int:
    async with owner_engine.connect() as conn:
        return (await conn.execute(text("SELECT count(*) FROM booking WHERE org_id = :o"), {"o": org_id})).scalar_one()


async def _two_requests_stalled_on_one_key(client, owner_engine, holder):
    """Request A claims the key and stalls (the test holds a lock on `booking`); its lease then
    expires and request B, a retry with the same key, takes the claim over and stalls too."""
    owner = await signup(client)
    world = await api_world(client, owner, workers=0)
    body = world.booking(next_weekday(2, weeks_ahead=2), 10, workers=[])
    await holder.execute(text("LOCK TABLE booking IN EXCLUSIVE MODE"))
    first = asyncio.create_task(_post(client, "/v1/bookings", owner, "slow", body))
    await _until(lambda: _stalled(owner_engine, 1), "the first request to stall")
    await _expire_lease(owner_engine)
    second = asyncio.create_task(_post(client, "/v1/bookings", owner, "slow", body))
    await _until(lambda: _stalled(owner_engine, 2), "the retry to take over and stall")
    return owner, body, first, second


async def _stalled(owner_engine, n: int) -> bool:
    return len(await _waiting_on_locks(owner_engine)) >= n


async def test_a_request_slower_than_its_lease_does_not_run_twice(client, owner_engine):
    async with owner_engine.connect() as holder:
        owner, body, first, second = await _two_requests_stalled_on_one_key(client, owner_engine, holder)
        await holder.commit()  # both go on
        slow, retry = await first, await second
    assert retry.status_code == 201, retry.text
    assert slow.status_code == 409, slow.text
    assert slow.json()["type"] == "/problems/idempotency-key-superseded"
    assert await _bookings(owner_engine, owner.org_id) == 1  # the work happened once
    replay = await _post(client, "/v1/bookings", owner, "slow", body)
    assert replay.status_code == 201 and replay.json()["id"] == retry.json()["id"]


async def test_a_late_failure_does_not_free_the_new_owners_claim(client, owner_engine):
    async with owner_engine.connect() as holder:
        owner, body, first, second = await _two_requests_stalled_on_one_key(client, owner_engine, holder)
        oldest = (await _waiting_on_locks(owner_engine))[0]
        async with owner_engine.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": oldest})
        failed = await first  # the first request fails late (its connection died)
        assert failed.status_code == 503, failed.text
        async with owner_engine.connect() as conn:
            claim = (await conn.execute(text("SELECT status, claim_generation FROM idempotency_keys"))).one()
        assert tuple(claim) == ("in_flight", 1)  # still the retry's claim
        busy = await _post(client, "/v1/bookings", owner, "slow", body)
        assert busy.status_code == 409 and busy.json()["type"] == "/problems/idempotency-key-in-flight"
        await holder.commit()
        retry = await second
    assert retry.status_code == 201, retry.text
    assert await _bookings(owner_engine, owner.org_id) == 1
