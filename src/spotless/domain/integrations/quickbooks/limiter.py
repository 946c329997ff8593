"""QuickBooks' throttles per company (realm), shared by every worker through Redis: at most
`per_minute` requests in any sliding 60 s (500 at Intuit) and `concurrent` requests in flight
(10), each slot a lease that expires by itself if its holder dies (a crashed worker never keeps
a slot). A 429 pauses the realm for everyone for its Retry-After.

One Lua script decides atomically (Redis' own clock, so hosts' clocks do not matter)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis

PER_MINUTE = 500
CONCURRENT = 10
WINDOW_MS = 60_000
# Longer than any one call may take (the client's timeout), short enough that a dead worker's slot returns soon.
LEASE_MS = 150_000
POLL_S = 0.02
MAX_WAIT_S = 120.0

_ACQUIRE = """
local window, leases, pause = KEYS[1], KEYS[2], KEYS[3]
local per_minute, concurrent = tonumber(ARGV[1]), tonumber(ARGV[2])
local window_ms, lease_ms, token = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local paused = redis.call('PTTL', pause)
if paused > 0 then return paused end
redis.call('ZREMRANGEBYSCORE', window, '-inf', now - window_ms)
redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
if redis.call('ZCARD', leases) >= concurrent then return -1 end
if redis.call('ZCARD', window) >= per_minute then
  local oldest = redis.call('ZRANGE', window, 0, 0, 'WITHSCORES')
  return math.max(tonumber(oldest[2]) + window_ms - now, 1)
end
redis.call('ZADD', window, now, token)
redis.call('ZADD', leases, now + lease_ms, token)
redis.call('PEXPIRE', window, window_ms + 1000)
redis.call('PEXPIRE', leases, lease_ms + 1000)
return 0
"""


class RealmLimiter:
    def __init__(
        self,
        redis: Redis,
        *,
        per_minute: int = PER_MINUTE,
        concurrent: int = CONCURRENT,
        lease_ms: int = LEASE_MS,
        prefix: str = "qbo:limit",
    ) -> None:
        self.redis = redis
        self.per_minute = per_minute
        self.concurrent = concurrent
        self.lease_ms = lease_ms
        self.prefix = prefix
        self._script: Any = redis.register_script(_ACQUIRE)

    def _keys(self, realm: str) -> list[str]:
        return [f"{self.prefix}:{realm}:window", f"{self.prefix}:{realm}:leases", f"{self.prefix}:{realm}:pause"]

    @asynccontextmanager
    async def slot(self, realm: str) -> AsyncIterator[None]:
        """Wait for a request slot of `realm` (TimeoutError after MAX_WAIT_S), hold it for the call."""
        token = uuid.uuid4().hex
        keys = self._keys(realm)
        deadline = time.monotonic() + MAX_WAIT_S
        while True:
            wait_ms = int(
                await self._script(keys=keys, args=[self.per_minute, self.concurrent, WINDOW_MS, self.lease_ms, token])
            )
            if wait_ms == 0:
                break
            pause = POLL_S if wait_ms < 0 else min(wait_ms / 1000, 5.0)
            if time.monotonic() + pause > deadline:
                raise TimeoutError(f"no QuickBooks request slot for realm {realm} within {MAX_WAIT_S:.0f}s")
            await asyncio.sleep(pause)
        try:
            yield
        finally:
            await self.redis.zrem(keys[1], token)

    async def pause(self, realm: str, seconds: float) -> None:
        """QuickBooks answered 429: nobody calls this realm for `seconds`."""
        await self.redis.set(self._keys(realm)[2], "1", px=max(int(seconds * 1000), 1))
