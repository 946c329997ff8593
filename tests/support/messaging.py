"""Message kinds for messaging's own tests, and running delivery jobs in-process as a worker would."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from spotless.domain.messaging.actors import deliver_message
from spotless.domain.messaging.delivery import DeadLettered
from spotless.domain.messaging.public import MessageKind, register_kind
from spotless.lib.jobs.runtime import JobRuntime, build_runtime, installed_runtime, set_runtime

TEMPLATES = Path(__file__).parent / "messaging_templates"
CONTEXT_CALLS: list[Mapping[str, Any]] = []


async def _notice_context(session: AsyncSession, org_id: uuid.UUID, params: Mapping[str, Any]) -> dict[str, Any] | None:
    CONTEXT_CALLS.append(params)
    if params.get("cancelled"):
        return None  # e.g. a reminder for a visit cancelled since
    if params.get("explode"):
        raise RuntimeError("the context builder failed")
    return {"visit": {"when": params.get("when", "Monday 9:00")}}


def _notice_sample() -> dict[str, Any]:
    return {"visit": {"when": "Tuesday 10:00"}, "recipient": {"name": "Ada Client"}}


async def _digest_context(session: AsyncSession, org_id: uuid.UUID, params: Mapping[str, Any]) -> dict[str, Any]:
    return {"month": params.get("month", "March")}


def _digest_sample() -> dict[str, Any]:
    return {"month": "March", "recipient": {"name": "Ada Client"}}


NOTICE = register_kind(
    MessageKind(
        name="test.notice",
        audience="client",
        transactional=True,
        channels=("email", "sms"),
        template="test_notice",
        template_dir=TEMPLATES,
        build_context=_notice_context,
        sample_context=_notice_sample,
    )
)
# A kind for workers (tomorrow's jobs, say), worded as the notice.
AGENDA = register_kind(
    MessageKind(
        name="test.agenda",
        audience="worker",
        transactional=True,
        channels=("email", "sms"),
        template="test_notice",
        template_dir=TEMPLATES,
        build_context=_notice_context,
        sample_context=_notice_sample,
    )
)
DIGEST = register_kind(
    MessageKind(
        name="test.digest",
        audience="client",
        transactional=False,
        channels=("email",),
        template="test_digest",
        template_dir=TEMPLATES,
        build_context=_digest_context,
        sample_context=_digest_sample,
    )
)

# The office's digest (to members): one-click unsubscribe applies to them too.
OFFICE_DIGEST = register_kind(
    MessageKind(
        name="test.office_digest",
        audience="office",
        transactional=False,
        channels=("email",),
        template="test_digest",
        template_dir=TEMPLATES,
        build_context=_digest_context,
        sample_context=_digest_sample,
    )
)


@asynccontextmanager
async def job_runtime(**env: str) -> AsyncIterator[JobRuntime]:
    """The jobs' runtime with these settings (e.g. an SMTP server's env), as a worker has it."""
    from tests.conftest import make_settings  # conftest imports the factories, which import this module

    previous = installed_runtime()  # a test's own runtime (its fixture's) comes back afterwards
    runtime = build_runtime(make_settings(**env), application_name="spotless-tests-messaging")
    set_runtime(runtime)
    try:
        yield runtime
    finally:
        set_runtime(previous)
        await runtime.close()


async def pending_deliveries(owner_engine: AsyncEngine, *, due_only: bool = False) -> list[Any]:
    due = " AND available_at <= now()" if due_only else ""
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT id, args, available_at FROM job_outbox"
                f" WHERE actor_name = 'messaging.deliver' AND sent_at IS NULL{due} ORDER BY id"
            )
        )
        return list(rows)


async def run_deliveries(owner_engine: AsyncEngine, *, due_only: bool = False, twice: bool = False) -> int:
    """Run every waiting delivery job once (twice: a redelivery), marking its outbox row sent.
    Returns how many ran; a job that dead-letters counts and is swallowed here (a worker would
    move it to the dead letters)."""
    ran = 0
    for row in await pending_deliveries(owner_engine, due_only=due_only):
        async with owner_engine.begin() as conn:
            await conn.execute(text("UPDATE job_outbox SET sent_at = now() WHERE id = :id"), {"id": row.id})
        for _ in range(2 if twice else 1):
            with suppress(DeadLettered):
                await deliver_message(*row.args)
        ran += 1
    return ran


async def deliveries(owner_engine: AsyncEngine, org_id: uuid.UUID | None = None) -> list[Any]:
    where = " WHERE org_id = :org" if org_id else ""
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text(f"SELECT * FROM deliveries{where} ORDER BY created_at, channel"), {"org": org_id} if org_id else {}
        )
        return list(rows)
