"""The limiter: one EVALSHA per decision against Redis, bounded by a short deadline, with a
node-local fallback that takes over while Redis is slow or down and hands back by itself."""

from __future__ import annotations

import hashlib
import logging
import time
from importlib import resources
from typing import Any

import msgspec

from spotless.lib.circuit import CircuitBreaker
from spotless.lib.metrics import RATELIMIT_BACKEND_ERRORS, RATELIMIT_FALLBACK_ACTIVE
from spotless.lib.ratelimit.fallback import MemoryGCRA, Outcome
from spotless.lib.ratelimit.policies import Policy, policies_from_settings
from spotless.lib.redis import redis_breaker, ssl_context
from spotless.lib.resp import Deadline, RespClient, RespError
from spotless.settings import Settings

logger = logging.getLogger("spotless.ratelimit")

GCRA_LUA = resources.files("spotless.lib.ratelimit").joinpath("gcra.lua").read_text(encoding="utf-8")
GCRA_SHA = hashlib.sha1(GCRA_LUA.encode(), usedforsecurity=False).hexdigest()
# While Redis stays down, repeat the warning at most this often (the counter has every failure).
_LOG_EVERY_SECONDS = 30.0


class Decision(msgspec.Struct, frozen=True):
    allowed: bool
    remaining: int
    retry_after: float  # seconds until one more request is admitted (0 when allowed)
    reset_after: float  # seconds until the caller's quota is whole again
    backend: str  # "redis", "memory" (fallback) or "off"


UNLIMITED = Decision(allowed=True, remaining=0, retry_after=0.0, reset_after=0.0, backend="off")


def create_limiter_client(settings: Settings) -> RespClient:
    """A connection of its own (RATE_LIMIT_REDIS_URL, else REDIS_URL); see lib/resp.py for why.
    TLS options are REDIS_TLS_* for either URL."""
    url = settings.rate_limit.redis_url or settings.redis.url
    return RespClient(
        url,
        connect_timeout=max(0.25, 5 * settings.rate_limit.redis_timeout_ms / 1000),
        ssl_context=ssl_context(settings.redis, url),
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, OSError):  # ConnectionError included
        return "connection"
    return "error"


