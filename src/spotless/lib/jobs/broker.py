"""The one place the Dramatiq broker is configured, with an explicit middleware list."""

from __future__ import annotations

import time
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    AsyncIO,
    Callbacks,
    CurrentMessage,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from spotless.lib.jobs.registry import JOBS
from spotless.lib.metrics import JOB_DURATION, JOB_MESSAGES, JOB_RETRIES
from spotless.lib.redis import create_sync_pool
from spotless.settings import Settings


class JobMetrics(Middleware):
    """Per-actor counters and durations in the shared Prometheus registry (multiprocess-safe)."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}

    def before_process_message(self, broker: Any, message: Any) -> None:
        self._started[message.message_id] = time.perf_counter()

    def after_process_message(self, broker: Any, message: Any, *, result: Any = None, exception: Any = None) -> None:
        started = self._started.pop(message.message_id, None)
        labels = {"queue_name": message.queue_name, "actor_name": message.actor_name}
        if started is not None:
            JOB_DURATION.labels(**labels).observe(time.perf_counter() - started)
        JOB_MESSAGES.labels(**labels, outcome="error" if exception else "ok").inc()
        if exception and message.options.get("retries", 0) < message.options.get("max_retries", 0):
            JOB_RETRIES.labels(**labels).inc()

    def after_skip_message(self, broker: Any, message: Any) -> None:
        self._started.pop(message.message_id, None)
        JOB_MESSAGES.labels(queue_name=message.queue_name, actor_name=message.actor_name, outcome="skipped").inc()

    def after_nack(self, broker: Any, message: Any) -> None:
        JOB_MESSAGES.labels(queue_name=message.queue_name, actor_name=message.actor_name, outcome="dead").inc()


def middleware() -> list[Middleware]:
    return [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(min_backoff=1_000, max_backoff=15 * 60_000, max_retries=10),
        AsyncIO(),
        CurrentMessage(),
        JobMetrics(),
    ]


def build_broker(settings: Settings, *, declare: bool = True) -> RedisBroker:
    """Create the broker, make it the global one, and bind every declared job to it."""
    # Dramatiq's own client has no socket timeout: a hung Redis would hold the outbox relay's row
    # locks (and a worker thread) forever. Dramatiq polls with short Lua calls, so a bound is safe.
    timeout = max(settings.redis.socket_timeout_seconds, 5.0)
    # TLS (rediss://, REDIS_TLS_*) and credentials from the URL, as for every other client.
    pool = create_sync_pool(settings.redis, socket_timeout=timeout)
    broker = RedisBroker(connection_pool=pool, namespace=settings.jobs.namespace, middleware=middleware())
    dramatiq.set_broker(broker)
    if declare:
        declare_jobs(broker)
    return broker


def declare_jobs(broker: RedisBroker) -> None:
    for spec in JOBS.values():
        if spec.name in broker.actors:
            continue
        options: dict[str, Any] = {
            "max_retries": spec.max_retries,
            "min_backoff": spec.min_backoff_ms,
            "max_backoff": spec.max_backoff_ms,
            "time_limit": spec.time_limit_ms,
        }
        if spec.max_age_ms is not None:
            options["max_age"] = spec.max_age_ms
        dramatiq.actor(actor_name=spec.name, queue_name=spec.queue, broker=broker, **options)(spec.fn)
