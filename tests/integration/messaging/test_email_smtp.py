"""Email through a real SMTP server (aiosmtpd on loopback) that refuses with 550 and 451."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import text

from spotless.domain.messaging.actors import deliver_message
from spotless.domain.messaging.email import send_to
from spotless.domain.messaging.public import Recipient, request_message
from spotless.lib.metrics import EMAIL_JOBS
from tests.conftest import make_settings
from tests.support.factories.clients import new_client
from tests.support.factories.db import AppSessions, arrange
from tests.support.factories.identity import new_org
from tests.support.messaging import NOTICE, deliveries, job_runtime, pending_deliveries, run_deliveries
from tests.support.smtp_refusing import RefusingSmtpServer

pytestmark = pytest.mark.usefixtures("app_sessions")


async def _world(owner_engine, email: str = "ada@example.com") -> tuple[uuid.UUID, uuid.UUID]:
    async with arrange(owner_engine) as db:
        org = await new_org(db, name="Sparkle Cleaning", contact_email="office@sparkle.example")
        client = await new_client(db, org.id, name="Ada Client", email=email)
    return org.id, client.id


async def _request(app_sessions: AppSessions, org_id, client_id, key: str = "v1") -> bool:
    async with app_sessions.scoped(org_id) as session:
        return await request_message(
            session,
            org_id=org_id,
            kind=NOTICE.name,
            recipient=Recipient(kind="client", id=client_id),
            subject_type="booking",
            subject_id=uuid.UUID(int=7),
            send_key=key,
            params={"when": "Friday 9:00"},
        )


def _email_row(rows):
    [row] = [r for r in rows if r.channel == "email"]
    return row


def _counted(status: str) -> float:
    return EMAIL_JOBS.labels(job=NOTICE.name, status=status)._value.get()


async def test_a_job_delivered_twice_sends_once(owner_engine, app_sessions, refusing_smtp: RefusingSmtpServer):
    org_id, client_id = await _world(owner_engine)
    await _request(app_sessions, org_id, client_id)
    sent_before = _counted("sent")
    async with job_runtime(**refusing_smtp.env()):
        await run_deliveries(owner_engine, twice=True)
        await run_deliveries(owner_engine)  # nothing left
    assert _counted("sent") == sent_before + 1  # email_jobs_total{job,status}
    [received] = refusing_smtp.messages
    row = _email_row(await deliveries(owner_engine, org_id))
    assert row.status == "sent" and row.attempts == 1 and row.finished_at is not None
    message = received.message
    assert received.rcpt_tos == ["ada@example.com"]
    assert message["Message-ID"] == row.message_id == f"<{row.id}@spotless.test>"
    assert message["From"] == "Sparkle Cleaning <no-reply@spotless.test>"
    assert message["Reply-To"] == "office@sparkle.example"
    assert message["Subject"] == "Visit confirmed for Friday 9:00"
    assert message["List-Unsubscribe"] is None  # transactional
    assert "Your visit on Friday 9:00 is confirmed." in received.body
    html = message.get_body(preferencelist=("html",))
    assert html is not None and "<strong>Friday 9:00</strong>" in html.get_content()
    assert "Sparkle Cleaning" in html.get_content()


async def test_a_550_suppresses_the_address_and_the_next_request_never_reaches_smtp(
    owner_engine, app_sessions, refusing_smtp: RefusingSmtpServer
):
    org_id, client_id = await _world(owner_engine, "gone@example.com")
    other_org, other_client = await _world(owner_engine, "gone@example.com")
    refusing_smtp.refuse("gone@example.com", "550 5.1.1 No such user")
    await _request(app_sessions, org_id, client_id, "first")
    async with job_runtime(**refusing_smtp.env()):
        await run_deliveries(owner_engine)
        row = _email_row(await deliveries(owner_engine, org_id))
        assert row.status == "refused" and "550" in row.error
        assert refusing_smtp.rcpts == ["gone@example.com"]
        async with owner_engine.connect() as conn:
            suppressed = (
                await conn.execute(text("SELECT org_id, channel, address::text, delivery_id FROM message_suppressions"))
            ).all()
        assert suppressed == [(org_id, "email", "gone@example.com", row.id)]

        await _request(app_sessions, org_id, client_id, "second")
        await run_deliveries(owner_engine)
        second = [r for r in await deliveries(owner_engine, org_id) if r.send_key == "second" and r.channel == "email"]
        assert second[0].status == "suppressed"
        assert refusing_smtp.rcpts == ["gone@example.com"]  # not asked again

        # Suppression is per organisation: another one still tries (and learns for itself).
        await _request(app_sessions, other_org, other_client, "first")
        await run_deliveries(owner_engine)
        assert _email_row(await deliveries(owner_engine, other_org)).status == "refused"
        assert refusing_smtp.rcpts == ["gone@example.com", "gone@example.com"]


async def _backoff_passed(owner_engine) -> None:
    """The retry's time has come (rather than waiting it out)."""
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE deliveries SET not_before = now() - interval '1 second'"))


async def _enqueue_again(owner_engine) -> list:
    """The retry job the early duplicate consumed, back in the outbox (as its due run would be)."""
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE job_outbox SET sent_at = NULL WHERE id = (SELECT id FROM job_outbox"
                " WHERE actor_name = 'messaging.deliver' ORDER BY id DESC LIMIT 1)"
            )
        )
    return await pending_deliveries(owner_engine)


