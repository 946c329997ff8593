"""Identity's jobs: the session-state safety net and housekeeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from spotless.domain.identity.actors import purge_expired, sync_sessions
from spotless.domain.identity.session_cache import session_key
from spotless.lib.jobs.runtime import build_runtime, set_runtime
from tests.support.factories import arrange, new_idempotency_key
from tests.support.identity import login, signup


async def _run(settings, fn, *args, **kwargs) -> None:
    runtime = build_runtime(settings, application_name="identity-jobs-test")
    set_runtime(runtime)
    try:
        await fn(*args, **kwargs)
    finally:
        set_runtime(None)
        await runtime.close()


async def test_a_revocation_redis_missed_is_published_by_the_sync_job(client, redis, settings, owner_engine):
    """A logout committed while Redis was unreachable leaves a stale 'active' entry; the job that
    the logout enqueued in the same transaction corrects it."""
    owner = await signup(client)
    me = (await client.get("/v1/auth/me", headers=owner.headers)).json()
    key = session_key(settings.jobs.namespace, me["session_id"])
    async with owner_engine.begin() as conn:  # the revocation as it landed in Postgres...
        await conn.execute(
            text("UPDATE auth_sessions SET revoked_at = now(), revoked_reason = 'logout' WHERE id = :id"),
            {"id": me["session_id"]},
        )
    assert (await redis.get(key)).startswith(b"a|")  # ...while Redis still says active
    await _run(settings, sync_sessions, str(owner.org_id), str(owner.user_id))
    assert await redis.get(key) == b"r"
    assert (await client.get("/v1/auth/me", headers=owner.headers)).status_code == 401


async def test_session_changes_enqueue_the_sync_job_in_their_transaction(client, owner_engine):
    owner = await signup(client)
    await client.post("/v1/auth/logout", headers=owner.headers)
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(text("SELECT args FROM job_outbox WHERE actor_name = 'identity.sync_sessions'"))
        ).all()
    assert [r[0] for r in rows] == [[str(owner.org_id), str(owner.user_id)]]


async def test_purge_drops_expired_sessions_tokens_and_idempotency_records(client, settings, owner_engine):
    owner = await signup(client)
    await login(client, owner.email, owner.password)
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE auth_sessions SET expires_at = now() - interval '2 days'"))
        await conn.execute(text("UPDATE refresh_tokens SET expires_at = now() - interval '2 days'"))
    async with arrange(owner_engine) as db:
        await new_idempotency_key(
            db,
            owner.org_id,
            owner.user_id,
            key="old",
            path="/x",
            status="done",
            created_at=datetime.now(UTC) - timedelta(days=2),
        )
    await _run(settings, purge_expired)
    async with owner_engine.connect() as conn:
        for table in ("auth_sessions", "refresh_tokens", "idempotency_keys"):
            assert (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() == 0, table
        # The organisation and its people are untouched.
        assert (await conn.execute(text("SELECT count(*) FROM memberships"))).scalar_one() == 1
