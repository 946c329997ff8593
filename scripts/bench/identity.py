"""Identity: sign-in (argon2id at production cost), an authenticated GET /v1/auth/me, and the
per-request cost of authentication plus the session-revocation check, over HTTP (a public and an
authenticated endpoint doing one query each) and in-process (JWT alone, JWT + Redis GET, and the
Postgres fallback used when Redis is unreachable). Standalone: `python -m scripts.bench identity`."""

from __future__ import annotations

import logging
import uuid

import httpx

from scripts.bench.common import BenchContext, Result, measure
from spotless.db.engine import create_engine
from spotless.domain.identity import passwords
from spotless.domain.identity.authn import Authenticator
from spotless.domain.identity.session_cache import SessionChecker
from spotless.domain.identity.tokens import decode_access_token
from spotless.lib.redis import create_redis
from spotless.settings import load_settings

TITLE = "Identity — sign-in, authenticated requests, and the per-request session check"
PASSWORD = "bench-passphrase-not-common-42"
ROUNDS = 5


async def _signup(client: httpx.AsyncClient) -> dict:
    response = await client.post(
        "/v1/auth/signup",
        json={
            "org_name": f"Bench {uuid.uuid4().hex[:6]}",
            "email": f"bench-{uuid.uuid4().hex[:10]}@example.com",
            "password": PASSWORD,
            "timezone": "America/Toronto",
            "currency": "CAD",
        },
    )
    response.raise_for_status()
    return response.json()


async def _in_process(name: str, fn, total: int, concurrency: int, note: str) -> Result:  # type: ignore[no-untyped-def]
    async def call(_: int) -> None:
        await fn()

    return await measure(name, call, total, concurrency=concurrency, note=note)


async def _interleaved(a, b, total: int, rounds: int = ROUNDS) -> tuple[Result, Result]:  # type: ignore[no-untyped-def]
    merged = [Result(a[0], 0, 0.0, []), Result(b[0], 0, 0.0, [])]
    for _ in range(rounds):
        for index, (name, call) in enumerate((a, b)):
            part = await measure(name, call, total // rounds, warmup=5)
            merged[index].requests += part.requests
            merged[index].seconds += part.seconds
            merged[index].latencies_ms += part.latencies_ms
            merged[index].errors += part.errors
    return merged[0], merged[1]


def _delta(base: Result, other: Result) -> str:
    return f"{other.pct(0.5) - base.pct(0.5):+.2f} ms p50, {100 * (other.rps / base.rps - 1):+.0f}% req/s"


async def run(ctx: BenchContext) -> list[Result]:
    settings = load_settings(ctx.env)
    logging.getLogger("spotless.identity.sessions").setLevel(logging.ERROR)  # the fallback warns; expected here
    results: list[Result] = []
    owner = await _signup(ctx.client)
    email = owner["user"]["email"]
    headers = {"Authorization": f"Bearer {owner['access_token']}"}

    # --- argon2id alone, then a whole sign-in over HTTP ---------------------------------------
    stored = await passwords.hash_password(settings.auth, PASSWORD)
    auth = settings.auth
    cost = f"t={auth.argon2_time_cost}, m={auth.argon2_memory_kib // 1024} MiB, p={auth.argon2_parallelism}"
    results.append(
        await _in_process(
            "argon2id verify (in-process, one at a time)",
            lambda: passwords.verify_password(settings.auth, stored, PASSWORD),
            ctx.n(50),
            1,
            cost,
        )
    )
    results.append(
        await measure(
            "POST /v1/auth/login (argon2id + session + tokens)",
            lambda i: ctx.client.post("/v1/auth/login", json={"email": email, "password": PASSWORD}),
            ctx.n(200),
            concurrency=8,
            warmup=5,
            note=f"{cost}; 8 concurrent; argon2 pool = one thread per CPU",
        )
    )

    # --- authenticated requests over HTTP -------------------------------------------------------
    n = ctx.n(3000)
    # Interleaved rounds, so machine noise hits the public and the authenticated endpoint alike.
    public, private = await _interleaved(
        ("GET /v1/status (public, one query)", lambda i: ctx.client.get("/v1/status")),
        ("GET /v1/org (authenticated, one query)", lambda i: ctx.client.get("/v1/org", headers=headers)),
        n,
    )
    private.note = (
        f"vs row above: {_delta(public, private)}: authentication, guard, and the ORM session with its "
        "RLS set_config (the in-process rows below isolate the authentication)"
    )
    results += [public, private]
    results.append(
        await measure(
            "GET /v1/auth/me (authenticated, two queries)", lambda i: ctx.client.get("/v1/auth/me", headers=headers), n
        )
    )

    # --- the check itself, in-process ------------------------------------------------------------
    engine = create_engine(settings.database, application_name="bench-identity", pool_size=4)
    redis = create_redis(settings.redis, socket_timeout=settings.auth.session_check_timeout_ms / 1000)
    dead_redis = create_redis(
        load_settings({**ctx.env, "REDIS_URL": "redis://127.0.0.1:1/0"}).redis, socket_timeout=0.05
    )
    authorization = headers["Authorization"]
    token = owner["access_token"]
    try:
        checker = SessionChecker(redis, engine, settings.jobs.namespace, settings.auth.access_token_ttl_minutes * 60)
        authenticator = Authenticator(settings, checker)
        m = ctx.n(5000)

        async def jwt_only() -> None:
            decode_access_token(settings, token)

        results.append(await _in_process("JWT verify only (HS256)", jwt_only, m, 1, "no I/O"))
        results.append(
            await _in_process(
                "authenticate: JWT + session check (Redis GET)",
                lambda: authenticator.authenticate(authorization),
                m,
                1,
                "one at a time",
            )
        )
        results.append(
            await _in_process(
                "authenticate: JWT + session check (Redis GET), 16 concurrent",
                lambda: authenticator.authenticate(authorization),
                m,
                16,
                "",
            )
        )
        # Redis unreachable: every check reads Postgres (refused connections fail fast here; a
        # hung Redis would add AUTH_SESSION_CHECK_TIMEOUT_MS on top).
        fallback = Authenticator(
            settings,
            SessionChecker(dead_redis, engine, settings.jobs.namespace, settings.auth.access_token_ttl_minutes * 60),
        )
        results.append(
            await _in_process(
                "authenticate with Redis down (Postgres fallback)",
                lambda: fallback.authenticate(authorization),
                ctx.n(500),
                1,
                "one query per request",
            )
        )
    finally:
        await redis.aclose()
        await dead_redis.aclose()
        await engine.dispose()
    return results


if __name__ == "__main__":
    import asyncio
    import sys

    from scripts.bench.__main__ import main

    sys.exit(asyncio.run(main(["identity", *sys.argv[1:]])))
