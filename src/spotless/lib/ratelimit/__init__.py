"""Rate limits shared by every API node through Redis.

Algorithm. GCRA in one Lua script (gcra.lua), called with EVALSHA: one Redis round trip per
request, atomic, on Redis' clock, one key `<JOB_NAMESPACE>:rl:<bucket>:<caller>` with a PX expiry.
A policy is `limit` requests per 60 s sustained, of which at most `burst` at once (nginx
`limit_req rate=.. burst=..` semantics, without queueing).

Route classes (`opt={"rate_limit": ...}` on the handler or its controller; "default" when absent):
    default    RATE_LIMIT_PER_MINUTE, burst RATE_LIMIT_BURST     per principal, else per address
    auth       AUTH_RATE_LIMIT_PER_MINUTE (whole quota at once)  per address; the login handler
               adds the "auth-account" bucket per account (5 x that quota, from all addresses)
               with `enforce(limiter, ACCOUNT_BUCKET, key)`
    admin      ADMIN_ACTION_RATE_LIMIT_PER_MINUTE               per principal
    public     PUBLIC_RATE_LIMIT_PER_MINUTE                     per address
    expensive  EXPENSIVE_RATE_LIMIT_PER_MINUTE (exports ...)    per principal
    exempt     health, readiness, metrics, incoming webhooks: never counted
A per-minute value of 0 turns its class off. IPv6 addresses are partitioned by /64.

Headers (draft-ietf-httpapi-ratelimit-headers-09..11, Structured Fields), on every limited response:
    RateLimit-Policy: "default";q=120;w=60   q = `limit` requests per w seconds
    RateLimit: "default";r=29;t=1            r = requests available right now (at most `burst`);
                                             t = seconds until the quota is whole again
A refusal is 429 application/problem+json, type /problems/rate-limited, with `policy` and
`retry_after` members, `Retry-After: <whole seconds, at least 1>` and `RateLimit: ...;r=0;t=<same>`.

Redis slow or down. A decision waits at most RATE_LIMIT_REDIS_TIMEOUT_MS (socket timeouts and an
asyncio deadline). A failure counts `ratelimit_backend_errors_total{reason}` and opens the process'
circuit breaker for that Redis server (lib/circuit.py; shared with the session check and sign-in
throttling, so whichever sees the outage first spares the others their timeout). While it is open,
decisions come from the in-memory GCRA without trying Redis (per process, so a fleet of N processes
admits up to N times the quota meanwhile), `ratelimit_fallback_active` is 1 and one warning is
logged; the breaker's probe (every REDIS_BREAKER_COOLDOWN_SECONDS) closes it when Redis answers.
No request fails because of the limiter. Refusals are counted in `http_429_total{bucket}`.
"""

from spotless.lib.ratelimit.limiter import Decision, Limiter, create_limiter_client
from spotless.lib.ratelimit.middleware import (
    RateLimitMiddleware,
    bearer_principal_resolver,
    enforce,
    rate_limited,
    ratelimit_headers,
)
from spotless.lib.ratelimit.policies import (
    ACCOUNT_BUCKET,
    ROUTE_CLASSES,
    Policy,
    check_route_classes,
    policies_from_settings,
)

__all__ = [
    "ACCOUNT_BUCKET",
    "ROUTE_CLASSES",
    "Decision",
    "Limiter",
    "Policy",
    "RateLimitMiddleware",
    "bearer_principal_resolver",
    "check_route_classes",
    "create_limiter_client",
    "enforce",
    "policies_from_settings",
    "rate_limited",
    "ratelimit_headers",
]
