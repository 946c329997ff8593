"""create_app(settings) -> Litestar: the one place plugins, middleware, stores and controllers meet."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from advanced_alchemy.extensions.litestar import (
    AsyncSessionConfig,
    SQLAlchemyAsyncConfig,
    SQLAlchemyPlugin,
)
from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.plugins.base import PluginProtocol
from litestar.types import ASGIApp, Receive, Scope, Send

from spotless.db.engine import SESSION_INFO, create_engine
from spotless.db.migrations import head_revision
from spotless.db.unit_of_work import UnitOfWorkMiddleware
from spotless.domain import registry
from spotless.domain.identity.authn import build_identity
from spotless.domain.identity.sessions import SESSION_PUBLISHER_INFO_KEY
from spotless.lib.body import BodyRequest
from spotless.lib.bounds import BoundsPlugin
from spotless.lib.dependencies import resolve_dependencies_in_order
from spotless.lib.edge import OPERATIONAL_PATHS, AllowedHostsMiddleware, cors_config, security_headers
from spotless.lib.errors import document_problem_responses, exception_handlers, problem_details_plugin
from spotless.lib.heap import freeze_startup_heap
from spotless.lib.jobs.broker import build_broker
from spotless.lib.jobs.outbox import OutboxRelay, install_relay
from spotless.lib.logging import RequestObserver, configure_logging
from spotless.lib.metrics import export_route_series
from spotless.lib.openapi import ResponseSchemaPlugin
from spotless.lib.ratelimit import Limiter, RateLimitMiddleware, bearer_principal_resolver, check_route_classes
from spotless.lib.redis import create_redis, redis_breaker
from spotless.settings import Settings

API_VERSION = "0.1.0"


class OperationalBypass:
    """Liveness, readiness and metrics (`OPERATIONAL_PATHS`) skip the Host check (probes come with
    any Host), the rate limiter (exempt), authentication (public; /metrics checks its own token)
    and the unit of work (they use no request session): one set lookup instead of four layers.
    Every other route goes through `guarded`, built once per route."""

    def __init__(self, app: ASGIApp, *, guarded: list[DefineMiddleware]) -> None:
        self.direct = app
        for layer in reversed(guarded):
            app = layer(app)
        self.guarded = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("path") in OPERATIONAL_PATHS:
            await self.direct(scope, receive, send)
        else:
            await self.guarded(scope, receive, send)


def create_app(settings: Settings) -> Litestar:
    configure_logging(settings.log_level)
    resolve_dependencies_in_order()
    registry.import_models()
    registry.import_jobs()
    engine = create_engine(settings.database, application_name="spotless-api")
    redis = create_redis(settings.redis)
    expected_revision = head_revision()
    identity = build_identity(settings, engine)
    # The request's session is committed by UnitOfWorkMiddleware (db/unit_of_work.py), before the
    # response is sent; the plugin's default before-send handler only closes it afterwards.
    db_config = SQLAlchemyAsyncConfig(
        engine_instance=engine,
        session_config=AsyncSessionConfig(
            expire_on_commit=False, info={**SESSION_INFO, SESSION_PUBLISHER_INFO_KEY: identity.checker}
        ),
        set_default_exception_handler=False,
    )
    limiter = Limiter.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        check_route_classes(app)
        await limiter.warm_up()
        broker = build_broker(settings, breaker=redis_breaker(settings.redis))  # fails fast while Redis is out
        relay = OutboxRelay(db_config.create_session_maker(), broker)  # type: ignore[arg-type]
        install_relay(relay)
        app.state.relay = relay
        freeze_startup_heap()
        try:
            yield
        finally:
            await relay.drain()
            install_relay(None)
            await redis.aclose()
            await identity.close()
            await limiter.aclose()
            broker.close()

    plugins: list[PluginProtocol] = [
        SQLAlchemyPlugin(config=db_config),
        problem_details_plugin(),
        BoundsPlugin(),
        ResponseSchemaPlugin(),
    ]
    # What every route but the operational ones goes through, outermost first.
    # A bad Host is refused before it spends quota; all of these run before guards and handlers.
    guarded: list[DefineMiddleware] = [DefineMiddleware(AllowedHostsMiddleware, settings=settings)]
    if settings.rate_limit.enabled:
        # The caller is the bearer token's user when the token verifies, else the client address.
        # Verified once per process and token, shared with authentication (identity's `VerifiedTokens`).
        resolver = bearer_principal_resolver(settings, identity.authenticator.tokens.peek_subject)
        guarded.append(
            DefineMiddleware(RateLimitMiddleware, limiter=limiter, settings=settings, principal_resolver=resolver)
        )
    # Authentication next to last: the principal and its RLS scope wrap the handler and its commit.
    guarded.append(identity.middleware)
    # Innermost: the unit of work commits before the answer leaves and can rerun the handler alone
    # (no second rate-limit hit, no second authentication).
    guarded.append(DefineMiddleware(UnitOfWorkMiddleware, session_scope_key=db_config.session_scope_key))
    middleware = [
        # Outermost: request id, the status captured once, the access-log line and the request metrics.
        DefineMiddleware(RequestObserver, metrics=settings.metrics.enabled),
        DefineMiddleware(OperationalBypass, guarded=guarded),
    ]

    handlers = registry.controllers()
    if not settings.metrics.enabled:
        handlers = [h for h in handlers if getattr(h, "path", "") != "/metrics"]

    app = Litestar(
        route_handlers=handlers,
        plugins=plugins,
        middleware=middleware,
        lifespan=[lifespan],
        # `settings` and `org` are provided to handlers, never re-read or re-fetched inside them.
        dependencies={
            **identity.dependencies,
            "settings": Provide(lambda: settings, use_cache=True, sync_to_thread=False),
        },
        state=State(
            {
                "settings": settings,
                "redis": redis,
                "engine": engine,
                "expected_revision": expected_revision,
                "api_version": API_VERSION,
                "rate_limiter": limiter,
            }
        ),
        cors_config=cors_config(settings),
        before_send=[security_headers(settings)],
        openapi_config=OpenAPIConfig(
            title="Spotless API",
            version=API_VERSION,
            path="/schema",
            # The API documentation is public (identity's middleware and guard read `public`).
            openapi_router=Router("/schema", route_handlers=[], include_in_schema=False, opt={"public": True}),
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
        exception_handlers=exception_handlers(),
        request_max_body_size=settings.http.max_body_bytes,
        request_class=BodyRequest,
        logging_config=None,  # ours (JSON lines, configured above) stays in charge
        debug=False,
    )
    document_problem_responses(app)
    if settings.metrics.enabled:
        export_route_series(
            (m, r.path_format) for r in app.routes for m in getattr(r, "methods", ()) if m not in ("HEAD", "OPTIONS")
        )
    return app


def create_app_from_env() -> Litestar:
    """Entry point for uvicorn's --factory: settings are read here, at start, never at import."""
    from spotless.settings import load_settings

    return create_app(load_settings())
