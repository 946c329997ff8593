"""The periodic scheduler. Any number may run: each slot is claimed in Redis (SET NX EX) before it
is sent, and the job itself is idempotent on (job, slot) in Postgres (see `claim_run`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.lib.jobs.registry import SCHEDULE, Periodic, get_job
from spotless.lib.metrics import SCHEDULER_FIRED

logger = logging.getLogger("spotless.scheduler")


def slot_for(entry: Periodic, now: datetime) -> datetime:
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % entry.every_seconds, tz=UTC)


class Scheduler:
    def __init__(self, redis: Redis, broker: RedisBroker, namespace: str, runner_id: str) -> None:
        self.redis = redis
        self.broker = broker
        self.namespace = namespace
        self.runner_id = runner_id
        self._last_slot: dict[str, datetime] = {}

    def _key(self, job_name: str, slot: datetime) -> str:
        return f"{self.namespace}:schedule:{job_name}:{int(slot.timestamp())}"

    async def tick(self, now: datetime | None = None) -> list[tuple[str, datetime]]:
        """Claim and send every slot that is due now. Returns what this scheduler fired."""
        now = now or datetime.now(UTC)
        fired: list[tuple[str, datetime]] = []
        for entry in list(SCHEDULE.values()):
            slot = slot_for(entry, now)
            if self._last_slot.get(entry.job_name) == slot:
                continue
            try:
                claimed = await self.redis.set(
                    self._key(entry.job_name, slot), self.runner_id, nx=True, ex=max(entry.every_seconds * 2, 60)
                )
            except Exception:
                logger.warning("scheduler cannot reach Redis; slot %s of %s not claimed", slot, entry.job_name)
                continue
            self._last_slot[entry.job_name] = slot
            if not claimed:
                continue
            spec = get_job(entry.job_name)
            message: Message[Any] = Message(
                queue_name=spec.queue, actor_name=spec.name, args=(), kwargs={"slot": slot.isoformat()}, options={}
            )
            try:
                await asyncio.to_thread(self.broker.enqueue, message)
            except Exception:
                # Release the claim so another scheduler (or our next tick) can retry the slot.
                await self.redis.delete(self._key(entry.job_name, slot))
                self._last_slot.pop(entry.job_name, None)
                logger.warning("could not send %s for slot %s", entry.job_name, slot, exc_info=True)
                continue
            SCHEDULER_FIRED.labels(job=entry.job_name).inc()
            fired.append((entry.job_name, slot))
        return fired

    async def run_forever(self, stop: asyncio.Event, resolution_seconds: float = 1.0) -> None:
        while not stop.is_set():
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=resolution_seconds)


async def claim_run(session: AsyncSession, job_name: str, slot: str | None) -> bool:
    """Idempotency for periodic jobs: True only for the first delivery of (job, slot)."""
    if slot is None:
        return True  # run by hand (--once): always runs
    result = await session.execute(
        text(
            "INSERT INTO scheduled_runs (job_name, slot, started_at) VALUES (:job, :slot, now()) "
            "ON CONFLICT DO NOTHING RETURNING job_name"
        ),
        {"job": job_name, "slot": datetime.fromisoformat(slot)},
    )
    return result.first() is not None
