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

from spotless.lib.circuit import CircuitBreaker, CircuitOpenError
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


class GuardedRedisBroker(RedisBroker):
    """The API's broker: enqueue fails fast while the process' breaker for this Redis is open.

    The outbox relay hands each commit's jobs over right away, holding a database connection and
    the rows' locks while it does; against a hung Redis that is the socket timeout per commit, and
    a burst of writes would empty the pool. With the breaker open the hand-over fails at once and
    the rows wait for the sweep. A failed hand-over also opens the breaker (shared with the
    session check and the limiter). Workers keep the plain broker: their threads have no event
    loop for the breaker's probe, and their retries must keep trying."""

    def __init__(self, *args: Any, breaker: CircuitBreaker, **kwargs: Any) -> None:
        self.breaker = breaker
        super().__init__(*args, **kwargs)

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        if not self.breaker.allow():
            raise CircuitOpenError(f"{self.breaker.name} is open; the job stays in the outbox")
        try:
            return super().enqueue(message, delay=delay)
        except Exception as exc:
            self.breaker.failure(exc)
            raise


def build_broker(settings: Settings, *, declare: bool = True, breaker: CircuitBreaker | None = None) -> RedisBroker:
    """Create the broker, make it the global one, and bind every declared job to it. With a
    `breaker` (the API's), enqueueing fails fast while it is open (see GuardedRedisBroker)."""
    # Dramatiq's own client has no socket timeout: a hung Redis would hold the outbox relay's row
    # locks (and a worker thread) forever. Dramatiq polls with short Lua calls, so a bound is safe.
    timeout = max(settings.redis.socket_timeout_seconds, 5.0)
    # TLS (rediss://, REDIS_TLS_*) and credentials from the URL, as for every other client.
    pool = create_sync_pool(settings.redis, socket_timeout=timeout)
    options: dict[str, Any] = {
        "connection_pool": pool,
        "namespace": settings.jobs.namespace,
        "middleware": middleware(),
    }
    broker = RedisBroker(**options) if breaker is None else GuardedRedisBroker(**options, breaker=breaker)
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
