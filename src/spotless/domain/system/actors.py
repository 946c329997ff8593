"""System jobs: the scheduler tick (heartbeats, dead-letter gauge, outbox housekeeping) and a no-op."""

from __future__ import annotations

import logging
from datetime import timedelta

from spotless.domain.system import heartbeat
from spotless.lib.jobs import job
from spotless.lib.jobs.dlq import count_dead_letters
from spotless.lib.jobs.outbox import purge_sent
from spotless.lib.jobs.runtime import get_runtime
from spotless.lib.jobs.scheduler import claim_run
from spotless.lib.metrics import DEAD_LETTERS, JOB_RUNNER_UP

logger = logging.getLogger("spotless.system")


@job(
    "system.tick",
    every=lambda settings: timedelta(seconds=settings.jobs.tick_interval_seconds),
    queue="default",
    max_retries=0,
    time_limit_ms=30_000,
    max_age_ms=120_000,
    aliases=("jobs-runner",),  # the old runner's loop, whose heartbeat /readyz reads
)
async def tick(slot: str | None = None) -> None:
    """Proves scheduler -> broker -> worker -> database works; /readyz reads what it writes."""
    rt = get_runtime()
    settings = rt.settings
    try:
        async with rt.session() as session:
            if not await claim_run(session, "system.tick", slot):
                return
            await heartbeat.beat_postgres(session, rt.runner_id)
        try:
            await heartbeat.beat_redis(
                rt.redis, settings.jobs.namespace, rt.runner_id, settings.jobs.heartbeat_ttl_seconds
            )
            for queue, count in (await count_dead_letters(rt.redis, settings.jobs.namespace)).items():
                DEAD_LETTERS.labels(queue_name=queue).set(count)
        except Exception:
            logger.warning("heartbeat written to Postgres only: Redis unavailable", exc_info=True)
        JOB_RUNNER_UP.labels(job=heartbeat.HEARTBEAT_NAME).set(1)
    except Exception as exc:
        JOB_RUNNER_UP.labels(job=heartbeat.HEARTBEAT_NAME).set(0)
        try:
            async with rt.session() as session:
                await heartbeat.beat_postgres(session, rt.runner_id, error=f"{type(exc).__name__}: {exc}"[:2000])
        except Exception:
            logger.exception("could not record the tick failure")
        raise


@job("system.purge_outbox", every=timedelta(hours=1), max_retries=3)
async def purge_outbox(slot: str | None = None) -> None:
    rt = get_runtime()
    async with rt.session() as session:
        if not await claim_run(session, "system.purge_outbox", slot):
            return
        await purge_sent(session, timedelta(days=3))
        # scheduled_runs only needs to outlive redelivery; a week is plenty.
        from sqlalchemy import text

        await session.execute(text("DELETE FROM scheduled_runs WHERE slot < now() - interval '7 days'"))


@job("system.noop", max_retries=0)
async def noop(marker: str | None = None) -> None:
    """Does nothing: used by benchmarks and smoke checks to time the platform itself."""


@job("system.record", max_retries=3)
async def record(marker: str) -> None:
    """Writes its marker to Redis: lets tests and smoke checks see a job really ran end to end."""
    rt = get_runtime()
    await rt.redis.rpush(f"{rt.settings.jobs.namespace}:records", marker)
