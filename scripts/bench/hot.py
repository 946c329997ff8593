"""The hot operations under k6 (out of process, on its own core), each beside bare Litestar and its
floor, all measured in this run and served the same way (one worker of the same server, same flags).

At 10,000 bookings (10 organisations) by default; `BENCH_VOLUME=1m` or `just bench volume` then
seeds to 1,000,000 (1,000 organisations, scripts/seed_volume.py) and measures the data operations
again. The benchmark organisation is signed up and its 50-booking day created through the API; the
other calendars come from the seed script. The API runs with the rate limiter ON and a quota it
never reaches (RATE_LIMIT_PER_MINUTE and EXPENSIVE_RATE_LIMIT_PER_MINUTE 1,000,000)."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from tests.support.identity import signup

from scripts.bench.loadgen import Measured, Placement, Server, run_k6, serve, server_name
from scripts.seed_volume import seed

TITLE = "Hot operations under k6"
WORKERS = 10
PER_ORG = 1000
SLOT_HOURS = (8, 10, 12, 14, 16)  # two-hour visits inside the seeded 08:00-18:00 hours
WARMUP_CAP = 2000  # req/s the warm-up of a create run is assumed never to pass (its slots end there)
WEBHOOK_SECRET = "whsec_bench_" + "0" * 32
WEBHOOK_RATE = 100  # events a second: a busy connected account's worst minute is far below it
INVOICES = 50
LIMITER_ON = {
    "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "RATE_LIMIT_ENABLED": "true",
    "RATE_LIMIT_PER_MINUTE": "1000000",
    "RATE_LIMIT_BURST": "0",
    "EXPENSIVE_RATE_LIMIT_PER_MINUTE": "1000000",
    "ADMIN_ACTION_RATE_LIMIT_PER_MINUTE": "1000000",
    "AUTH_RATE_LIMIT_PER_MINUTE": "1000",
    "PUBLIC_RATE_LIMIT_PER_MINUTE": "1000000",
}


@dataclass(frozen=True)
class Knobs:
    vus: int
    duration_s: int
    warmup_s: int

    @classmethod
    def from_env(cls) -> Knobs:
        return cls(
            vus=int(os.environ.get("BENCH_VUS", "32")),
            duration_s=int(os.environ.get("BENCH_DURATION", "10")),
            warmup_s=int(os.environ.get("BENCH_WARMUP", "2")),
        )


@dataclass
class Row:
    name: str
    measured: Measured
    floor: Measured | None = None
    is_floor: bool = False


@dataclass
class Setup:
    org_id: str
    user_id: str
    headers: dict[str, str]
    service_id: str
    client_id: str
    address_id: str
    worker_ids: list[str]
    list_day: date
    empty_day: date
    availability_day: date
    bookings: int = 0
    organisations: int = 0


def _owner_url(env: dict[str, str]) -> str:
    return (env.get("DATABASE_MIGRATION_URL") or env["DATABASE_URL"]).replace("postgresql+asyncpg://", "postgresql://")


async def _count(env: dict[str, str]) -> tuple[int, int]:
    conn = await asyncpg.connect(_owner_url(env))
    try:
        bookings = await conn.fetchval("SELECT count(*) FROM booking")
        orgs = await conn.fetchval("SELECT count(DISTINCT org_id) FROM booking")
        return int(bookings), int(orgs)
    finally:
        await conn.close()


def _expect(response: httpx.Response, status: int, what: str) -> Any:
    if response.status_code != status:
        raise RuntimeError(f"{what}: {response.status_code} {response.text[:500]}")
    return response.json() if response.content else None


async def prepare(api: Server, env: dict[str, str]) -> Setup:
    """The benchmark organisation through the API, the other calendars by the seed script (10 orgs
    x 1,000 bookings in all), and 50 bookings on one day through the API."""
    async with httpx.AsyncClient(base_url=api.base_url, timeout=60) as client:
        owner = await signup(client, name="Bench Cleaning", timezone="UTC")
        await seed(
            _owner_url(env), orgs=9, bookings_per_org=PER_ORG, workers=WORKERS, org_ids=[owner.org_id], log=False
        )
        h = owner.headers
        service = _expect(await client.get("/v1/services", headers=h), 200, "services")["items"][0]
        workers = _expect(await client.get("/v1/workers", params={"limit": 50}, headers=h), 200, "workers")["items"]
        customer = _expect(await client.get("/v1/clients", params={"limit": 1}, headers=h), 200, "clients")["items"][0]
        addresses = _expect(await client.get(f"/v1/clients/{customer['id']}/addresses", headers=h), 200, "addresses")
        today = datetime.now(UTC).date()
        # The seeded calendar runs from ~150 days back to ~150 ahead, one visit per cleaner every third
        # day (today + 30 has one per cleaner); days past it are the benchmark's own.
        setup = Setup(
            org_id=str(owner.org_id),
            user_id=str(owner.user_id),
            headers=h,
            service_id=service["id"],
            client_id=customer["id"],
            address_id=addresses[0]["id"],
            worker_ids=[w["id"] for w in workers],
            list_day=today + timedelta(days=155),
            empty_day=today + timedelta(days=156),
            availability_day=today + timedelta(days=30),
        )
        for n, (worker_id, hour) in enumerate((w, hr) for hr in SLOT_HOURS for w in setup.worker_ids):
            starts = datetime.combine(setup.list_day, datetime.min.time(), UTC) + timedelta(hours=hour)
            body = {**_booking_body(setup), "worker_ids": [worker_id], "starts_at": starts.isoformat()}
            headers = {**h, "Idempotency-Key": f"bench-list-{owner.org_id}-{n}"}
            _expect(await client.post("/v1/bookings", json=body, headers=headers), 201, "booking for the list day")
        # The billing list: 50 issued invoices of one line each (taxed by the organisation's region).
        settings = await client.put("/v1/billing/settings", json={"tax_region": "ON"}, headers=h)
        _expect(settings, 200, "billing settings")
        for n in range(INVOICES):
            body = {"client_id": customer["id"], "lines": [{"description": f"Visit {n}", "unit_cents": 12_000 + n}]}
            draft = _expect(await client.post("/v1/invoices", json=body, headers=h), 201, "invoice")
            _expect(await client.post(f"/v1/invoices/{draft['id']}/issue", headers=h), 200, "issue")
    setup.bookings, setup.organisations = await _count(env)
    return setup


def _booking_body(s: Setup) -> dict[str, Any]:
    return {"client_id": s.client_id, "address_id": s.address_id, "service_id": s.service_id}


class Runner:
    def __init__(
        self, placement: Placement, knobs: Knobs, api: Server, bare: Server, floor: Server, setup: Setup
    ) -> None:
        self.placement, self.knobs, self.api, self.bare, self.floor, self.setup = (
            placement,
            knobs,
            api,
            bare,
            floor,
            setup,
        )
        # Create runs book consecutive windows of days from here (the seeded calendar and the list
        # days end before it; the API takes bookings up to 5 years ahead).
        self.next_create_day = datetime.now(UTC).date() + timedelta(days=160)

    def k6(self, name: str, url: str, **kwargs: Any) -> Measured:
        result = run_k6(
            name,
            self.placement,
            url=url,
            vus=self.knobs.vus,
            duration_s=self.knobs.duration_s,
            warmup_s=self.knobs.warmup_s,
            **kwargs,
        )
        print(
            f"  {name}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
            f"failed {result.failed_rate:.1%}, k6 CPU {result.k6_cpu:.0%} of a core",
            flush=True,
        )
        return result

    async def probe(
        self, url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        """One request first, so a wrong setup fails loudly instead of measuring errors."""
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.request(method, url, json=body, headers=headers)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:500]}")
        return response.json()

    async def same(self, what: str, key: str, ours: str, floor: str, headers: dict[str, str]) -> int:
        """The operation and its floor answer the same number of items (rows, slots)."""
        a = len((await self.probe(ours, headers=headers))[key])
        b = len((await self.probe(floor))[key])
        if a != b:
            print(f"  WARNING: {what}: the API answers {a} {key}, its floor {b}", flush=True)
        return a

    def create(self, name: str, url: str, key: str, **kwargs: Any) -> Measured:
        """A create run on slots no other request takes: warm-up from the window's first day, the
        measured phase from WARMUP_CAP req/s x the warm-up later; the next window starts past both."""
        per_day = len(SLOT_HOURS) * len(self.setup.worker_ids)
        offset = self.knobs.warmup_s * WARMUP_CAP
        first = datetime.combine(self.next_create_day, datetime.min.time(), UTC)
        slots = {
            "first_day_ms": int(first.timestamp() * 1000),
            "starts": list(SLOT_HOURS),
            "workers": self.setup.worker_ids,
            "measure_offset": offset,
            "key": f"{key}-{uuid.uuid4().hex[:8]}",
        }
        if self.next_create_day > datetime.now(UTC).date() + timedelta(days=5 * 365 - 400):
            raise RuntimeError("create windows would pass the API's 5-year limit: lower BENCH_DURATION")
        result = self.k6(name, url, method="POST", expect=201, slots=slots, **kwargs)
        used = offset + result.requests + 4 * self.knobs.vus
        self.next_create_day += timedelta(days=used // per_day + 2)
        return result

    async def data_ops(self) -> list[Row]:
        s, api, floor = self.setup, self.api.base_url, self.floor.base_url
        org = f"org={s.org_id}"
        rows: list[Row] = []
        for label, which in (("50 rows", s.list_day), ("0 rows", s.empty_day)):
            d = which.isoformat()
            url = f"{api}/v1/bookings?date_from={d}&date_to={d}&limit=50"
            n = await self.same(f"list {label}", "items", url, f"{floor}/list?{org}&day={d}", s.headers)
            full = self.k6(f"list {label}", url, headers=s.headers)
            floor_full = self.k6(f"floor list {label}", f"{floor}/list?{org}&day={d}")
            rows.append(Row(f"list bookings, one day, {n} rows (auth + RLS + limiter)", full, floor_full))
            if label == "50 rows":
                # The latency target is at half the throughput just measured: a fixed arrival rate.
                half = self.k6(f"list {label} at half load", url, headers=s.headers, rate=full.rps / 2)
                rows.append(Row(f"the same list at half its req/s ({full.rps / 2:,.0f}/s, arrival rate)", half))
        d = s.availability_day.isoformat()
        url = f"{api}/v1/availability?service_id={s.service_id}&date_from={d}&date_to={d}"
        floor_url = f"{floor}/availability?{org}&service_id={s.service_id}&day={d}"
        n = await self.same("availability", "slots", url, floor_url, s.headers)
        rows.append(
            Row(
                f"availability, one day, {len(s.worker_ids)} cleaners ({n} slots)",
                self.k6("availability", url, headers=s.headers),
                self.k6("floor availability", floor_url),
            )
        )
        quote = {"service_id": s.service_id, "bedrooms": 2, "bathrooms": 1}
        await self.probe(f"{api}/v1/quotes", "POST", quote, s.headers)
        await self.probe(f"{floor}/quote?{org}", "POST", quote)
        rows.append(
            Row(
                "price quote",
                self.k6("quote", f"{api}/v1/quotes", method="POST", body=quote, headers=s.headers),
                self.k6("floor quote", f"{floor}/quote?{org}", method="POST", body=quote),
            )
        )
        body = _booking_body(s)
        rows.append(
            Row(
                "create booking (distinct slots, Idempotency-Key)",
                self.create("create", f"{api}/v1/bookings", "bench", body=body, headers=s.headers),
                self.create("floor create", f"{floor}/create?{org}&user={s.user_id}", "floor", body=body),
            )
        )
        url = f"{api}/v1/invoices?limit={INVOICES}"
        n = len((await self.probe(url, headers=s.headers))["items"])
        rows.append(
            Row(f"list invoices, {n} rows (auth + RLS + limiter)", self.k6("list invoices", url, headers=s.headers))
        )
        hook = f"{api}/v1/payments/stripe/webhook"
        event = {"object": "event", "type": "payment_intent.succeeded", "account": "acct_bench", "created": 0}
        event |= {"api_version": "2024-06-20", "data": {"object": {"id": "pi_bench", "object": "payment_intent"}}}
        stripe = {"secret": WEBHOOK_SECRET, "event": event}
        rows.append(
            Row(
                "Stripe webhook intake (signed, stored in the inbox, answered)",
                self.k6("webhook", hook, expect=200, stripe={**stripe, "prefix": uuid.uuid4().hex[:8]}),
            )
        )
        rows.append(
            Row(
                f"the same intake at {WEBHOOK_RATE} events/s (arrival rate)",
                self.k6(
                    "webhook at rate",
                    hook,
                    expect=200,
                    rate=WEBHOOK_RATE,
                    stripe={**stripe, "prefix": uuid.uuid4().hex[:8]},
                ),
            )
        )
        failing = [r.name for r in rows if r.measured.failed_rate > 0.01 or (r.floor and r.floor.failed_rate > 0.01)]
        if failing:
            print(f"  WARNING: requests failed (see the failed column) in: {'; '.join(failing)}", flush=True)
        return rows


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "—"


NOTE = (
    "k6 CPU: the generator's CPU time over its run's wall time (warm-up included), on its own core; near 100 % "
    "the generator, not the server, was the limit, and that row's req/s (bare Litestar's above all) is a lower "
    "bound. The floor of /healthz is bare Litestar itself (it does no data work). The floor of create does a keyed "
    "booking's data work as the API does it: the key claimed in its own transaction; then the client and address, "
    "the workers, the service, their hours and time off, the booking and its assignments, an outbox row per "
    "subscriber and the stored response in one; the jobs handed to Redis (scripts/bench/floor_app.py)."
)


def table(bare: Measured, rows: list[Row]) -> str:
    lines = [
        "| operation | req/s | p50 ms | p99 ms | failed | % of bare | % of floor | floor req/s | floor p50 ms "
        "| floor p99 ms | k6 CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| bare Litestar JSON (the base) | {bare.rps:,.0f} | {bare.p50_ms:.1f} | {bare.p99_ms:.1f} | "
        f"{bare.failed_rate:.1%} | 100 % | — | — | — | — | {bare.k6_cpu:.0%} |",
    ]
    for row in rows:
        m, f = row.measured, row.floor
        floor_cells = f"{f.rps:,.0f} | {f.p50_ms:.1f} | {f.p99_ms:.1f}" if f else "— | — | —"
        lines.append(
            f"| {row.name} | {m.rps:,.0f} | {m.p50_ms:.1f} | {m.p99_ms:.1f} | {m.failed_rate:.1%} | "
            f"{_pct(m.rps, bare.rps)} | {_pct(m.rps, f.rps) if f else '—'} | {floor_cells} | {m.k6_cpu:.0%} |"
        )
    return "\n".join(lines)


async def run(env: dict[str, str], *, volume: bool) -> None:
    knobs = Knobs.from_env()
    placement = Placement.detect()
    api_env = {**env, **LIMITER_ON}
    db_url = env["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://", 1)
    floor_env = {
        "FLOOR_DATABASE_URL": db_url,
        "FLOOR_APP_ROLE": env.get("DATABASE_APP_ROLE", "spotless_app"),
        "FLOOR_POOL_SIZE": env.get("DATABASE_POOL_SIZE", "20"),
        "REDIS_URL": env["REDIS_URL"],
    }
    servers: list[Server] = []
    try:
        api = serve("api", "spotless.app:create_app_from_env", api_env, placement, factory=True, probe="/healthz")
        servers.append(api)
        bare = serve("bare", "scripts.bench.bare_app:app", env, placement, factory=False, probe="/json")
        servers.append(bare)
        floor = serve("floor", "scripts.bench.floor_app:app", floor_env, placement, factory=False, probe="/readyz")
        servers.append(floor)
        started = time.perf_counter()
        setup = await prepare(api, env)
        print(
            f"Setup: benchmark organisation signed up and 50 bookings made through the API, other calendars seeded "
            f"(scripts/seed_volume.py): {setup.bookings:,} bookings in {setup.organisations} organisations, "
            f"{time.perf_counter() - started:.0f} s.\n"
            f"Load: k6 {knobs.vus} VUs, {knobs.warmup_s} s warm-up then {knobs.duration_s} s measured per row "
            f"(BENCH_VUS, BENCH_WARMUP, BENCH_DURATION); {placement.describe()}.\n"
            f"Servers: one {server_name()} worker each, its access log off; "
            "API with the rate limiter on (a quota never reached).\n",
            flush=True,
        )
        runner = Runner(placement, knobs, api, bare, floor, setup)
        bare_m = runner.k6("bare", f"{bare.base_url}/json")
        await runner.probe(f"{api.base_url}/readyz")
        rows = [
            # /healthz does no data work: its floor is bare Litestar itself.
            Row("GET /healthz", runner.k6("healthz", f"{api.base_url}/healthz"), bare_m),
            Row(
                "GET /readyz (cached 1 s)",
                runner.k6("readyz", f"{api.base_url}/readyz"),
                runner.k6("floor readyz", f"{floor.base_url}/readyz"),
            ),
        ]
        rows += await runner.data_ops()
        small = f"{setup.bookings:,} bookings / {setup.organisations} organisations"
        print(f"\n### {small}\n\n{table(bare_m, rows)}\n\n{NOTE}\n", flush=True)
        if not volume:
            print(
                "Run with `BENCH_VOLUME=1m just bench` (or `just bench volume`) to measure the data operations again "
                "at 1,000,000 bookings.\n"
            )
            return
        started = time.perf_counter()
        print("Seeding to 1,000 organisations x 1,000 bookings (scripts/seed_volume.py) ...", flush=True)
        await seed(_owner_url(env), orgs=999, bookings_per_org=PER_ORG, workers=WORKERS, log=False)
        setup.bookings, setup.organisations = await _count(env)
        print(f"  seeded in {time.perf_counter() - started:.0f} s", flush=True)
        # Bare Litestar again: on a shared machine the base moves between the two halves of the run.
        bare_big = runner.k6("bare", f"{bare.base_url}/json")
        big_rows = await runner.data_ops()
        big = f"{setup.bookings:,} bookings / {setup.organisations} organisations"
        print(f"\n### {big} (bare Litestar measured again)\n\n{table(bare_big, big_rows)}\n")
        print(f"### p99 at {big} over p99 at {small}\n")
        print("| operation | p99 small ms | p99 large ms | ratio |\n|---|---:|---:|---:|")
        for a, b in zip(rows[2:], big_rows, strict=True):
            ratio = b.measured.p99_ms / a.measured.p99_ms if a.measured.p99_ms else 0.0
            print(f"| {a.name} | {a.measured.p99_ms:.1f} | {b.measured.p99_ms:.1f} | {ratio:.2f} |")
        print()
    finally:
        for server in reversed(servers):
            server.stop()
