"""Seed a large scheduling data set: by default 1,000 organisations with 1,000 bookings each
(1,000,000 bookings and assignments), plus their clients, addresses, a service, workers and weekly
hours.

    DATABASE_URL=postgresql://postgres@127.0.0.1/spotless_bench .venv/bin/python -m scripts.seed_volume
    ... --orgs 1000 --bookings-per-org 1000 [--org-id UUID ...]

Runs as the table owner (DATABASE_MIGRATION_URL, else DATABASE_URL) in one transaction of a few
set-based `INSERT ... SELECT generate_series` statements, so Postgres does the work without a round
trip per row, split over `--jobs` connections (one per core). Ids are derived from (organisation,
kind, number) and ascend in insert order: re-running is a no-op for organisations that already
have bookings. When the owner is a superuser, per-row foreign-key triggers are skipped for the
load (as `pg_restore --disable-triggers` does); the ids are consistent by construction. `--org-id` gives an existing organisation (the benchmark's
own) the same calendar.

Each organisation gets `workers` cleaners; booking k goes to worker k % workers, one visit every
three days per worker, from ~5 months ago to ~5 months ahead: past ones completed (1 in 20
cancelled), future ones pending or confirmed and holding their worker's time (active assignments
under the exclusion constraint), so the planner sees realistic history next to a live calendar.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Sequence

import asyncpg

TIMEZONES = ("America/Toronto", "America/Vancouver", "Europe/London")
PRICE = (
    '{"currency": "CAD", "frequency": "once", "line_items": [], "subtotal_cents": 10000, "discount_bps": 0,'
    ' "discount_cents": 0, "taxable_cents": 10000, "tax_rate_bps": 500, "tax_cents": 500, "total_cents": 10500,'
    ' "estimated_minutes": 120}'
)


def _url() -> str:
    url = os.environ.get("DATABASE_MIGRATION_URL") or os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("set DATABASE_URL (the table owner's connection)")
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


KINDS = {"client": 1, "address": 2, "service": 3, "worker": 4, "hours": 5, "booking": 6, "assignment": 7}


def _key(kind: str, number: str = "0") -> str:
    """SQL for a deterministic uuid of (organisation number, kind, number). Ids ascend with the
    insert order, so every primary key index is appended to rather than written at random."""
    return f"('5eed{KINDS[kind]:04x}' || lpad(to_hex(s.o), 8, '0') || lpad(to_hex(({number})::bigint), 16, '0'))::uuid"


STATEMENTS: tuple[tuple[str, str], ...] = (
    (
        "clients",
        f"""
        INSERT INTO client (id, org_id, name, email, tags, blocked, created_at, updated_at)
        SELECT {_key("client", "c")}, s.org_id, 'Client ' || c, 'client' || c || '@example.com', '{{}}', false,
               now(), now()
        FROM seed_orgs s, generate_series(0, @clients@ - 1) c
    """,
    ),
    (
        "addresses",
        f"""
        INSERT INTO client_address (id, org_id, client_id, line1, city, country, bedrooms, bathrooms,
                                    created_at, updated_at)
        SELECT {_key("address", "c")}, s.org_id, {_key("client", "c")}, c || ' Main St', 'Toronto', 'CA', 2, 1,
               now(), now()
        FROM seed_orgs s, generate_series(0, @clients@ - 1) c
    """,
    ),
    (
        "services",
        f"""
        INSERT INTO service (id, org_id, name, base_price_cents, base_minutes, created_at, updated_at)
        SELECT {_key("service")}, s.org_id, 'Standard clean (seed)', 10000, 120, now(), now() FROM seed_orgs s
    """,
    ),
    (
        "workers",
        f"""
        INSERT INTO worker (id, org_id, name, skills, active, created_at, updated_at)
        SELECT {_key("worker", "w")}, s.org_id, 'Cleaner ' || w, '{{}}', true, now(), now()
        FROM seed_orgs s, generate_series(0, @workers@ - 1) w
    """,
    ),
    (
        "working hours",
        f"""
        INSERT INTO working_hours (id, org_id, worker_id, weekday, start_time, end_time, created_at, updated_at)
        SELECT {_key("hours", "w * 7 + d")}, s.org_id, {_key("worker", "w")}, d,
               time '08:00', time '18:00', now(), now()
        FROM seed_orgs s, generate_series(0, @workers@ - 1) w, generate_series(0, 6) d
    """,
    ),
    (
        "bookings",
        f"""
        INSERT INTO booking (id, org_id, client_id, address_id, service_id, starts_at, ends_at, status,
                             cancel_reason, frequency, price, total_cents, currency, estimated_minutes, params,
                             addon_ids, created_at, updated_at)
        SELECT {_key("booking", "k")}, s.org_id, {_key("client", "k % @clients@")}, {_key("address", "k % @clients@")},
               {_key("service")}, b.starts_at, b.starts_at + interval '2 hours',
               CASE WHEN k % 20 = 0 THEN 'cancelled'
                    WHEN b.starts_at < now() THEN 'completed'
                    WHEN k % 2 = 0 THEN 'confirmed' ELSE 'pending' END,
               CASE WHEN k % 20 = 0 THEN 'seeded cancellation' END,
               'once', @price@::jsonb, 10500, 'CAD', 120, '{{"bedrooms": 2, "bathrooms": 1}}', '[]', now(), now()
        FROM seed_orgs s, generate_series(0, @bookings@ - 1) k,
             LATERAL (SELECT date_trunc('day', now()) + interval '14 hours'
                             + make_interval(days => (k / @workers@) * 3 - (@bookings@ / @workers@) * 3 / 2) AS starts_at) b
    """,
    ),
    (
        "assignments",
        f"""
        INSERT INTO booking_assignment (id, org_id, booking_id, worker_id, starts_at, ends_at, during, active,
                                        created_at, updated_at)
        SELECT {_key("assignment", "k")}, s.org_id, {_key("booking", "k")}, {_key("worker", "k % @workers@")},
               b.starts_at, b.starts_at + interval '2 hours',
               tstzrange(b.starts_at, b.starts_at + interval '2 hours', '[)'),
               k % 20 <> 0 AND b.starts_at >= now(), now(), now()
        FROM seed_orgs s, generate_series(0, @bookings@ - 1) k,
             LATERAL (SELECT date_trunc('day', now()) + interval '14 hours'
                             + make_interval(days => (k / @workers@) * 3 - (@bookings@ / @workers@) * 3 / 2) AS starts_at) b
    """,
    ),
)


async def _fill(
    url: str,
    part: int,
    parts: int,
    values: dict[str, object],
    org_ids: Sequence[uuid.UUID],
    orgs: int,
    timings: dict[str, float],
) -> int:
    """Fill the organisations with `o % parts == part`, in one transaction on its own connection
    (each part keeps a core busy: the statements are CPU-bound inside Postgres)."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            if await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
                # Ids are consistent by construction: skip per-row foreign-key triggers, as
                # pg_restore --disable-triggers does. Constraints and indexes still apply.
                await conn.execute("SET LOCAL session_replication_role = replica")
            # Only organisations without bookings yet: re-running never duplicates a calendar. `o`
            # numbers the organisation inside the derived ids. A given organisation's number is 2^30 plus
            # 30 bits of a hash of its id, so given organisations seeded in separate runs never share ids.
            await conn.execute(
                """
                CREATE TEMP TABLE seed_orgs ON COMMIT DROP AS
                SELECT org_id, o FROM (
                    SELECT ('5eed0000' || lpad(to_hex(o), 24, '0'))::uuid AS org_id, o FROM generate_series(1, $1) o
                    UNION ALL
                    SELECT id, 1073741824 + (hashtext(id::text) & 1073741823) FROM unnest($2::uuid[]) AS given(id)
                ) candidates
                WHERE o % $3 = $4 AND NOT EXISTS (SELECT 1 FROM booking b WHERE b.org_id = candidates.org_id)
                ORDER BY o
                """,
                orgs,
                list(org_ids),
                parts,
                part,
            )
            count = int(await conn.fetchval("SELECT count(*) FROM seed_orgs"))
            if not count:
                return 0
            for step, sql in STATEMENTS:
                started = time.perf_counter()
                for name, value in values.items():
                    sql = sql.replace(f"@{name}@", str(value))
                await conn.execute(sql)
                timings[step] = max(timings.get(step, 0.0), time.perf_counter() - started)
        return count
    finally:
        await conn.close()


