"""Alembic runs as the table owner (DATABASE_MIGRATION_URL, else DATABASE_URL), never as the app role."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from spotless.db.base import metadata
from spotless.db.roles import ensure_login_role
from spotless.domain import registry
from spotless.settings import normalize_database_url

registry.import_models()
config = context.config


def _url() -> str:
    url = config.attributes.get("database_url") or os.environ.get("DATABASE_MIGRATION_URL") or os.environ.get(
        "DATABASE_URL"
    )
    if not url:
        raise RuntimeError("Set DATABASE_URL (or DATABASE_MIGRATION_URL) to run migrations")
    return normalize_database_url(url)


def _configure(connection: Connection | None = None, **kwargs: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        compare_server_default=False,
        render_as_batch=False,
        transaction_per_migration=True,
        **kwargs,  # type: ignore[arg-type]
    )


def run_offline() -> None:
    _configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _provision_app_login(connection: Connection) -> None:
    """The app's own LOGIN role, a member of the app role only (spotless/db/roles.py), when
    DATABASE_APP_LOGIN names it: every `migrate` makes sure it exists, so a deploy needs no
    hand-run SQL. Unset (dev, or an operator who manages roles), nothing happens."""
    login = os.environ.get("DATABASE_APP_LOGIN")
    if not login:
        return
    password = os.environ.get("DATABASE_APP_LOGIN_PASSWORD") or None
    if connection.in_transaction():
        ensure_login_role(connection, login, password)
    else:
        with connection.begin():
            ensure_login_role(connection, login, password)


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()
    _provision_app_login(connection)


async def run_online() -> None:
    engine = create_async_engine(_url(), poolclass=pool.NullPool, hide_parameters=True)
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync)
    await engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
    else:
        asyncio.run(run_online())
