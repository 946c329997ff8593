"""Per-account (and per-address) failure counters in Redis, shared by every node.

Keys are a hash of the normalised email, counted whether or not the account exists, so a 429
says nothing about existence. Checked before the password is verified: a locked account costs
no argon2 work. If Redis is unreachable the check is skipped (logged): sign-in stays available,
and the general rate limiter and argon2's cost still bound guessing."""

from __future__ import annotations

import hashlib
import logging

from redis.asyncio import Redis

from spotless.lib.errors import Problem
from spotless.lib.redis import breaker_of

logger = logging.getLogger("spotless.identity.throttle")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def too_many_attempts(retry_after: int) -> Problem:
    return Problem(
        429,
        "too-many-attempts",
        "Too many attempts",
        "Too many failed attempts; wait before trying again.",
        headers={"Retry-After": str(max(1, retry_after))},
    )


class FailureThrottle:
    def __init__(
        self, redis: Redis, namespace: str, purpose: str, *, max_per_account: int, max_per_ip: int, window_seconds: int
    ) -> None:
        self.redis = redis
        # Shared with the session check and the limiter: while Redis is out, skip it at once.
        self.breaker = breaker_of(redis)
        self.prefix = f"{namespace}:throttle:{purpose}"
        self.max_per_account = max_per_account
        self.max_per_ip = max_per_ip
        self.window = window_seconds

    def _keys(self, email: str, ip: str | None) -> list[str]:
        keys = [f"{self.prefix}:acct:{_digest(normalise_email(email))}"]
        if ip:
            keys.append(f"{self.prefix}:ip:{_digest(ip)}")
        return keys

    async def check(self, email: str, ip: str | None) -> None:
        """Raise 429 (with Retry-After) while the account or the address is over its budget."""
        keys = self._keys(email, ip)

        async def read() -> list[int | None]:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.get(key)
                    pipe.ttl(key)
                return await pipe.execute()

        try:
            values = await self.breaker.guard(read)
        except Exception:
            logger.warning("throttle check skipped: Redis unavailable", exc_info=True)
            return
        limits = [self.max_per_account, self.max_per_ip]
        for index, _key in enumerate(keys):
            count, ttl = values[index * 2], values[index * 2 + 1]
            if count is not None and int(count) >= limits[index]:
                raise too_many_attempts(ttl if ttl and ttl > 0 else self.window)

    async def over_budget(self, email: str, ip: str | None) -> bool:
        try:
            await self.check(email, ip)
        except Problem:
            return True
        return False

    async def failed(self, email: str, ip: str | None) -> None:
        async def count() -> None:
            async with self.redis.pipeline(transaction=True) as pipe:
                for key in self._keys(email, ip):
                    pipe.incr(key)
                    pipe.expire(key, self.window, nx=True)
                await pipe.execute()

        try:
            await self.breaker.guard(count)
        except Exception:
            logger.warning("could not count a failed attempt: Redis unavailable", exc_info=True)

    async def succeeded(self, email: str) -> None:
        try:
            await self.breaker.guard(lambda: self.redis.delete(self._keys(email, None)[0]))
        except Exception:
            logger.warning("could not clear the failure counter", exc_info=True)
