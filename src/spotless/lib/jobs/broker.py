"""The one place the Dramatiq broker is configured, with an explicit middleware list."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis, dq_name
from dramatiq.middleware import AgeLimit, AsyncIO, Middleware, MiddlewareError, Retries, TimeLimit

from spotless.lib.circuit import CircuitBreaker, CircuitOpenError
from spotless.lib.jobs.registry import JOBS, decoding
from spotless.lib.metrics import JOB_DURATION, JOB_MESSAGES, JOB_RETRIES
from spotless.lib.metrics_exporter import serve_process_metrics
from spotless.lib.redis import create_sync_pool
from spotless.settings import MetricsSettings, Settings

logger = logging.getLogger("spotless.jobs.broker")


class JobMetrics(Middleware):
    """Per-actor counters and durations in the shared Prometheus registry (multiprocess-safe).

    The labelled children are looked up once per (queue, actor) and kept: `labels(**...)` sorts
    and validates its labels on every call, which per message cost more than the observation."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._children: dict[tuple[str, str], tuple[Any, Any, Any, Any]] = {}

    def _series(self, message: Any) -> tuple[Any, Any, Any, Any]:
        key = (message.queue_name, message.actor_name)
        series = self._children.get(key)
        if series is None:
            labels = {"queue_name": key[0], "actor_name": key[1]}
            series = self._children[key] = (
                JOB_DURATION.labels(**labels),
                JOB_MESSAGES.labels(**labels, outcome="ok"),
                JOB_MESSAGES.labels(**labels, outcome="error"),
                JOB_RETRIES.labels(**labels),
            )
        return series

    def before_process_message(self, broker: Any, message: Any) -> None:
        self._started[message.message_id] = time.perf_counter()

    def after_process_message(self, broker: Any, message: Any, *, result: Any = None, exception: Any = None) -> None:
        started = self._started.pop(message.message_id, None)
        duration, ok, error, retries = self._series(message)
        if started is not None:
            duration.observe(time.perf_counter() - started)
        if exception is None:
            ok.inc()
            return
        error.inc()
        options = message.options
        if options.get("retries", 0) < options.get("max_retries", 0):
            retries.inc()

    def after_skip_message(self, broker: Any, message: Any) -> None:
        self._started.pop(message.message_id, None)
        JOB_MESSAGES.labels(queue_name=message.queue_name, actor_name=message.actor_name, outcome="skipped").inc()

    def after_nack(self, broker: Any, message: Any) -> None:
        JOB_MESSAGES.labels(queue_name=message.queue_name, actor_name=message.actor_name, outcome="dead").inc()


class ProcessMetrics(Middleware):
    """Each worker process tries to become its container's metrics exporter (one wins the lock)."""

    def __init__(self, settings: MetricsSettings) -> None:
        self._settings = settings

    def after_process_boot(self, broker: Any) -> None:
        serve_process_metrics(self._settings)


class BrokerHeartbeat(Middleware):
    """Keeps this worker process' broker heartbeat fresh, whatever its threads are doing.

    Dramatiq records a heartbeat on every broker command; an idle consumer polls every second, but
    nothing guarantees a command while every consumer is saturated by long jobs. A worker whose
    heartbeat is older than the broker's `heartbeat_timeout` is taken for dead and its in-flight
    messages are handed to others, so a live one must beat well within it: here four times per
    timeout, from a thread of its own."""

    def __init__(self) -> None:
        self._stop = threading.Event()

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        self._stop.clear()
        interval = broker.heartbeat_timeout / 4000
        queues = sorted(broker.get_declared_queues()) or ["default"]

        def beat() -> None:
            while not self._stop.wait(interval):
                try:
                    broker.do_qsize(queues[0])  # any command refreshes this broker's heartbeat
                except Exception:
                    logger.warning("broker heartbeat failed", exc_info=True)

        threading.Thread(target=beat, name="broker-heartbeat", daemon=True).start()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        self._stop.set()


def middleware(settings: Settings) -> list[Middleware]:
    """What every message pays for, each earning it: age and time limits, retries with backoff
    into the dead letters, async actors, per-actor metrics, the broker heartbeat and the process'
    metrics exporter. Dramatiq's Callbacks, Pipelines, CurrentMessage and ShutdownNotifications
    are left out: no job uses on_success/on_failure, pipelines, the current message or
    notify_shutdown, and each cost a call (or two) per message. Adding a job that needs one means
    adding it back here."""
    return [
        AgeLimit(),
        TimeLimit(),
        Retries(min_backoff=1_000, max_backoff=15 * 60_000, max_retries=10),
        AsyncIO(),
        JobMetrics(),
        BrokerHeartbeat(),
        ProcessMetrics(settings.metrics),
    ]


