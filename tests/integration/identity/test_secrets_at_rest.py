"""No secret rests in plain form: after each flow that mails or shows a secret (reset link,
invitation token, temporary passwords), the secret is nowhere in `job_outbox`, in Redis (every key
of the test database: Dramatiq's queues, messages and dead letters included) or in
`idempotency_keys` or `deliveries`. Jobs carry ids; the job mints the secret when it sends."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import text

from spotless.app import create_app
from spotless.domain.messaging.actors import deliver_message
from spotless.lib.jobs.broker import build_broker
from spotless.lib.jobs.dlq import list_dead_letters
from spotless.lib.jobs.runtime import build_runtime, set_runtime
from tests.conftest import make_settings
from tests.support.client import app_client
from tests.support.identity import add_member, login, signup, temp_password_in, token_in, unique_email
from tests.support.smtp import SmtpServer

JOBS = {
    "messaging.deliver": deliver_message,  # password resets, invitations and temporary passwords among its kinds
}


async def _redis_dump(redis: Redis) -> bytes:
    """Every value of every key in the test's Redis database."""
    chunks: list[bytes] = []
    async for key in redis.scan_iter(count=500):
        chunks.append(key)
        kind = (await redis.type(key)).decode()
        if kind == "string":
            chunks.append(await redis.get(key) or b"")
        elif kind == "list":
            chunks.extend(await redis.lrange(key, 0, -1))
        elif kind == "hash":
            for field, value in (await redis.hgetall(key)).items():
                chunks += [field, value]
        elif kind == "set":
            chunks.extend(await redis.smembers(key))
        elif kind == "zset":
            chunks.extend(await redis.zrange(key, 0, -1))
        elif kind == "stream":
            chunks.append(repr(await redis.xrange(key)).encode())
    return b"\n".join(chunks)


async def _dead_letter_everything(settings: Any) -> list[dict[str, Any]]:
    """Fail every queued message into Dramatiq's dead-letter set, as exhausted retries would, and
    return what `just dlq` lists."""

    def nack_all() -> list[dict[str, Any]]:
        broker = build_broker(settings)
        try:
            for queue in ("email", "default"):
                consumer = broker.consume(queue, prefetch=50, timeout=200)
                try:
                    while (message := next(consumer)) is not None:
                        consumer.nack(message)
                finally:
                    consumer.close()
            return list_dead_letters(broker)
        finally:
            broker.close()

    return await asyncio.to_thread(nack_all)


async def _assert_nowhere(owner_engine, redis: Redis, *secrets: str) -> None:
    async with owner_engine.connect() as conn:
        outbox = (await conn.execute(text("SELECT string_agg(t::text, E'\\n') FROM job_outbox t"))).scalar() or ""
        idempotency = (
            await conn.execute(text("SELECT string_agg(t::text, E'\\n') FROM idempotency_keys t"))
        ).scalar() or ""
        deliveries = (await conn.execute(text("SELECT string_agg(t::text, E'\\n') FROM deliveries t"))).scalar() or ""
        bodies = b"".join(r[0] or b"" for r in await conn.execute(text("SELECT response_body FROM idempotency_keys")))
    dump = await _redis_dump(redis)
    for secret in secrets:
        assert secret and len(secret) >= 12
        assert secret not in outbox, "secret in job_outbox"
        assert secret not in deliveries, "secret in deliveries"
        assert secret not in idempotency and secret.encode() not in bodies, "secret in idempotency_keys"
        assert secret.encode() not in dump, "secret in Redis"


async def _run_jobs(owner_engine, settings: Any) -> None:
    """Run every queued secret-carrying job in-process, as a worker would."""
    runtime = build_runtime(settings, application_name="secrets-test")
    set_runtime(runtime)
    try:
        async with owner_engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT actor_name, args FROM job_outbox WHERE actor_name = ANY(:names) ORDER BY id"),
                    {"names": list(JOBS)},
                )
            ).all()
        for actor, args in rows:
            await JOBS[actor](*args)
    finally:
        set_runtime(None)
        await runtime.close()


async def _settle(app) -> None:
    await app.state.relay.drain()  # the outbox rows reached the broker (Redis)


