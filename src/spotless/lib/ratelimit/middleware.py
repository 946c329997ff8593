"""ASGI middleware: picks the policy from the route's `opt["rate_limit"]`, the caller from the
principal or the client address, asks the limiter once, and writes the RateLimit headers."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from spotless.lib.edge import client_ip, ip_partition, send_problem
from spotless.lib.errors import Problem
from spotless.lib.metrics import HTTP_429
from spotless.lib.ratelimit.limiter import Decision, Limiter
from spotless.lib.ratelimit.policies import Policy, route_class
from spotless.lib.request_context import annotate
from spotless.settings import Settings

logger = logging.getLogger("spotless.ratelimit")

PrincipalResolver = Callable[[Scope], "str | None"]

_TITLE = "Too many requests"


def retry_after_seconds(decision: Decision) -> int:
    """Retry-After in whole seconds, never 0 (a client told 0 retries at once and is refused again)."""
    return max(1, math.ceil(decision.retry_after))


def ratelimit_item(policy: Policy, decision: Decision) -> bytes:
    """RateLimit item: `"default";r=<available now>;t=<seconds>`. On a refusal `t` is the
    Retry-After; otherwise the seconds until the quota is whole again."""
    seconds = retry_after_seconds(decision) if not decision.allowed else math.ceil(decision.reset_after)
    return f'"{policy.name}";r={decision.remaining};t={seconds}'.encode("latin-1")


def ratelimit_headers(policy: Policy, decision: Decision) -> list[tuple[bytes, bytes]]:
    headers = [(b"ratelimit-policy", policy.header), (b"ratelimit", ratelimit_item(policy, decision))]
    if not decision.allowed:
        headers.append((b"retry-after", str(retry_after_seconds(decision)).encode("latin-1")))
    return headers


def _detail(policy: Policy, retry_after: int) -> str:
    return (
        f"Rate limit {policy.name!r} of {policy.limit} requests per {policy.window_seconds}s exceeded; "
        f"retry in {retry_after}s."
    )


def rate_limited(policy: Policy, decision: Decision) -> Problem:
    """The 429 for handlers that call the limiter themselves (see `enforce`)."""
    retry_after = retry_after_seconds(decision)
    headers = {name.decode(): value.decode() for name, value in ratelimit_headers(policy, decision)}
    return Problem(
        429,
        "rate-limited",
        _TITLE,
        _detail(policy, retry_after),
        headers=headers,
        policy=policy.name,
        retry_after=retry_after,
    )


async def enforce(limiter: Limiter, bucket: str, key: str) -> Decision:
    """Count one request of `key` in `bucket` (a policy name, e.g. "auth-account") from inside a
    handler; raises the 429 problem when refused. For limits the route class cannot express,
    such as sign-in attempts per account on top of the per-address "auth" class."""
    policy = limiter.policies[bucket]
    decision = await limiter.hit(bucket, key, policy)
    if not decision.allowed:
        HTTP_429.labels(bucket=bucket).inc()
        annotate(rate_limited=bucket)
        raise rate_limited(policy, decision)
    return decision


def bearer_principal_resolver(settings: Settings, peek: Callable[[Settings, str], str | None]) -> PrincipalResolver:
    """Principal from `Authorization: Bearer <jwt>` via identity's `peek_subject` (signature and
    expiry only). A missing, bad or expired token means: limit by client address."""

    def resolve(scope: Scope) -> str | None:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and token.strip():
                    return peek(settings, token.strip())
                return None
        return None

    return resolve


class RateLimitMiddleware:
    """Counts every request of a limited route class, before guards, body parsing and the handler.

    Exempt: the `exempt` class, CORS preflights (OPTIONS), anything not HTTP. Unmatched paths never
    reach route middleware (Litestar answers 404/405 from the router) and cost no Redis call."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: Limiter,
        settings: Settings,
        principal_resolver: PrincipalResolver | None = None,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.settings = settings
        self.principal_resolver = principal_resolver

    def caller(self, scope: Scope, policy: Policy) -> str:
        if policy.key_by == "caller" and self.principal_resolver is not None:
            try:
                principal = self.principal_resolver(scope)
            except Exception:
                logger.debug("principal resolver failed; limiting by address", exc_info=True)
                principal = None
            if principal:
                return principal
        return ip_partition(client_ip(scope, self.settings))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") == "OPTIONS" or not self.limiter.enabled:
            await self.app(scope, receive, send)
            return
        handler: Any = scope.get("route_handler")
        policy = self.limiter.policies.get(route_class(handler.opt if handler is not None else None))
        if policy is None or not policy.enabled:  # exempt
            await self.app(scope, receive, send)
            return
        decision = await self.limiter.hit(policy.name, self.caller(scope, policy), policy)
        headers = ratelimit_headers(policy, decision)
        if not decision.allowed:
            HTTP_429.labels(bucket=policy.name).inc()
            annotate(rate_limited=policy.name)
            retry_after = retry_after_seconds(decision)
            await send_problem(
                scope,
                send,
                429,
                "rate-limited",
                _TITLE,
                _detail(policy, retry_after),
                headers,
                policy=policy.name,
                retry_after=retry_after,
            )
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)
