"""Scheduling: create a booking, list bookings (50 rows), availability for a week; then the same list
and availability with 1,000 organisations and 1,000,000 bookings in the database (seeded by
scripts/seed_volume.py), to show the cost does not grow with data size. The queries behind the
list and availability calls are EXPLAIN ANALYZEd on the big data set, as the application role
under RLS, and the indexes they use are named in the notes."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import event
from tests.support.identity import signup

from scripts.bench.common import BenchContext, Result, env_int, measure
from scripts.seed_volume import seed
from spotless.db.engine import bind_org, create_engine, session_factory
from spotless.domain.identity.permissions import permissions_for
from spotless.domain.identity.principal import Principal
from spotless.domain.scheduling import availability as availability_service
from spotless.domain.scheduling import bookings
from spotless.domain.scheduling.context import org_context
from spotless.domain.scheduling.timeutil import local, to_utc, zone
from spotless.settings import load_settings

TITLE = "Scheduling — bookings, list, availability; small vs 1,000 orgs / 1,000,000 bookings"
WORKERS = 10
PER_ORG = 1000
_INDEX = re.compile(r"(?:Index(?: Only)? Scan(?: Backward)? using|Bitmap Index Scan on) (\w+)")


def _owner_url(env: dict[str, str]) -> str:
    return (env.get("DATABASE_MIGRATION_URL") or env["DATABASE_URL"]).replace("postgresql+asyncpg://", "postgresql://")


async def _calendar(ctx: BenchContext, owner: Any) -> dict[str, Any]:
    """The ids the calls need, read back through the API (the seeder made them)."""
    h = owner.headers
    service = (await ctx.client.get("/v1/services", headers=h)).json()["items"][0]
    workers = (await ctx.client.get("/v1/workers", params={"limit": 50}, headers=h)).json()["items"]
    client = (await ctx.client.get("/v1/clients", params={"limit": 1}, headers=h)).json()["items"][0]
    addresses = (await ctx.client.get(f"/v1/clients/{client['id']}/addresses", headers=h)).json()
    return {
        "service_id": service["id"],
        "worker_ids": [w["id"] for w in workers],
        "client_id": client["id"],
        "address_id": addresses[0]["id"],
    }


def _week() -> tuple[date, date]:
    start = datetime.now(UTC).date() + timedelta(days=7)
    start -= timedelta(days=start.weekday())
    return start, start + timedelta(days=6)


async def _reads(ctx: BenchContext, owner: Any, cal: dict[str, Any], label: str) -> list[Result]:
    today = datetime.now(UTC).date()
    list_params = {
        "date_from": (today - timedelta(days=30)).isoformat(),
        "date_to": (today + timedelta(days=30)).isoformat(),
        "limit": 50,
    }
    monday, sunday = _week()
    avail_params = {"service_id": cal["service_id"], "date_from": monday.isoformat(), "date_to": sunday.isoformat()}
    check = await ctx.client.get("/v1/bookings", params=list_params, headers=owner.headers)
    rows = len(check.json()["items"]) if check.status_code == 200 else 0
    # A deep page: follow next_cursor to the last page of the range; it costs what the first does.
    deep_params, depth, page = dict(list_params), 0, check.json() if check.status_code == 200 else {}
    while page.get("has_more"):
        deep_params = {**list_params, "cursor": page["next_cursor"]}
        page = (await ctx.client.get("/v1/bookings", params=deep_params, headers=owner.headers)).json()
        depth += 1
    slots = await ctx.client.get("/v1/availability", params=avail_params, headers=owner.headers)
    slot_count = len(slots.json()["slots"]) if slots.status_code == 200 else 0
    return [
        await measure(
            f"GET /v1/auth/me (baseline: authenticated request) — {label}",
            lambda i: ctx.client.get("/v1/auth/me", headers=owner.headers),
            ctx.n(1000),
        ),
        await measure(
            f"GET /v1/bookings (61 local days, 50 rows) — {label}",
            lambda i: ctx.client.get("/v1/bookings", params=list_params, headers=owner.headers),
            ctx.n(1000),
            note=f"{rows} rows, has_more {check.json().get('has_more')}",
        ),
        await measure(
            f"GET /v1/bookings, last page by cursor (page {depth + 1}) — {label}",
            lambda i: ctx.client.get("/v1/bookings", params=deep_params, headers=owner.headers),
            ctx.n(1000),
            note="keyset: no OFFSET, no COUNT(*)",
        ),
        await measure(
            f"GET /v1/availability (one week, {len(cal['worker_ids'])} workers) — {label}",
            lambda i: ctx.client.get("/v1/availability", params=avail_params, headers=owner.headers),
            ctx.n(300),
            note=f"{slot_count} slots",
        ),
    ]


async def explain(env: dict[str, str], org_id: UUID, service_id: UUID) -> dict[str, list[str]]:
    """EXPLAIN ANALYZE the exact statements the list and availability services send, as the app
    role under RLS (captured from the engine, replayed with their parameters)."""
    settings = load_settings(env)
    engine = create_engine(settings.database, application_name="bench-explain", pool_size=1, max_overflow=0)
    captured: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "set_config" not in statement:
            captured.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", grab)
    plans: dict[str, list[str]] = {}
    principal = Principal(
        user_id=uuid.uuid4(),
        org_id=org_id,
        session_id=uuid.uuid4(),
        role="owner",
        permissions=permissions_for("owner"),
        email="bench@example.com",
    )
    try:
        sessions = session_factory(engine)
        today = datetime.now(UTC).date()
        monday, sunday = _week()
        for name in ("list", "availability"):
            captured.clear()
            async with sessions() as session:
                bind_org(session, org_id)
                async with session.begin():
                    ctx = await org_context(session, org_id)
                    if name == "list":
                        filters = bookings.BookingFilters(
                            date_from=today - timedelta(days=30), date_to=today + timedelta(days=30)
                        )
                        await bookings.list_bookings(session, principal, ctx, filters, limit=50)
                    else:
                        await availability_service.availability(
                            session,
                            ctx,
                            service_id=service_id,
                            date_from=monday,
                            date_to=sunday,
                            worker_id=None,
                            step_minutes=None,
                            max_days=31,
                        )
            wanted = [(s, p) for s, p in captured if "booking" in s and "organization" not in s]
            async with engine.connect() as conn:
                await conn.exec_driver_sql("SELECT set_config('app.org_id', $1, false)", (str(org_id),))
                for statement, parameters in wanted:
                    result = await conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                    plans.setdefault(name, []).append("\n".join(r[0] for r in result))
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", grab)
        await engine.dispose()
    return plans


def _summary(plans: list[str]) -> str:
    indexes = sorted({m for plan in plans for m in _INDEX.findall(plan)})
    seq = [line.strip() for plan in plans for line in plan.splitlines() if "Seq Scan" in line]
    times = [float(m) for plan in plans for m in re.findall(r"Execution Time: ([\d.]+) ms", plan)]
    pages = sum(int(m) for plan in plans for m in re.findall(r"^\s*Buffers: shared hit=(\d+)", plan, re.M)[:1])
    text = f"indexes: {', '.join(indexes) or 'none'}; DB time {sum(times):.2f} ms; {pages} buffer hits"
    return text + (f"; seq scans: {len(seq)}" if seq else "")


async def run(ctx: BenchContext) -> list[Result]:
    owner = await signup(ctx.client, name="Bench Cleaning", timezone="America/Toronto")
    url = _owner_url(ctx.env)
    # The benchmark organisation gets the same calendar as every seeded one (1,000 bookings).
    await seed(url, orgs=0, bookings_per_org=PER_ORG, workers=WORKERS, org_ids=[owner.org_id], log=False)
    cal = await _calendar(ctx, owner)
    tz = zone("America/Toronto")
    far = date(datetime.now(UTC).year + 2, 1, 4)

    async def create(i: int) -> Any:
        j = i if i >= 0 else 100_000 - i
        day = far + timedelta(days=j // (4 * WORKERS))
        hour = 8 + 2 * ((j // WORKERS) % 4)
        body = {
            "client_id": cal["client_id"],
            "address_id": cal["address_id"],
            "service_id": cal["service_id"],
            "worker_ids": [cal["worker_ids"][j % len(cal["worker_ids"])]],
            "starts_at": local(to_utc(day, datetime.min.time().replace(hour=hour), tz), tz).isoformat(),
        }
        return await ctx.client.post(
            "/v1/bookings", json=body, headers={**owner.headers, "Idempotency-Key": f"bench-{j}"}
        )

    results = [
        await measure(
            "POST /v1/bookings (priced, checked, Idempotency-Key)",
            create,
            ctx.n(300),
            note="distinct worker/slot per call",
        )
    ]
    results += await _reads(ctx, owner, cal, "1 org, 1k bookings")
    small_plans = await explain(ctx.env, owner.org_id, UUID(cal["service_id"]))

    orgs = env_int("BENCH_SEED_ORGS", 999)
    started = time.perf_counter()
    await seed(url, orgs=orgs, bookings_per_org=PER_ORG, workers=WORKERS, log=False)
    seeded = time.perf_counter() - started
    results += await _reads(ctx, owner, cal, f"{orgs + 1} orgs, {(orgs + 1) * PER_ORG:,} bookings")
    results.append(
        Result(
            f"seed {orgs} orgs x {PER_ORG} bookings (scripts/seed_volume.py)",
            1,
            seeded,
            [seeded * 1000],
            note="one-off, 2 connections",
        )
    )

    plans = await explain(ctx.env, owner.org_id, UUID(cal["service_id"]))
    for name, found in plans.items():
        for label, which in (("1 org, 1k bookings", small_plans.get(name, [])), ("1M bookings", found)):
            results.append(Result(f"EXPLAIN ANALYZE {name} queries — {label}", 0, 0, [], note=_summary(which)))
        print(f"### EXPLAIN ANALYZE — {name} (1,000 orgs, 1,000,000 bookings)\n")
        for plan in found:
            print("```\n" + plan + "\n```\n")
    return results
