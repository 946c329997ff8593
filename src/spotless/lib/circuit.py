"""A circuit breaker for a dependency on the request path (Redis today).

Without it, every request of an outage pays the dependency's timeout before its fallback runs: with
Redis frozen (SIGSTOP) `/v1/auth/me` took a median 263 ms, the session check's socket timeout plus
the limiter's. With it, the first failure opens the circuit and every later call goes straight to
its fallback; after `cooldown_seconds` ONE background probe (a PING, bounded by its own timeout)
tests the dependency, again every cool-down while it fails, and closes the circuit by itself when
it answers. No request ever waits for the probe, so an outage costs the requests in flight when it
began one timeout each, and nothing afterwards.

    breaker = redis_breaker(settings.redis)            # lib/redis.py: one per Redis server
    value = await breaker.call(lambda: redis.get(key), fallback=lambda: read_postgres(...))

or, where the call has its own deadline logic (the limiter):

    if breaker.allow():
        try: ...redis...
        except Exception as exc: breaker.failure(exc)

Only outages trip it (timeouts, connection errors, OSError); an error reply (WRONGTYPE, NOSCRIPT)
is the caller's bug or business and says nothing about availability. A success never closes an
open circuit: a reply to a request sent before the outage proves nothing; only the probe does.

Metrics (per breaker name): `redis_circuit_state` 0 closed / 1 open, `redis_circuit_opened_total`,
`redis_circuit_fallbacks_total` (calls sent to their fallback without trying), and
`redis_circuit_probes_total{outcome}`. All are exported from the moment the breaker exists.
Another dependency passes its own `CircuitMetrics` (Stripe: `circuit_state{circuit="stripe"}`), its
own `outage` test, and may ask for several consecutive failures before opening (`failure_threshold`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from prometheus_client import Counter, Gauge
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("spotless.circuit")

T = TypeVar("T")

CIRCUIT_STATE = Gauge(
    "redis_circuit_state",
    "Circuit breaker state per Redis server: 0 closed (calls go to Redis), 1 open (calls use their fallback)",
    ["breaker"],
    multiprocess_mode="livemax",
)
CIRCUIT_OPENED = Counter("redis_circuit_opened_total", "Times a circuit breaker opened", ["breaker"])
CIRCUIT_FALLBACKS = Counter(
    "redis_circuit_fallbacks_total", "Calls sent to their fallback because the circuit was open", ["breaker"]
)
CIRCUIT_PROBES = Counter("redis_circuit_probes_total", "Probes of an open circuit", ["breaker", "outcome"])

# Errors that mean "the dependency is not answering", as opposed to an error reply.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # ConnectionError, refused, reset, ssl.SSLError
    TimeoutError,  # asyncio.TimeoutError is TimeoutError on 3.11
    RedisConnectionError,  # redis-py's, AuthenticationError and BusyLoadingError included
    RedisTimeoutError,
)


def is_outage(exc: BaseException) -> bool:
    return isinstance(exc, OUTAGE_ERRORS)


class CircuitMetrics:
    """The series one breaker reports to: the Redis family by default, or another's."""

    def __init__(self, state: Gauge, opened: Counter, fallbacks: Counter, probes: Counter, label: str) -> None:
        self.state_family = state
        self.opened_family = opened
        self.fallbacks_family = fallbacks
        self.probes_family = probes
        self.label = label

    def bind(self, name: str) -> tuple[Gauge, Counter, Counter, Counter, Counter]:
        by = {self.label: name}
        return (
            self.state_family.labels(**by),
            self.opened_family.labels(**by),
            self.fallbacks_family.labels(**by),
            self.probes_family.labels(**by, outcome="ok"),
            self.probes_family.labels(**by, outcome="failed"),
        )


REDIS_METRICS = CircuitMetrics(CIRCUIT_STATE, CIRCUIT_OPENED, CIRCUIT_FALLBACKS, CIRCUIT_PROBES, "breaker")