async def test_a_451_retries_with_backoff_then_dead_letters(
    owner_engine, app_sessions, refusing_smtp: RefusingSmtpServer
):
    org_id, client_id = await _world(owner_engine, "busy@example.com")
    refusing_smtp.refuse("busy@example.com", "451 4.7.1 Greylisted, try later")
    await _request(app_sessions, org_id, client_id)
    env = refusing_smtp.env(EMAIL_MAX_ATTEMPTS="3", EMAIL_RETRY_BACKOFF_SECONDS="60")
    async with job_runtime(**env):
        await run_deliveries(owner_engine)  # the first attempt, and the sms row (skipped)
        row = _email_row(await deliveries(owner_engine, org_id))
        assert row.status == "queued" and row.attempts == 1 and "451" in row.error
        [retry] = await pending_deliveries(owner_engine)
        assert timedelta(seconds=50) < retry.available_at - datetime.now(UTC) <= timedelta(seconds=60)
        assert await pending_deliveries(owner_engine, due_only=True) == []  # not before its backoff

        # The row holds the backoff too: its job run early (a duplicate) attempts nothing.
        assert await run_deliveries(owner_engine) == 1
        assert _email_row(await deliveries(owner_engine, org_id)).attempts == 1
        [retry] = await _enqueue_again(owner_engine)
        await _backoff_passed(owner_engine)
        await run_deliveries(owner_engine)  # the second attempt: backoff doubles
        [retry] = await pending_deliveries(owner_engine)
        assert timedelta(seconds=110) < retry.available_at - datetime.now(UTC) <= timedelta(seconds=120)
        await _backoff_passed(owner_engine)
        assert await run_deliveries(owner_engine) == 1  # the third and last
        assert await pending_deliveries(owner_engine) == []
    row = _email_row(await deliveries(owner_engine, org_id))
    assert row.status == "failed" and row.attempts == 3 and "gave up after 3 attempts" in row.error
    assert refusing_smtp.rcpts == ["busy@example.com"] * 3 and refusing_smtp.messages == []


async def test_a_worker_killed_mid_send_leaves_the_delivery_to_the_next_one(
    owner_engine, app_sessions, refusing_smtp: RefusingSmtpServer
):
    org_id, client_id = await _world(owner_engine)
    await _request(app_sessions, org_id, client_id)
    refusing_smtp.handler.data_delay = 30
    async with job_runtime(**refusing_smtp.env()):
        [email_job] = [j for j in await pending_deliveries(owner_engine)][:1]
        attempt = asyncio.create_task(deliver_message(*email_job.args))
        while not refusing_smtp.rcpts:  # it holds the row and is sending
            await asyncio.sleep(0.05)
        attempt.cancel()  # the worker dies: its transaction is rolled back
        with contextlib.suppress(asyncio.CancelledError):
            await attempt
        row = _email_row(await deliveries(owner_engine, org_id))
        assert row.status == "queued" and row.attempts == 0  # nothing recorded, the lock released
        refusing_smtp.handler.data_delay = 0
        await deliver_message(*email_job.args)  # the redelivery (the sweep, Dramatiq's requeue)
    row = _email_row(await deliveries(owner_engine, org_id))
    assert row.status == "sent" and row.attempts == 1
    # Had the killed attempt's DATA gone through after all, the far end holds two copies with one
    # Message-ID (at least once; receivers drop the duplicate).
    assert {m.message["Message-ID"] for m in refusing_smtp.messages} == {row.message_id}


async def test_the_message_id_is_the_same_on_a_retry(owner_engine, app_sessions, refusing_smtp: RefusingSmtpServer):
    org_id, client_id = await _world(owner_engine)
    refusing_smtp.handler.data_refusals = 1
    await _request(app_sessions, org_id, client_id)
    async with job_runtime(**refusing_smtp.env(EMAIL_RETRY_BACKOFF_SECONDS="0")):
        await run_deliveries(owner_engine)
        await run_deliveries(owner_engine)
    [received] = refusing_smtp.messages
    row = _email_row(await deliveries(owner_engine, org_id))
    assert row.status == "sent" and row.attempts == 2
    assert refusing_smtp.handler.refused_message_ids == [row.message_id] == [received.message["Message-ID"]]


async def test_a_partly_refused_list_answers_per_recipient(refusing_smtp: RefusingSmtpServer):
    refusing_smtp.refuse("no@example.com", "550 5.1.1 No such user")
    refusing_smtp.refuse("later@example.com", "451 4.7.1 Try later")
    message = EmailMessage()
    message["From"] = "no-reply@spotless.test"
    message["To"] = "team"
    message["Subject"] = "Hello"
    message.set_content("Hi")
    answers = await send_to(
        make_settings(**refusing_smtp.env()).email, message, ["yes@example.com", "no@example.com", "later@example.com"]
    )
    assert {a: (v.outcome, v.code) for a, v in answers.items()} == {
        "yes@example.com": ("accepted", 250),
        "no@example.com": ("permanent", 550),
        "later@example.com": ("temporary", 451),
    }
    assert [m.rcpt_tos for m in refusing_smtp.messages] == [["yes@example.com"]]
    everyone_refused = await send_to(make_settings(**refusing_smtp.env()).email, message, ["no@example.com"])
    assert everyone_refused["no@example.com"].outcome == "permanent"


async def test_smtp_down_is_a_temporary_failure(owner_engine, app_sessions):
    org_id, client_id = await _world(owner_engine)
    await _request(app_sessions, org_id, client_id)
    async with job_runtime(EMAIL_MODE="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT="9", SMTP_TIMEOUT_SECONDS="2"):
        await run_deliveries(owner_engine)
    row = _email_row(await deliveries(owner_engine, org_id))
    assert row.status == "queued" and row.attempts == 1 and row.error.startswith("temporary:")
    assert len(await pending_deliveries(owner_engine)) == 1
