"""Password reset by emailed single-use token, delivered over SMTP by the jobs platform."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import text

from spotless.domain.messaging.actors import deliver_message
from tests.conftest import test_env as child_env
from tests.support.identity import login, signup
from tests.support.messaging import job_runtime
from tests.support.processes import start_worker
from tests.support.smtp import SmtpServer
from tests.support.smtp_refusing import RefusingSmtpServer

NEW_PASSWORD = "a-brand-new-secret-8"


async def _queued_emails(owner_engine) -> list:
    """The reset emails' `messaging.deliver` jobs in the outbox: ids only (the link is minted
    when the job sends)."""
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT o.args FROM job_outbox o JOIN deliveries d ON d.id = (o.args->>1)::uuid"
                " WHERE o.actor_name = 'messaging.deliver' AND d.kind = 'identity.password_reset' ORDER BY o.id"
            )
        )
        return [r[0] for r in rows]


async def _run_email_jobs(owner_engine, server: SmtpServer | RefusingSmtpServer, **env: str) -> None:
    """Run every reset job in the outbox in-process (those run before again: a redelivery), as
    a worker would, against the SMTP server."""
    async with job_runtime(**server.env(), **env):
        for args in await _queued_emails(owner_engine):
            await deliver_message(*args)


async def _stored_text(owner_engine) -> str:
    """Everything the reset left at rest: its delivery rows, its jobs, the reset token rows."""
    async with owner_engine.connect() as conn:
        parts = [
            await conn.scalar(text("SELECT coalesce(json_agg(d)::text, '') FROM deliveries d")),
            await conn.scalar(text("SELECT coalesce(json_agg(o)::text, '') FROM job_outbox o")),
            await conn.scalar(text("SELECT coalesce(json_agg(t)::text, '') FROM password_reset_tokens t")),
        ]
    return " ".join(p or "" for p in parts)


def _token(body: str) -> str:
    link = re.search(r"https?://\S+", body)
    assert link, body
    return parse_qs(urlsplit(link.group(0)).query)["token"][0]


async def test_reset_by_email_end_to_end(client, owner_engine, smtp_server: SmtpServer):
    owner = await signup(client)
    elsewhere = (await login(client, owner.email, owner.password)).json()
    response = await client.post("/v1/auth/password-reset/request", json={"email": owner.email.upper()})
    assert response.status_code == 202
    await _run_email_jobs(owner_engine, smtp_server)
    [message] = smtp_server.messages
    assert message.rcpt_tos == [owner.email]
    assert message.message["From"].endswith("<no-reply@spotless.test>")
    assert message.message["Subject"] == "Reset your Spotless password"
    token = _token(message.body)

    weak = await client.post("/v1/auth/password-reset/confirm", json={"token": token, "new_password": "password1"})
    assert weak.status_code == 400 and weak.json()["type"] == "/problems/weak-password"
    done = await client.post("/v1/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD})
    assert done.status_code == 204, done.text
    # Every session ended, the old password no longer works, the new one does.
    assert (await client.get("/v1/auth/me", headers=owner.headers)).status_code == 401
    other = {"Authorization": f"Bearer {elsewhere['access_token']}"}
    assert (await client.get("/v1/auth/me", headers=other)).status_code == 401
    assert (await login(client, owner.email, owner.password)).status_code == 401
    assert (await login(client, owner.email, NEW_PASSWORD)).status_code == 200
    # Single use.
    reused = await client.post(
        "/v1/auth/password-reset/confirm", json={"token": token, "new_password": "yet-another-9x"}
    )
    assert reused.status_code == 400 and reused.json()["type"] == "/problems/invalid-reset-token"


async def test_the_answer_is_the_same_whether_or_not_the_email_exists(client, owner_engine):
    owner = await signup(client)
    known = await client.post("/v1/auth/password-reset/request", json={"email": owner.email})
    unknown = await client.post("/v1/auth/password-reset/request", json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert len(await _queued_emails(owner_engine)) == 1  # only the real account gets mail


async def test_reset_requests_are_throttled_per_address(client, owner_engine):
    owner = await signup(client)
    for _ in range(5):
        response = await client.post("/v1/auth/password-reset/request", json={"email": owner.email})
        assert response.status_code == 202  # the same answer, throttled or not
    assert len(await _queued_emails(owner_engine)) == 3


async def test_expired_forged_and_superseded_tokens_are_refused(client, owner_engine, smtp_server: SmtpServer):
    owner = await signup(client)
    await client.post("/v1/auth/password-reset/request", json={"email": owner.email})
    await client.post("/v1/auth/password-reset/request", json={"email": owner.email})
    await _run_email_jobs(owner_engine, smtp_server)
    first, second = (_token(m.body) for m in smtp_server.messages)
    user_hex = first.split(".")[0]
    for forged in ("garbage", f"{user_hex}.not-the-secret", "0" * 32 + "." + first.split(".")[1]):
        response = await client.post(
            "/v1/auth/password-reset/confirm", json={"token": forged, "new_password": NEW_PASSWORD}
        )
        assert response.status_code == 400, forged
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE password_reset_tokens SET expires_at = now() - interval '1 minute'"))
    expired = await client.post("/v1/auth/password-reset/confirm", json={"token": second, "new_password": NEW_PASSWORD})
    assert expired.status_code == 400
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE password_reset_tokens SET expires_at = now() + interval '10 minutes'"))
    assert (
        await client.post("/v1/auth/password-reset/confirm", json={"token": second, "new_password": NEW_PASSWORD})
    ).status_code == 204
    # Using one link kills the other.
    superseded = await client.post(
        "/v1/auth/password-reset/confirm", json={"token": first, "new_password": "zz-other-pass-1"}
    )
    assert superseded.status_code == 400


async def test_a_redelivered_reset_job_sends_nothing_twice(owner_engine, client, smtp_server: SmtpServer):
    owner = await signup(client)
    await client.post("/v1/auth/password-reset/request", json={"email": owner.email})
    await _run_email_jobs(owner_engine, smtp_server)
    await _run_email_jobs(owner_engine, smtp_server)  # at-least-once delivery: a second run
    [message] = smtp_server.messages
    token = _token(message.body)
    # Nothing secret rests: not the token, not its secret half, in the delivery, job or token rows.
    stored = await _stored_text(owner_engine)
    assert token not in stored and token.split(".")[1] not in stored
    fresh = await client.post("/v1/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD})
    assert fresh.status_code == 204
    await _run_email_jobs(owner_engine, smtp_server)  # once used, a late redelivery sends nothing
    assert len(smtp_server.messages) == 1


async def test_a_retry_after_a_451_mints_a_new_link_and_the_old_one_dies(
    owner_engine, client, refusing_smtp: RefusingSmtpServer
):
    owner = await signup(client)
    await client.post("/v1/auth/password-reset/request", json={"email": owner.email})
    refusing_smtp.handler.data_refusals = 1  # the first DATA: 451, after the link was minted
    await _run_email_jobs(owner_engine, refusing_smtp, EMAIL_RETRY_BACKOFF_SECONDS="60")
    assert refusing_smtp.messages == [] and len(refusing_smtp.handler.refused_message_ids) == 1
    async with owner_engine.connect() as conn:
        row = (await conn.execute(text("SELECT status, attempts, not_before, summary FROM deliveries"))).one()
    assert row.status == "queued" and row.attempts == 1 and row.not_before is not None
    # The backoff is on the row: a duplicate job before it sends nothing.
    await _run_email_jobs(owner_engine, refusing_smtp)
    assert refusing_smtp.messages == [] and len(refusing_smtp.handler.refused_message_ids) == 1
    [refused] = refusing_smtp.handler.refused_messages
    old = _token(refused.body)
    async with owner_engine.begin() as conn:  # the backoff has passed
        await conn.execute(text("UPDATE deliveries SET not_before = now() - interval '1 second'"))
    await _run_email_jobs(owner_engine, refusing_smtp)
    [message] = refusing_smtp.messages
    token = _token(message.body)
    assert token != old  # the retry minted a new link, and the refused email's no longer works
    stale = await client.post("/v1/auth/password-reset/confirm", json={"token": old, "new_password": NEW_PASSWORD})
    assert stale.status_code == 400
    stored = await _stored_text(owner_engine)
    assert token not in stored and token.split(".")[1] not in stored
    done = await client.post("/v1/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD})
    assert done.status_code == 204
    assert (await login(client, owner.email, NEW_PASSWORD)).status_code == 200


@pytest.mark.slow
async def test_reset_email_through_a_real_worker(client, smtp_server: SmtpServer):
    """API commit -> outbox -> broker -> `dramatiq workers.worker` process -> SMTP."""
    owner = await signup(client)
    worker = start_worker(child_env(**smtp_server.env()))
    try:
        response = await client.post("/v1/auth/password-reset/request", json={"email": owner.email})
        assert response.status_code == 202
        messages = await smtp_server.wait_for(1, timeout=30)
        assert len(messages) == 1, worker.log()[-3000:]
    finally:
        worker.stop()
    token = _token(messages[0].body)
    done = await client.post("/v1/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD})
    assert done.status_code == 204
    assert (await login(client, owner.email, NEW_PASSWORD)).status_code == 200
