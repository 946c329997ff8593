"""The periodic scheduler. Any number may run: each slot is claimed in Redis (SET NX EX) before it
is sent, and the job itself runs each (job, slot) to completion once, in Postgres
(`scheduled_runs`, see `exclusive_slot` and `claim_run`).

A slot's row says whether its run is `started` (under a lease), `done` or `failed`. A delivery of a
done slot is a no-op; a delivery of a failed slot, or of one whose runner died past its lease,
takes it over. So a periodic job that fails really runs again on its retry, and two deliveries of
the same slot at once run the work once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from spotless.lib.jobs.broker import SpotlessRedisBroker, job_queues
from spotless.lib.jobs.registry import Periodic, get_job
from spotless.lib.metrics import SCHEDULED_RUNS, SCHEDULER_FIRED

logger = logging.getLogger("spotless.scheduler")


def slot_for(entry: Periodic, now: datetime) -> datetime:
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % entry.every_seconds, tz=UTC)


class Scheduler:
    def __init__(
        self, redis: Redis, broker: RedisBroker, namespace: str, runner_id: str, schedule: list[Periodic]
    ) -> None:
        """`schedule` is `discover_schedule(settings)`: what the job declarations say."""
        self.schedule = schedule
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
        for entry in self.schedule:
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


async def maintain_broker_forever(broker: SpotlessRedisBroker, interval_seconds: float, stop: asyncio.Event) -> None:
    """Every `interval_seconds`, put the messages held by dead workers back in their queues
    (see `SpotlessRedisBroker.requeue_from_dead_workers`). With the broker's heartbeat timeout
    this bounds how long a killed worker's messages wait: timeout + interval."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(broker.requeue_from_dead_workers, job_queues())
        except Exception:
            logger.warning("broker maintenance failed; retrying next round", exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_seconds)


# A redelivery may take over a started slot only once its runner is surely gone: the job's own
# time limit plus this margin.
LEASE_MARGIN = timedelta(minutes=5)

# Taken over when the previous attempt failed, or when it started and its lease has run out
# (its process died). A concurrent INSERT of the same key waits for the first to commit, then
# sees a started row under lease and takes nothing: two deliveries at once run the work once.
_CLAIM_STARTED = text(
    "INSERT INTO scheduled_runs (job_name, slot, started_at, status, attempts, lease_until, claim_token) "
    "VALUES (:job, :slot, now(), 'started', 1, now() + make_interval(secs => :lease), :token) "
    "ON CONFLICT (job_name, slot) DO UPDATE SET started_at = now(), status = 'started', "
    "attempts = scheduled_runs.attempts + 1, lease_until = EXCLUDED.lease_until, "
    "claim_token = EXCLUDED.claim_token, finished_at = NULL "
    "WHERE scheduled_runs.status = 'failed' "
    "OR (scheduled_runs.status = 'started' AND scheduled_runs.lease_until < now()) RETURNING attempts"
)
_CLAIM_DONE = text(
    "INSERT INTO scheduled_runs (job_name, slot, started_at, status, attempts, finished_at) "
    "VALUES (:job, :slot, now(), 'done', 1, now()) "
    "ON CONFLICT (job_name, slot) DO UPDATE SET started_at = now(), status = 'done', "
    "attempts = scheduled_runs.attempts + 1, finished_at = now(), claim_token = NULL, last_error = NULL "
    "WHERE scheduled_runs.status = 'failed' "
    "OR (scheduled_runs.status = 'started' AND scheduled_runs.lease_until < now()) RETURNING attempts"
)
_FINISH = text(
    "UPDATE scheduled_runs SET status = :status, finished_at = now(), last_error = :error "
    "WHERE job_name = :job AND slot = :slot AND claim_token = :token AND status = 'started'"
)


async def claim_run(session: AsyncSession, job_name: str, slot: str | None) -> bool:
    """For a periodic job whose whole work is this one transaction: True when this delivery should
    run (job, slot). The row is written as done and commits, or rolls back, with the work itself,
    so a failed run leaves no claim behind and its retry really runs."""
    if slot is None:
        return True  # run by hand (--once): always runs
    result = await session.execute(_CLAIM_DONE, {"job": job_name, "slot": datetime.fromisoformat(slot)})
    claimed = result.first() is not None
    SCHEDULED_RUNS.labels(job=job_name, outcome="claimed" if claimed else "skipped").inc()
    return claimed


@dataclass(frozen=True)
class SlotClaim:
    job_name: str
    slot: datetime
    token: UUID
    attempt: int


async def claim_slot(
    sessionmaker: async_sessionmaker[AsyncSession], job_name: str, slot: datetime, lease: timedelta
) -> SlotClaim | None:
    """Claim (job, slot) in its own committed transaction, for work spanning many transactions."""
    token = uuid4()
    async with sessionmaker() as session, session.begin():
        row = (
            await session.execute(
                _CLAIM_STARTED, {"job": job_name, "slot": slot, "lease": lease.total_seconds(), "token": token}
            )
        ).first()
    return None if row is None else SlotClaim(job_name, slot, token, int(row[0]))


async def finish_slot(
    sessionmaker: async_sessionmaker[AsyncSession], claim: SlotClaim, error: BaseException | None = None
) -> bool:
    """Mark the claimed run done (or failed, so the retry takes it over). False when the claim was
    lost meanwhile (our lease ran out and another delivery took the slot)."""
    async with sessionmaker() as session, session.begin():
        result = await session.execute(
            _FINISH,
            {
                "status": "done" if error is None else "failed",
                "error": None if error is None else f"{type(error).__name__}: {error}"[:2000],
                "job": claim.job_name,
                "slot": claim.slot,
                "token": claim.token,
            },
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def exclusive_slot(
    sessionmaker: async_sessionmaker[AsyncSession], job_name: str, slot: str | None
) -> AsyncIterator[bool]:
    """Run the body once per (job, slot) to completion:

        async with exclusive_slot(rt.sessionmaker, JOB, slot) as mine:
            if not mine:
                return
            ...  # the work, in as many transactions as it likes

    The body's failure marks the slot failed (and propagates, so Dramatiq retries it); its success
    marks it done. `slot=None` (run by hand) always runs and records nothing."""
    if slot is None:
        yield True
        return
    lease = timedelta(milliseconds=get_job(job_name).time_limit_ms) + LEASE_MARGIN
    claim = await claim_slot(sessionmaker, job_name, datetime.fromisoformat(slot), lease)
    if claim is None:
        SCHEDULED_RUNS.labels(job=job_name, outcome="skipped").inc()
        logger.info("%s slot %s is done or running elsewhere: nothing to do", job_name, slot)
        yield False
        return
    SCHEDULED_RUNS.labels(job=job_name, outcome="claimed").inc()
    try:
        yield True
    except BaseException as exc:
        SCHEDULED_RUNS.labels(job=job_name, outcome="failed").inc()
        try:
            await finish_slot(sessionmaker, claim, exc)
        except Exception:
            # Left started: its lease runs out and a later delivery takes the slot over.
            logger.exception("could not record the failure of %s slot %s", job_name, slot)
        raise
    if not await finish_slot(sessionmaker, claim):
        logger.warning("%s slot %s finished after its lease: another delivery had taken it over", job_name, slot)
