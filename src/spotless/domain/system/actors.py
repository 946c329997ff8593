"""System jobs: the scheduler tick (heartbeats, dead-letter gauge), a no-op,
and the platform's own subscribers: `bookings_total{action}` counted from scheduling's events, and
the probe's two subscribers. Old outbox rows and slot records are retention's (`retention.apply`)."""

from __future__ import annotations

import logging
from datetime import timedelta

from spotless.domain.scheduling.events import (
    BookingCancelled,
    BookingCompleted,
    BookingConfirmed,
    BookingCreated,
    BookingEvent,
    BookingNoShow,
)
from spotless.domain.system import heartbeat
from spotless.domain.system.events import Probed
from spotless.lib.events import first_delivery, subscriber
from spotless.lib.jobs import job
from spotless.lib.jobs.dlq import count_dead_letters
from spotless.lib.jobs.runtime import get_runtime
from spotless.lib.jobs.scheduler import claim_run
from spotless.lib.metrics import BOOKINGS, DEAD_LETTERS, JOB_RUNNER_UP

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


@job("system.noop", max_retries=0)
async def noop(marker: str | None = None) -> None:
    """Does nothing: used by benchmarks and smoke checks to time the platform itself."""


@job("system.record", max_retries=3)
async def record(marker: str) -> None:
    """Writes its marker to Redis: lets tests and smoke checks see a job really ran end to end."""
    rt = get_runtime()
    await rt.redis.rpush(f"{rt.settings.jobs.namespace}:records", marker)


_BOOKING_ACTIONS: dict[type[BookingEvent], str] = {
    BookingCreated: "created",
    BookingConfirmed: "confirmed",
    BookingCancelled: "cancelled",
    BookingCompleted: "completed",
    BookingNoShow: "no_show",
}


@subscriber(*_BOOKING_ACTIONS, name="system.count_booking", max_retries=3, time_limit_ms=30_000)
async def count_booking(event: BookingEvent, event_id: str) -> None:
    """`bookings_total{action}`: the event only exists once its transaction committed, so a
    rolled-back request is never counted; a redelivered message is not counted twice."""
    rt = get_runtime()
    if await first_delivery(rt.redis, rt.settings.jobs.namespace, "system.count_booking", event_id):
        BOOKINGS.labels(action=_BOOKING_ACTIONS[type(event)]).inc()


async def _record_probe(subscriber_name: str, event: Probed, event_id: str) -> None:
    if subscriber_name in event.failing:
        raise RuntimeError(f"{subscriber_name} was asked to fail on probe {event.marker!r}")
    rt = get_runtime()
    if await first_delivery(rt.redis, rt.settings.jobs.namespace, subscriber_name, event_id):
        await rt.redis.rpush(f"{rt.settings.jobs.namespace}:records", f"{subscriber_name}:{event.marker}")


@subscriber(Probed, name="system.probe_first", max_retries=0)
async def probe_first(event: Probed, event_id: str) -> None:
    """Records `system.probe_first:<marker>` (like `system.record`), or fails when asked to."""
    await _record_probe("system.probe_first", event, event_id)


@subscriber(Probed, name="system.probe_second", max_retries=0)
async def probe_second(event: Probed, event_id: str) -> None:
    await _record_probe("system.probe_second", event, event_id)
