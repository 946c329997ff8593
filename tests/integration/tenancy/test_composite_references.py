"""The database itself refuses a reference into another organisation.

Referential checks ignore row-level security, so with foreign keys on `id` alone a row of
organisation A could point at B's client, worker or service whenever code skipped its scoped
look-up. Every reference between tenant tables is `(x_id, org_id)` onto `UNIQUE (org_id, id)`."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.db.engine import create_engine
from tests.support.factories import World, arrange_world


async def test_every_reference_between_tenant_tables_carries_org_id(owner_engine: AsyncEngine) -> None:
    async with owner_engine.connect() as conn:
        tenant_tables = set(
            (
                await conn.execute(
                    text(
                        "SELECT table_name FROM information_schema.columns "
                        "WHERE table_schema = 'public' AND column_name = 'org_id'"
                    )
                )
            )
            .scalars()
            .all()
        )
        rows = (
            await conn.execute(
                text(
                    """
                    SELECT c.conname, c.conrelid::regclass::text AS source, c.confrelid::regclass::text AS target,
                           ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i) AS cols,
                           ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                                 JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i) AS refs
                    FROM pg_constraint c
                    WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
                    """
                )
            )
        ).all()
    between_tenants = [r for r in rows if r.source in tenant_tables and r.target in tenant_tables]
    assert len(between_tenants) >= 25, "the schema should have many references between tenant tables"
    plain = [
        f"{r.conname}: {r.source}{r.cols} -> {r.target}{r.refs}"
        for r in between_tenants
        if "org_id" not in r.cols or r.refs[r.cols.index("org_id")] != "org_id"
    ]
    assert not plain, f"references that do not carry org_id onto the target's org_id: {plain}"


# Raw SQL as the application role: statements no service would issue, refused by the database itself.
Insert = Callable[[World, World], tuple[str, dict[str, Any]]]

_AUDIT = "gen_random_uuid(), now(), now()"
INSERTS: dict[str, Insert] = {
    "an address for another organisation's client": lambda a, b: (
        "INSERT INTO client_address (org_id, client_id, line1, city, country, id, created_at, updated_at) "
        f"VALUES (:org, :client, '1 Main St', 'Toronto', 'CA', {_AUDIT})",
        {"org": a.org_id, "client": b.client_id},
    ),
    "weekly hours for another organisation's worker": lambda a, b: (
        "INSERT INTO working_hours (org_id, worker_id, weekday, start_time, end_time, id, created_at, updated_at) "
        f"VALUES (:org, :worker, 0, '05:00', '06:00', {_AUDIT})",
        {"org": a.org_id, "worker": b.worker_ids[0]},
    ),
    "a booking of another organisation's service": lambda a, b: (
        "INSERT INTO booking (org_id, client_id, address_id, service_id, starts_at, ends_at, status, frequency,"
        " price, total_cents, currency, estimated_minutes, params, addon_ids, id, created_at, updated_at) "
        "VALUES (:org, :client, :address, :service, now() + interval '1 day', now() + interval '25 hours',"
        f" 'pending', 'once', '{{}}', 0, 'CAD', 60, '{{}}', '[]', {_AUDIT})",
        {"org": a.org_id, "client": a.client_id, "address": a.address_id, "service": b.service_id},
    ),
    "a booking at another organisation's address": lambda a, b: (
        "INSERT INTO booking (org_id, client_id, address_id, service_id, starts_at, ends_at, status, frequency,"
        " price, total_cents, currency, estimated_minutes, params, addon_ids, id, created_at, updated_at) "
        "VALUES (:org, :client, :address, :service, now() + interval '1 day', now() + interval '25 hours',"
        f" 'pending', 'once', '{{}}', 0, 'CAD', 60, '{{}}', '[]', {_AUDIT})",
        {"org": a.org_id, "client": a.client_id, "address": b.address_id, "service": a.service_id},
    ),
    "a series cleaner from another organisation": lambda a, b: (
        "WITH s AS (INSERT INTO booking_series (org_id, client_id, address_id, service_id, frequency, interval,"
        " start_time, timezone, anchor_date, params, addon_ids, status, id, created_at, updated_at)"
        " VALUES (:org, :client, :address, :service, 'weekly', 1, '09:00', 'UTC', current_date, '{}', '[]',"
        f" 'active', {_AUDIT}) RETURNING id, org_id) "
        "INSERT INTO booking_series_worker (org_id, series_id, worker_id, position, id, created_at, updated_at) "
        f"SELECT s.org_id, s.id, :worker, 0, {_AUDIT} FROM s",
        {
            "org": a.org_id,
            "client": a.client_id,
            "address": a.address_id,
            "service": a.service_id,
            "worker": b.worker_ids[0],
        },
    ),
}


@pytest.mark.parametrize("case", sorted(INSERTS))
async def test_the_database_refuses_a_cross_organisation_reference(owner_engine: AsyncEngine, settings, case: str):
    """As the app role, scoped to A by RLS, bypassing every service-level check (raw SQL)."""
    a = await arrange_world(owner_engine)
    b = await arrange_world(owner_engine)
    statement, params = INSERTS[case](a, b)
    engine = create_engine(settings.database, application_name="fk-test")
    try:
        with pytest.raises(IntegrityError) as refused:
            async with engine.connect() as conn, conn.begin():
                await conn.execute(text("SELECT set_config('app.org_id', :org, true)"), {"org": str(a.org_id)})
                await conn.execute(text(statement), params)
        assert getattr(refused.value.orig, "sqlstate", None) == "23503"  # foreign_key_violation
        # The same statement with A's own ids is accepted: the refusal is the reference, nothing else.
        own, own_params = INSERTS[case](a, a)
        async with engine.connect() as conn, conn.begin():
            await conn.execute(text("SELECT set_config('app.org_id', :org, true)"), {"org": str(a.org_id)})
            await conn.execute(text(own), own_params)
    finally:
        await engine.dispose()
    assert uuid.UUID(str(a.org_id)) != b.org_id