class Limiter:
    """`await limiter.hit(bucket, key, policy)` admits or refuses one request of `key` in `bucket`.

    Redis holds one GCRA key per (bucket, key), shared by every node and process; the Lua script
    reads Redis' clock, decides and writes in one atomic step. Any Redis error or a reply slower
    than `timeout_seconds` opens the process' circuit breaker for that Redis (shared with the
    session check and sign-in throttling, lib/circuit.py): decisions come from the in-memory GCRA
    without trying Redis until the breaker's probe finds it back. Nothing here raises."""

    def __init__(
        self,
        client: RespClient | None,
        *,
        policies: dict[str, Policy],
        breaker: CircuitBreaker | None = None,
        prefix: str = "spotless:rl",
        timeout_seconds: float = 0.05,
        cleanup_seconds: float = 300.0,
        enabled: bool = True,
    ) -> None:
        self.client = client
        self.policies = policies
        self.prefix = prefix
        self.timeout = timeout_seconds
        self.enabled = enabled
        self.memory = MemoryGCRA(cleanup_seconds)
        if breaker is None and client is not None:
            breaker = CircuitBreaker(f"redis:{client.host}:{client.port}", self._ping)
        self.breaker = breaker
        # True while decisions come from memory (for the gauge and the two transition logs).
        self._fallback = client is None
        self._last_log = -_LOG_EVERY_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings, client: RespClient | None = None) -> Limiter:
        rl = settings.rate_limit
        url = rl.redis_url or settings.redis.url
        if client is None and rl.enabled:
            client = create_limiter_client(settings)
        return cls(
            client,
            policies=policies_from_settings(rl),
            breaker=redis_breaker(settings.redis, url) if client is not None else None,
            prefix=f"{settings.jobs.namespace}:rl",
            timeout_seconds=rl.redis_timeout_ms / 1000,
            cleanup_seconds=rl.cleanup_minutes * 60,
            enabled=rl.enabled,
        )

    @property
    def fallback_active(self) -> bool:
        return self._fallback

    def redis_key(self, bucket: str, key: str) -> str:
        return f"{self.prefix}:{bucket}:{key}"

    async def hit(self, bucket: str, key: str, policy: Policy, cost: int = 1) -> Decision:
        if not self.enabled or not policy.enabled:
            return UNLIMITED
        full_key = self.redis_key(bucket, key)
        if self.client is not None and self.breaker is not None and self.breaker.allow():
            try:
                async with Deadline(self.timeout) as deadline:
                    raw = await self._evaluate(deadline, full_key, policy.interval_us, policy.burst, cost)
                allowed, remaining, retry_us, reset_us = raw  # type: ignore[misc]
            except Exception as exc:  # any failure of the backend must not fail the request
                self._redis_failed(exc)
            else:
                if self._fallback:
                    self._back()
                return _decision((allowed == 1, remaining, retry_us, reset_us), "redis")
        elif not self._fallback:
            self._enter_fallback("circuit-open", None)
        return _decision(self.memory.hit(full_key, policy.interval_us, policy.burst, cost), "memory")

    async def _evaluate(self, deadline: Deadline, key: str, interval_us: int, burst: int, cost: int) -> Any:
        assert self.client is not None
        try:
            return await self.client.call("EVALSHA", GCRA_SHA, 1, key, interval_us, burst, cost, sent=deadline.track)
        except RespError as exc:
            if not exc.no_script:
                raise
            # Redis restarted or flushed its scripts: EVAL runs it and caches it again.
            return await self.client.call("EVAL", GCRA_LUA, 1, key, interval_us, burst, cost, sent=deadline.track)

    async def _ping(self) -> None:
        assert self.client is not None
        await self.client.call("PING")

    async def warm_up(self, timeout_seconds: float = 1.0) -> None:
        """At start: connect and load the script, so the first request is one round trip too.
        If Redis is not there, start in fallback (the breaker's probe brings Redis in)."""
        if not self.enabled or self.client is None:
            return
        try:
            async with Deadline(timeout_seconds):
                await self.client.call("SCRIPT", "LOAD", GCRA_LUA)
        except Exception as exc:
            self._redis_failed(exc)

    def _redis_failed(self, exc: BaseException) -> None:
        reason = _reason(exc)
        RATELIMIT_BACKEND_ERRORS.labels(reason=reason).inc()
        if reason == "timeout" and self.client is not None:
            self.client.reset()  # a hung server's socket is not reused
        if self.breaker is not None:
            self.breaker.failure(exc)
        if not self._fallback:
            self._enter_fallback(reason, exc)

    def _enter_fallback(self, reason: str, exc: BaseException | None) -> None:
        self._fallback = True
        RATELIMIT_FALLBACK_ACTIVE.set(1)
        fields: dict[str, Any] = {"reason": reason}
        if exc is not None:
            fields["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        self._log(
            logging.WARNING,
            "rate limiter: Redis unavailable, limiting from node-local memory until it is back",
            force=True,
            **fields,
        )

    def _back(self) -> None:
        self._fallback = False
        RATELIMIT_FALLBACK_ACTIVE.set(0)
        self._log(logging.WARNING, "rate limiter: Redis is back, shared limits restored", force=True)

    def _log(self, level: int, message: str, *, force: bool = False, **fields: Any) -> None:
        now = time.monotonic()
        if force or now - self._last_log >= _LOG_EVERY_SECONDS:
            self._last_log = now
            logger.log(level, message, extra=fields)

    async def aclose(self) -> None:
        RATELIMIT_FALLBACK_ACTIVE.set(0)
        if self.client is not None:
            await self.client.aclose()


def _decision(outcome: Outcome, backend: str) -> Decision:
    allowed, remaining, retry_us, reset_us = outcome
    return Decision(
        allowed=bool(allowed),
        remaining=max(0, int(remaining)),
        retry_after=max(0, retry_us) / 1_000_000,
        reset_after=max(0, reset_us) / 1_000_000,
        backend=backend,
    )
