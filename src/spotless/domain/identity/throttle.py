"""Sign-in (and reset-request) attempt budgets in Redis, shared by every node.

Three counters per attempt, all keyed by hashes (the normalised email counted whether or not the
account exists, so a 429 says nothing about existence):
- (account, source address): the tight one (AUTH_LOGIN_MAX_FAILURES). Someone guessing from one
  address locks only that address out of that account, never the owner signing in from theirs;
- account: a generous ceiling (AUTH_LOGIN_MAX_FAILURES_PER_ACCOUNT) against guesses spread over
  many addresses;
- source address: AUTH_LOGIN_MAX_FAILURES_PER_IP, against one address trying many accounts.

An attempt is counted before the password is verified, in one Lua script (check every budget,
then increment every counter, atomically): parallel guesses cannot all pass a check that none has
counted yet, and a refused attempt costs no argon2 work. A successful sign-in gives its attempt
back and clears its (account, address) counter. If Redis is unreachable the budget is skipped
(logged): sign-in stays available, and the rate limiter and argon2's cost still bound guessing."""

from __future__ import annotations

import hashlib
import logging

from redis.asyncio import Redis

from spotless.lib.errors import Problem
from spotless.lib.redis import breaker_of

logger = logging.getLogger("spotless.identity.throttle")

# KEYS: counters; ARGV[1]: window seconds; ARGV[1 + i]: the limit of KEYS[i].
# Returns {1, 0} when admitted (and counted), {0, ttl} when a budget is spent (nothing counted).
_ATTEMPT = """
for i, key in ipairs(KEYS) do
    local count = tonumber(redis.call('GET', key) or '0')
    if count >= tonumber(ARGV[i + 1]) then
        local ttl = redis.call('TTL', key)
        if ttl < 1 then ttl = tonumber(ARGV[1]) end
        return {0, ttl}
    end
end
for _, key in ipairs(KEYS) do
    if redis.call('INCR', key) == 1 then
        redis.call('EXPIRE', key, ARGV[1])
    end
end
return {1, 0}
"""
# KEYS[1]: the (account, address) counter, cleared; KEYS[2..]: counters given one attempt back.
_REFUND = """
redis.call('DEL', KEYS[1])
for i = 2, #KEYS do
    if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then
        redis.call('DECR', KEYS[i])
    end
end
return 1
"""


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def account_key(email: str) -> str:
    """The account as rate-limit buckets name it (a hash, never the address itself)."""
    return f"account:{_digest(normalise_email(email))}"


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
        self,
        redis: Redis,
        namespace: str,
        purpose: str,
        *,
        max_per_account_and_ip: int,
        max_per_account: int,
        max_per_ip: int,
        window_seconds: int,
    ) -> None:
        self.redis = redis
        # Shared with the session check and the limiter: while Redis is out, skip it at once.
        self.breaker = breaker_of(redis)
        self.prefix = f"{namespace}:throttle:{purpose}"
        self.max_per_pair = max_per_account_and_ip
        self.max_per_account = max_per_account
        self.max_per_ip = max_per_ip
        self.window = window_seconds
        self._attempt = redis.register_script(_ATTEMPT)
        self._refund = redis.register_script(_REFUND)

    def _keys(self, email: str, ip: str | None) -> tuple[list[str], list[int]]:
        account = _digest(normalise_email(email))
        source = _digest(ip or "unknown")
        keys = [f"{self.prefix}:pair:{account}:{source}", f"{self.prefix}:acct:{account}"]
        limits = [self.max_per_pair, self.max_per_account]
        if ip:
            keys.append(f"{self.prefix}:ip:{source}")
            limits.append(self.max_per_ip)
        return keys, limits

    async def attempt(self, email: str, ip: str | None) -> None:
        """Count one attempt, or raise 429 (with Retry-After) when a budget is spent."""
        keys, limits = self._keys(email, ip)
        try:
            admitted, ttl = await self.breaker.guard(lambda: self._attempt(keys=keys, args=[self.window, *limits]))
        except Exception:
            logger.warning("throttle skipped: Redis unavailable", exc_info=True)
            return
        if not int(admitted):
            raise too_many_attempts(int(ttl))

    async def over_budget(self, email: str, ip: str | None) -> bool:
        """Count one request; True when it is over budget (for answers that must not differ)."""
        try:
            await self.attempt(email, ip)
        except Problem:
            return True
        return False

    async def succeeded(self, email: str, ip: str | None) -> None:
        """The attempt was the account's owner: give it back and clear this address's counter."""
        keys, _ = self._keys(email, ip)
        try:
            await self.breaker.guard(lambda: self._refund(keys=keys))
        except Exception:
            logger.warning("could not clear the attempt counter", exc_info=True)