class CircuitOpenError(ConnectionError):
    """Raised by `guard()` when the circuit is open: the dependency is not tried."""


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        probe: Callable[[], Awaitable[object]],
        *,
        cooldown_seconds: float = 1.0,
        probe_timeout_seconds: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        metrics: CircuitMetrics = REDIS_METRICS,
        outage: Callable[[BaseException], bool] = is_outage,
        failure_threshold: int = 1,
    ) -> None:
        self.name = name
        self.probe = probe
        self.cooldown = cooldown_seconds
        self.probe_timeout = probe_timeout_seconds
        self.clock = clock
        self.outage = outage
        self.failure_threshold = max(1, failure_threshold)
        self._failures = 0
        self._open = False
        self._next_probe = 0.0
        self._probe_task: asyncio.Task[None] | None = None
        self._state, self._opened, self._fallbacks, self._probe_ok, self._probe_failed = metrics.bind(name)
        self._state.set(0)

    @property
    def is_open(self) -> bool:
        return self._open

    def allow(self) -> bool:
        """True when the caller should try the dependency; False: use the fallback now. While
        open, the first caller after each cool-down starts the (background) probe."""
        if not self._open:
            return True
        self._fallbacks.inc()
        if self.clock() >= self._next_probe and not self._probing():
            self._start_probe()
        return False

    def _probing(self) -> bool:
        task = self._probe_task
        if task is None:
            return False
        try:
            same_loop = task.get_loop() is asyncio.get_running_loop()
        except RuntimeError:
            return True
        # A probe left behind on a loop that has ended (a script run twice) must not block forever.
        return same_loop and not task.done()

    def retry_after(self) -> float:
        """Seconds until the next probe may run (0 when closed)."""
        return max(0.0, self._next_probe - self.clock()) if self._open else 0.0

    def success(self) -> None:
        """Report a call that worked: consecutive failures start again from zero (it never closes
        an open circuit: only the probe does)."""
        self._failures = 0

    def failure(self, exc: BaseException) -> None:
        """Report a failed call; an outage (the `failure_threshold`-th in a row) opens the circuit
        (idempotent while open)."""
        if not self.outage(exc) or self._open:
            return
        self._failures += 1
        if self._failures < self.failure_threshold:
            return
        self._open = True
        self._failures = 0
        self._next_probe = self.clock() + self.cooldown
        self._state.set(1)
        self._opened.inc()
        logger.warning(
            "circuit %s open: using fallbacks, probing every %.1f s",
            self.name,
            self.cooldown,
            extra={"breaker": self.name, "error": f"{type(exc).__name__}: {str(exc)[:200]}"},
        )

    async def call(
        self, fn: Callable[[], Awaitable[T]], fallback: Callable[[], Awaitable[T] | T], *, on_error: bool = True
    ) -> T:
        """`await fn()` while closed, else `fallback()`. With `on_error` (the default) any
        exception of `fn` also answers with the fallback (an outage opens the circuit as well);
        without it, the exception is raised after being reported."""
        if not self.allow():
            return await _resolve(fallback())
        try:
            return await fn()
        except Exception as exc:
            self.failure(exc)
            if not on_error:
                raise
        return await _resolve(fallback())

    async def guard(self, fn: Callable[[], Awaitable[T]]) -> T:
        """`await fn()` while closed, reporting its failure; raises CircuitOpenError when open.
        For callers whose fallback is to fail fast (e.g. a publication a sync job repeats)."""
        if not self.allow():
            raise CircuitOpenError(f"circuit {self.name} is open")
        try:
            result = await fn()
        except Exception as exc:
            self.failure(exc)
            raise
        self.success()
        return result

    def _start_probe(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a synchronous caller: the next async one will probe
            return
        self._next_probe = self.clock() + self.cooldown
        self._probe_task = loop.create_task(self._run_probe(), name=f"circuit-probe:{self.name}")

    async def _run_probe(self) -> None:
        try:
            async with asyncio.timeout(self.probe_timeout):
                await self.probe()
        except Exception as exc:
            self._probe_failed.inc()
            logger.debug("circuit %s probe failed: %s", self.name, exc)
            self._next_probe = self.clock() + self.cooldown
        else:
            self._probe_ok.inc()
            self.close()
        finally:
            self._probe_task = None

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        self._state.set(0)
        logger.warning("circuit %s closed: the dependency answers again", self.name, extra={"breaker": self.name})

    def reset(self) -> None:
        """Closed, no probe pending (tests, and a process that rebuilds its clients)."""
        if self._probe_task is not None:
            self._probe_task.cancel()
            self._probe_task = None
        self._open = False
        self._failures = 0
        self._next_probe = 0.0
        self._state.set(0)


async def _resolve(value: Awaitable[T] | T) -> T:
    if inspect.isawaitable(value):
        return await value
    return value
