"""Authentication middleware, the permission guard, and their wiring into the app.

Every route is authenticated unless its handler says `opt={"public": True}`. An authenticated
request carries a `Principal` in `scope["user"]`, and its database session is scoped to the
principal's organisation (RLS) for the whole request."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.db.engine import reset_request_org, set_request_org
from spotless.domain.audit.public import reset_client_ip, set_client_ip
from spotless.domain.identity.permissions import permissions_for
from spotless.domain.identity.principal import Principal, provide_principal, unauthenticated
from spotless.domain.identity.public import provide_org
from spotless.domain.identity.session_cache import SessionChecker
from spotless.domain.identity.throttle import FailureThrottle
from spotless.domain.identity.tokens import AccessClaims, bearer_token, decode_access_token
from spotless.lib.edge import client_ip
from spotless.lib.errors import Problem
from spotless.lib.redis import create_redis, ssl_context
from spotless.lib.request_context import annotate
from spotless.lib.resp import RespClient
from spotless.settings import Settings

logger = logging.getLogger("spotless.identity.authn")

PUBLIC_OPT = "public"
PERMISSION_OPT = "permission"
# Routes a member with a temporary password may still call (to replace it, or to leave).
PASSWORD_CHANGE_OPT = "allowed_with_temp_password"


class VerifiedTokens:
    """Access tokens already verified in this process (signature, issuer, audience, required
    claims), by their exact text: verifying one is ~470 Python calls (PyJWT), and every request
    needed it twice (the rate limiter's caller, then authentication). A hit is used only while
    its `exp` has not passed; past it the token is verified again (PyJWT applies the leeway), so
    what is accepted is unchanged. Only valid tokens are kept, at most `size`, oldest out first.
    Whether the session still stands is checked on every request regardless (`SessionChecker`)."""

    def __init__(self, settings: Settings, size: int = 4096, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.size = size
        self.clock = clock
        self._claims: dict[str, tuple[AccessClaims, float]] = {}

    def claims(self, token: str) -> AccessClaims | None:
        hit = self._claims.get(token)
        if hit is not None and hit[1] > self.clock():
            return hit[0]
        claims = decode_access_token(self.settings, token)
        if claims is None:
            self._claims.pop(token, None)
            return None
        if hit is None:
            if len(self._claims) >= self.size:
                del self._claims[next(iter(self._claims))]
            self._claims[token] = (claims, claims.expires_at.timestamp())
        return claims

    def peek_subject(self, settings: Settings, token: str) -> str | None:
        """`tokens.peek_subject` through this cache: the rate limiter's principal resolver."""
        claims = self.claims(token)
        return f"user:{claims.user_id}" if claims else None


class Authenticator:
    def __init__(self, settings: Settings, checker: SessionChecker) -> None:
        self.settings = settings
        self.checker = checker
        self.tokens = VerifiedTokens(settings)

    async def authenticate(self, authorization: str | None) -> Principal:
        token = bearer_token(authorization)
        if token is None:
            raise unauthenticated()
        claims = self.tokens.claims(token)
        if claims is None:
            raise unauthenticated("The access token is invalid or has expired.")
        try:
            state = await self.checker.check(claims.org_id, claims.user_id, claims.session_id)
        except Exception:
            # Neither Redis nor Postgres could say whether the session stands: that is an outage
            # (503, retry), not a client error and not a reason to let the request through.
            logger.exception("session check failed on both Redis and Postgres")
            raise Problem(
                503,
                "service-unavailable",
                "A dependency is unavailable",
                "Sessions cannot be verified right now; retry shortly.",
                headers={"Retry-After": "2"},
            ) from None
        if not state.usable:
            raise unauthenticated("The session has ended; sign in again.")
        return Principal(
            user_id=claims.user_id,
            org_id=claims.org_id,
            session_id=claims.session_id,
            role=state.role,
            permissions=permissions_for(state.role),
            email=claims.email,
            password_change_required=state.password_change_required,
        )


class AuthenticationMiddleware:
    """Pure ASGI (no `ASGIConnection` or `AuthenticationResult` per request): routes whose handler
    says `opt={"public": True}`, and CORS preflights, pass untouched; every other request carries a `Principal` in
    `scope["user"]`, and its organisation (RLS) and client address for the rest of the request, once
    `authorize` has found the route's permission in the principal's role. Installed app-wide, so no
    route escapes it (the operational routes that bypass it are all public)."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler: Any = scope.get("route_handler")
        # As Litestar's authentication middleware: CORS preflights (OPTIONS) are never authenticated.
        if (
            scope["type"] != "http"
            or scope.get("method") == "OPTIONS"
            or (handler is not None and handler.opt.get(PUBLIC_OPT))
        ):
            await self.app(scope, receive, send)
            return
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        principal = await self.authenticator.authenticate(authorization)
        if handler is not None:
            authorize(principal, handler)
        scope["user"] = principal
        scope["auth"] = None
        annotate(org_id=principal.org_id, user_id=principal.user_id, role=principal.role)
        ip_token = set_client_ip(client_ip(scope, self.authenticator.settings))
        token = set_request_org(principal.org_id)
        try:
            await self.app(scope, receive, send)
        finally:
            reset_request_org(token)
            reset_client_ip(ip_token)


def forbidden(detail: str = "Your role does not allow this action.") -> Problem:
    return Problem(403, "forbidden", "You do not have permission for this action", detail)


def authorize(principal: Principal, handler: Any) -> None:
    """Every non-public route names its permission; a route that forgot is refused, not opened.
    Run by the authentication middleware, not as a Litestar guard: a guard costs a copy of the
    route handler per request (`authorize_connection` copies it for each guard), ~6 % of a cheap
    route's time on a profile."""
    opt = handler.opt
    if principal.password_change_required and not opt.get(PASSWORD_CHANGE_OPT):
        raise Problem(
            403,
            "password-change-required",
            "Change your temporary password first",
            "Your password was issued by an administrator; set your own with POST /v1/auth/change-password.",
        )
    permission = opt.get(PERMISSION_OPT)
    if not permission:
        raise forbidden("This route declares no permission.")
    if permission not in principal.permissions:
        raise forbidden(f"Your role does not include the '{permission}' permission.")


@dataclass
class IdentityRuntime:
    """What identity handlers need besides the db session; injected as `identity`."""

    settings: Settings
    checker: SessionChecker
    login_throttle: FailureThrottle
    reset_throttle: FailureThrottle


@dataclass
class IdentityWiring:
    middleware: DefineMiddleware
    dependencies: dict[str, Provide]
    redis: Redis
    checker: SessionChecker
    authenticator: Authenticator
    runtime: IdentityRuntime

    async def close(self) -> None:
        await self.redis.aclose()
        if self.checker.fast is not None:
            await self.checker.fast.aclose()


def build_identity(settings: Settings, engine: AsyncEngine) -> IdentityWiring:
    """Everything create_app needs from identity; the session-check Redis client has a tight
    timeout of its own so a slow Redis degrades to Postgres instead of stalling every request."""
    timeout = settings.auth.session_check_timeout_ms / 1000
    redis = create_redis(settings.redis, socket_timeout=timeout)
    fast = RespClient(
        settings.redis.url, connect_timeout=max(0.25, 5 * timeout), ssl_context=ssl_context(settings.redis)
    )
    checker = SessionChecker(
        redis,
        engine,
        settings.jobs.namespace,
        settings.auth.access_token_ttl_minutes * 60,
        fast=fast,
        timeout_seconds=timeout,
    )
    authenticator = Authenticator(settings, checker)
    auth = settings.auth
    runtime = IdentityRuntime(
        settings=settings,
        checker=checker,
        login_throttle=FailureThrottle(
            redis,
            settings.jobs.namespace,
            "login",
            max_per_account_and_ip=auth.login_max_failures,
            max_per_account=auth.login_max_failures_per_account,
            max_per_ip=auth.login_max_failures_per_ip,
            window_seconds=auth.login_lockout_seconds,
        ),
        # Reset emails: a few per hour per account, so the endpoint cannot be used to flood a mailbox.
        reset_throttle=FailureThrottle(
            redis,
            settings.jobs.namespace,
            "reset",
            max_per_account_and_ip=3,
            max_per_account=3,
            max_per_ip=30,
            window_seconds=3600,
        ),
    )

    def provide_identity() -> IdentityRuntime:
        return runtime

    return IdentityWiring(
        middleware=DefineMiddleware(AuthenticationMiddleware, authenticator=authenticator),
        dependencies={
            "principal": Provide(provide_principal, sync_to_thread=False),
            "org": Provide(provide_org),
            "identity": Provide(provide_identity, sync_to_thread=False),
        },
        redis=redis,
        checker=checker,
        authenticator=authenticator,
        runtime=runtime,
    )
