"""create_app(settings) -> Litestar: the one place plugins, middleware, stores and controllers meet."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from advanced_alchemy.extensions.litestar import (
    AsyncSessionConfig,
    SQLAlchemyAsyncConfig,
    SQLAlchemyPlugin,
)
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.plugins.prometheus import PrometheusConfig

from spotless.db.engine import create_engine
from spotless.db.migrations import head_revision
from spotless.domain import registry
from spotless.lib.errors import exception_handlers, problem_details_plugin
from spotless.lib.jobs.broker import build_broker
from spotless.lib.jobs.outbox import OutboxRelay, install_relay
from spotless.lib.logging import AccessLogMiddleware, configure_logging
from spotless.lib.redis import create_redis
from spotless.lib.request_context import RequestIdMiddleware
from spotless.settings import Settings

API_VERSION = "0.1.0"


def create_app(settings: Settings) -> Litestar:
    configure_logging(settings.log_level)
    registry.import_models()
    registry.import_jobs()
    engine = create_engine(settings.database, application_name="spotless-api")
    db_config = SQLAlchemyAsyncConfig(
        engine_instance=engine,
        session_config=AsyncSessionConfig(expire_on_commit=False),
        before_send_handler="autocommit",
        set_default_exception_handler=False,
    )
    redis = create_redis(settings.redis)
    expected_revision = head_revision()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        broker = build_broker(settings)
        relay = OutboxRelay(db_config.create_session_maker(), broker)  # type: ignore[arg-type]
        install_relay(relay)
        app.state.relay = relay
        try:
            yield
        finally:
            await relay.drain()
            install_relay(None)
            await redis.aclose()
            broker.close()

    middleware = [RequestIdMiddleware, AccessLogMiddleware]
    plugins = [SQLAlchemyPlugin(config=db_config), problem_details_plugin()]
    if settings.metrics.enabled:
        prometheus = PrometheusConfig(
            app_name="spotless", prefix="http", group_path=True, exclude_unhandled_paths=True,
            exclude=["^/metrics$"],
        )
        middleware.append(prometheus.middleware)  # type: ignore[arg-type]

    handlers = registry.controllers()
    if not settings.metrics.enabled:
        handlers = [h for h in handlers if getattr(h, "path", "") != "/metrics"]

    return Litestar(
        route_handlers=handlers,
        plugins=plugins,
        middleware=[m if isinstance(m, DefineMiddleware) else DefineMiddleware(m) for m in middleware],  # type: ignore[arg-type]
        lifespan=[lifespan],
        state=State({"settings": settings, "redis": redis, "engine": engine, "expected_revision": expected_revision, "api_version": API_VERSION}),
        cors_config=CORSConfig(allow_origins=list(settings.http.cors_origins)) if settings.http.cors_origins else None,
        openapi_config=OpenAPIConfig(
            title="Spotless API", version=API_VERSION, path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
        exception_handlers=exception_handlers(),
        request_max_body_size=settings.http.max_body_bytes,
        logging_config=None,  # ours (JSON lines, configured above) stays in charge
        debug=False,
    )



def create_app_from_env() -> Litestar:
    """Entry point for uvicorn's --factory: settings are read here, at start, never at import."""
    from spotless.settings import load_settings

    return create_app(load_settings())