def _overrides(middleware: Middleware, hook: str) -> bool:
    """Whether `middleware` does something on `hook` (Middleware's own hooks do nothing)."""
    return getattr(type(middleware), hook, None) is not getattr(Middleware, hook, None)


class SpotlessRedisBroker(RedisBroker):
    """Dramatiq's Redis broker plus deterministic recovery of a dead worker's messages.

    Dramatiq puts the fetched-but-unacked messages of a worker whose heartbeat is older than
    `heartbeat_timeout` back in their queue only during "maintenance", which its Lua dispatch runs
    on a random 0.1 % of commands, one queue at a time. `requeue_from_dead_workers` forces that
    maintenance on every queue; the scheduler calls it on a cadence."""

    _forced = threading.local()

    # An idle consumer polls Redis with a backoff that grows to the worker timeout (Dramatiq's
    # default: 1 s), so a job committed while its queue was idle waited up to a second for its
    # actor. Capped here (10-20 ms between polls with jitter): about 60 cheap fetches a second per
    # queue and process while idle, for a commit -> actor start of a few milliseconds.
    idle_poll_ms = 20

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        return super().consume(queue_name, prefetch=prefetch, timeout=min(timeout, self.idle_poll_ms))

    # Dramatiq's emit_* call every middleware's hook for every signal, the no-op ones included
    # (two per middleware per message). Here each signal calls only the hooks that do something;
    # the lists are rebuilt when a middleware is added. Same order, same error handling.
    def _hooks(self, name: str, reverse: bool) -> list[tuple[Middleware, Any]]:
        cache: dict[str, list[tuple[Middleware, Any]]] = self.__dict__.setdefault("_hook_cache", {})
        hooks = cache.get(name)
        if hooks is None:
            ordered = reversed(self.middleware) if reverse else self.middleware
            hooks = cache[name] = [(m, getattr(m, name)) for m in ordered if _overrides(m, name)]
        return hooks

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        name = "before_" + signal
        for middleware, hook in self._hooks(name, False):
            try:
                hook(self, *args, **kwargs)
            except MiddlewareError:
                raise
            except Exception:
                self.logger.critical("Unexpected failure in %s of %r.", name, middleware, exc_info=True)

    def emit_after(self, signal: str, *args: Any, **kwargs: Any) -> None:
        name = "after_" + signal
        for middleware, hook in self._hooks(name, True):
            try:
                hook(self, *args, **kwargs)
            except Exception:
                self.logger.critical("Unexpected failure in %s of %r.", name, middleware, exc_info=True)

    def add_middleware(self, middleware: Middleware, **kwargs: Any) -> None:
        super().add_middleware(middleware, **kwargs)
        self.__dict__.pop("_hook_cache", None)

    def _should_do_maintenance(self, command: str) -> int:
        if getattr(self._forced, "on", False):
            return 1
        return super()._should_do_maintenance(command)

    def dead_workers(self) -> list[str]:
        """Broker ids whose heartbeat is older than the timeout (their messages are still held)."""
        cutoff = current_millis() - self.heartbeat_timeout
        ids = self.client.zrangebyscore(f"{self.namespace}:__heartbeats__", 0, cutoff)
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]  # type: ignore[union-attr]

    def requeue_from_dead_workers(self, queues: set[str]) -> int:
        """Run the broker's maintenance on each queue and its delay queue: every message held by a
        dead worker goes back to its queue (acked ones are gone from the queue's hash and are not
        revived), and expired dead letters are dropped. Returns how many dead workers it found."""
        dead = len(self.dead_workers())
        self._forced.on = True
        try:
            for queue in sorted(queues):
                for name in (queue, dq_name(queue)):
                    self.do_qsize(name)  # a read-only command; the maintenance runs before it
        finally:
            self._forced.on = False
        if dead:
            logger.info("requeued the in-flight messages of %d dead worker(s)", dead)
        return dead


def job_queues() -> set[str]:
    return {spec.queue for spec in JOBS.values()}


class GuardedRedisBroker(SpotlessRedisBroker):
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


def build_broker(
    settings: Settings, *, declare: bool = True, breaker: CircuitBreaker | None = None
) -> SpotlessRedisBroker:
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
        "middleware": middleware(settings),
        # Same on every instance (API, workers, scheduler): maintenance run by any of them judges
        # liveness by it.
        "heartbeat_timeout": settings.jobs.broker_heartbeat_timeout_seconds * 1000,
    }
    broker = SpotlessRedisBroker(**options) if breaker is None else GuardedRedisBroker(**options, breaker=breaker)
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
        options.update(spec.options)
        dramatiq.actor(actor_name=spec.name, queue_name=spec.queue, broker=broker, **options)(decoding(spec.fn))