async def seed(
    url: str,
    *,
    orgs: int,
    bookings_per_org: int,
    workers: int = 10,
    clients: int = 50,
    org_ids: Sequence[uuid.UUID] = (),
    jobs: int = 2,
    log: bool = True,
) -> dict[str, float]:
    """Seed `orgs` synthetic organisations plus the calendars of `org_ids`. Returns seconds per
    step (the slowest part's)."""
    if bookings_per_org % workers:
        raise ValueError("bookings_per_org must be a multiple of workers")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            """
            INSERT INTO organization (id, name, slug, timezone, currency, locale, business_hours, tax_rate_bps,
                                      created_at, updated_at)
            SELECT ('5eed0000' || lpad(to_hex(o), 24, '0'))::uuid, 'Seed org ' || o, 'seed-org-' || o,
                   ($2::text[])[1 + o % 3], 'CAD', 'en-CA', '{}', 500, now(), now()
            FROM generate_series(1, $1) o
            ON CONFLICT DO NOTHING
            """,
            orgs,
            list(TIMEZONES),
        )
        timings["organisations"] = time.perf_counter() - started
        # Integers and a constant, inlined: each statement is one plain round trip.
        values: dict[str, object] = {
            "clients": int(clients),
            "workers": int(workers),
            "bookings": int(bookings_per_org),
            "price": "'" + PRICE.replace("'", "''") + "'",
        }
        started = time.perf_counter()
        filled = await asyncio.gather(*(_fill(url, part, jobs, values, org_ids, orgs, timings) for part in range(jobs)))
        timings["calendars"] = time.perf_counter() - started
        if log:
            print(f"  filled {sum(filled)} organisation(s) in {timings['calendars']:.1f}s", flush=True)
        started = time.perf_counter()
        if sum(filled):
            for table in (
                "organization",
                "client",
                "client_address",
                "service",
                "worker",
                "working_hours",
                "booking",
                "booking_assignment",
            ):
                await conn.execute(f"ANALYZE {table}")
        timings["analyze"] = time.perf_counter() - started
    finally:
        await conn.close()
    if log:
        for step, seconds in timings.items():
            print(f"  {step}: {seconds:.1f}s", flush=True)
    return timings


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orgs", type=int, default=1000)
    parser.add_argument("--bookings-per-org", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--org-id", action="append", type=uuid.UUID, default=[], help="also seed this organisation")
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 2), help="parallel connections")
    args = parser.parse_args(argv)
    if args.bookings_per_org % args.workers:
        raise SystemExit("--bookings-per-org must be a multiple of --workers")
    started = time.perf_counter()
    print(f"seeding {args.orgs} organisations x {args.bookings_per_org} bookings", flush=True)
    await seed(
        _url(),
        orgs=args.orgs,
        bookings_per_org=args.bookings_per_org,
        workers=args.workers,
        clients=args.clients,
        org_ids=args.org_id,
        jobs=args.jobs,
    )
    conn = await asyncpg.connect(_url())
    try:
        total = await conn.fetchval("SELECT count(*) FROM booking")
    finally:
        await conn.close()
    print(f"done in {time.perf_counter() - started:.1f}s; bookings in the database: {total:,}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