async def test_a_password_reset_link_rests_nowhere(owner_engine, redis, smtp_server: SmtpServer):
    settings = make_settings(**smtp_server.env())
    app = create_app(settings)
    async with app_client(app) as client:
        owner = await signup(client)
        assert (await client.post("/v1/auth/password-reset/request", json={"email": owner.email})).status_code == 202
        await _settle(app)
        await _run_jobs(owner_engine, settings)
        [message] = smtp_server.messages
        token = token_in(message.body)
        dead = await _dead_letter_everything(settings)
        assert any(d["actor"] == "messaging.deliver" for d in dead)
        assert token not in repr(dead)
        await _assert_nowhere(owner_engine, redis, token, token.split(".", 1)[1])
        # The link still works (only its hash was stored).
        done = await client.post(
            "/v1/auth/password-reset/confirm", json={"token": token, "new_password": "a-brand-new-secret-8"}
        )
        assert done.status_code == 204


async def test_a_new_members_temporary_password_and_invitation_token_rest_nowhere(
    owner_engine, redis, smtp_server: SmtpServer
):
    settings = make_settings(**smtp_server.env())
    app = create_app(settings)
    async with app_client(app) as client:
        owner = await signup(client)
        person = await signup(client, name="Elsewhere")
        key = {"Idempotency-Key": uuid.uuid4().hex}
        for email in (unique_email("new"), person.email):
            created = await client.post(
                "/v1/iam/users", json={"email": email, "role": "viewer"}, headers={**owner.headers, **key}
            )
            assert created.status_code == 202, created.text
            key = {"Idempotency-Key": uuid.uuid4().hex}
        await _settle(app)
        await _run_jobs(owner_engine, settings)
        new_mail, existing_mail = smtp_server.messages
        temp = temp_password_in(new_mail.body)
        token = token_in(existing_mail.body)
        dead = await _dead_letter_everything(settings)
        assert sum(d["actor"] == "messaging.deliver" for d in dead) == 2
        assert temp not in repr(dead) and token not in repr(dead)
        await _assert_nowhere(owner_engine, redis, temp, token, token.split(".", 1)[1])
        assert (await login(client, new_mail.rcpt_tos[0], temp)).status_code == 200


async def test_a_reset_temporary_password_rests_nowhere_and_is_never_replayed(owner_engine, redis):
    async with app_client(create_app(make_settings())) as client:
        owner = await signup(client)
        member = await add_member(client, owner, "viewer")
        path = f"/v1/iam/users/{member.user_id}/reset-temp-password"
        headers = {**owner.headers, "Idempotency-Key": "reset-1"}
        first = await client.post(path, headers=headers)
        again = await client.post(path, headers=headers)
        assert first.status_code == again.status_code == 200
        shown = first.json()["temp_password"]
        # The replay answers the stored response with the secret withheld: it was never stored.
        assert shown and again.json()["temp_password"] is None
        assert again.headers["idempotent-withheld"] == "temp_password"
        await _assert_nowhere(owner_engine, redis, shown)
        # The replay did not run the reset again: the password shown once still signs in.
        assert (await login(client, member.email, shown)).status_code == 200


async def test_an_emailed_reset_temporary_password_rests_nowhere(owner_engine, redis, smtp_server: SmtpServer):
    settings = make_settings(EMAIL_TEMP_PASSWORDS="true", **smtp_server.env())
    app = create_app(settings)
    async with app_client(app) as client:
        owner = await signup(client)
        member = await add_member(client, owner, "viewer")
        smtp_server.messages.clear()
        reset = await client.post(f"/v1/iam/users/{member.user_id}/reset-temp-password", headers=owner.headers)
        assert reset.status_code == 200 and reset.json()["temp_password"] is None
        await _settle(app)
        # The onboarding invitation's delivery is done already: its job, run again, sends nothing.
        await _run_jobs(owner_engine, settings)
        [message] = [m for m in smtp_server.messages if "reset" in m.message["Subject"]]
        temp = temp_password_in(message.body)
        dead = await _dead_letter_everything(settings)
        assert temp not in repr(dead)
        await _assert_nowhere(owner_engine, redis, temp)
        assert (await login(client, member.email, temp)).status_code == 200
