from __future__ import annotations

from contextlib import suppress
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain import registry
from spotless.domain.messaging.delivery import DeadLettered
from spotless.lib.jobs import JOBS
from tests.support.smtp import smtp_server  # noqa: F401  (a local aiosmtpd server)

# Services here emit events: every context's subscribers (and every kind) must be known first.
registry.import_jobs()


_RAN: set[Any] = set()


async def run_subscriber(owner_engine: AsyncEngine, name: str, *, twice: bool = True) -> int:
    """Run every outbox row addressed to `name` not run yet, as a worker would (twice: a
    redelivery). Returns how many rows ran. (The API's relay may have marked them sent: the
    broker is not drained here, so sent_at says nothing.)"""
    async with owner_engine.connect() as conn:
        rows = list(
            await conn.execute(
                text("SELECT id, args, kwargs FROM job_outbox WHERE actor_name = :n ORDER BY id"), {"n": name}
            )
        )
    rows = [r for r in rows if r.id not in _RAN]
    for row in rows:
        _RAN.add(row.id)
        for _ in range(2 if twice else 1):
            with suppress(DeadLettered):
                await JOBS[name].fn(*row.args, **(row.kwargs or {}))
    return len(rows)


async def sql(owner_engine: AsyncEngine, statement: str, **params: Any) -> list[Any]:
    async with owner_engine.begin() as conn:
        result = await conn.execute(text(statement), params)
        return list(result) if result.returns_rows else []


async def run_deliveries(owner_engine: AsyncEngine, *, twice: bool = False) -> int:
    """Every `messaging.deliver` job not run yet, once (twice: a redelivery). Unlike
    tests.support.messaging.run_deliveries it does not go by `sent_at`: a runtime's relay may
    hand a row to the broker (and mark it) before we get to it."""
    return await run_subscriber(owner_engine, "messaging.deliver", twice=twice)
