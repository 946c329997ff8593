"""`just fuzz`: schemathesis over the whole published OpenAPI, against a real API node on loopback.

A fresh database migrated by alembic, one uvicorn node (the `just api` factory), an organisation
signed up through /v1/auth/signup whose owner makes every request, Stripe's local fake
(tests/support/fake_stripe.py) as the payment provider, then every phase (examples,
coverage, fuzzing, stateful) with the checks below. Exits with schemathesis's status: 0 means no
failure. The API node's log is printed when it logged an unhandled error.

The node runs with the rate limiter off and sign-in throttling far away: a 429 is a documented
answer, so limits would only hide operations from the fuzzer behind throttling (limits have their
own tests in tests/integration/ratelimit and tests/integration/identity)."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import asyncpg
import httpx
from tests.support import processes
from tests.support.fake_stripe import FakeStripe

from scripts.fuzz import seed
from spotless.db.migrations import upgrade
from spotless.settings import load_settings

HERE = Path(__file__).parent
FUZZ_DB = "spotless_fuzz"
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "use_after_free",
    "ensure_resource_availability",
    "ignored_auth",
)
PHASES = ("examples", "coverage", "fuzzing", "stateful")


def fuzz_env() -> dict[str, str]:
    base_db = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://", 1)
    parts = urlsplit(base_db)
    return {
        "APP_ENV": "test",
        "DATABASE_URL": urlunsplit(parts._replace(path=f"/{FUZZ_DB}")),
        "REDIS_URL": os.environ["REDIS_URL"],
        "JOB_NAMESPACE": "spotless-fuzz",
        "LOG_LEVEL": "WARNING",
        "METRICS_ENABLED": "true",
        # Limits are not what is tested here (see the docstring).
        "RATE_LIMIT_ENABLED": "false",
        "AUTH_LOGIN_MAX_FAILURES": "1000",
        "AUTH_LOGIN_MAX_FAILURES_PER_ACCOUNT": "1000000",
        "AUTH_LOGIN_MAX_FAILURES_PER_IP": "100000",
        "AUTH_ACCESS_TOKEN_TTL_MINUTES": "240",
        # Cheap argon2, as in the tests: the fuzzer signs in again after it logs itself out.
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_ARGON2_MEMORY_KIB": "1024",
        "AUTH_ARGON2_PARALLELISM": "1",
        "EMAIL_MODE": "log",
        "PROMETHEUS_MULTIPROC_DIR": os.environ.get("PROMETHEUS_MULTIPROC_DIR", "/tmp/spotless-fuzz-prom"),
    }


async def fresh_database(env: dict[str, str]) -> None:
    admin_url = env["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{FUZZ_DB}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{FUZZ_DB}"')
    finally:
        await admin.close()
    await asyncio.to_thread(upgrade, load_settings(env))


def schemathesis_args(base_url: str, config: Path, args: argparse.Namespace) -> list[str]:
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        f"{base_url}/schema/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        ",".join(args.phases),
        "--max-examples",
        str(args.max_examples),
        "--workers",
        str(args.workers),
        "--seed",
        str(args.seed),
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--suppress-health-check",
        "all",
    ]
    if args.max_time:
        command += ["--max-time", str(args.max_time)]
    if os.environ.get("CI"):
        command.append("--no-color")
    return [*command, *args.extra]


async def invitation_email(env: dict[str, str], org_id: str, invitation_id: str) -> str:
    """The invitation's `messaging.deliver` job (it mints the temporary password at send time),
    run here instead of by a worker, against a local SMTP server: the fuzz node has no worker."""
    from sqlalchemy import select
    from tests.support.smtp import SmtpServer

    from spotless.domain import registry
    from spotless.domain.messaging.actors import deliver_message
    from spotless.domain.messaging.models import Delivery
    from spotless.lib.jobs.runtime import build_runtime, set_runtime

    registry.import_jobs()  # the message kinds, as a worker knows them
    server = SmtpServer()
    server.controller.start()
    runtime = build_runtime(load_settings({**env, **server.env()}), application_name="spotless-fuzz-seed")
    set_runtime(runtime)
    try:
        async with runtime.session(org_id=org_id) as session:
            delivery_ids = list(
                await session.scalars(
                    select(Delivery.id).where(
                        Delivery.recipient_kind == "invitee", Delivery.recipient_id == UUID(invitation_id)
                    )
                )
            )
        for delivery_id in delivery_ids:
            await deliver_message(UUID(org_id), delivery_id)
    finally:
        set_runtime(None)
        await runtime.close()
        server.controller.stop()
    if not server.messages:
        raise SystemExit(f"fuzz seed: invitation {invitation_id} has nothing to send")
    return server.messages[-1].body


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("FUZZ_MAX_EXAMPLES", "50")))
    parser.add_argument("--max-time", type=int, default=int(os.environ.get("FUZZ_MAX_TIME", "0")) or None)
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", "1")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("FUZZ_WORKERS", "2")))
    parser.add_argument("--phases", type=lambda s: s.split(","), default=list(PHASES))
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="passed on to `schemathesis run` (after --)")
    args = parser.parse_args(argv)
    args.extra = [a for a in args.extra if a != "--"]

    # Stripe is our local fake, as in the tests: calls that reach the provider get its answers
    # (a 503 from an unreachable api.stripe.com would be a true server error to the fuzzer).
    stripe_fake = FakeStripe().start()
    env = {**fuzz_env(), "STRIPE_API_BASE": stripe_fake.base_url, "STRIPE_WEBHOOK_SECRET": stripe_fake.webhook_secret}
    os.makedirs(env["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    asyncio.run(fresh_database(env))
    api = processes.start_api(env)
    started = time.monotonic()
    try:
        with httpx.Client(base_url=api.base_url, timeout=30) as client:
            email, password, token, owner_id, org_id = seed.signup(client)
            client.headers["Authorization"] = f"Bearer {token}"
            ids = seed.seed(client, lambda invitation_id: asyncio.run(invitation_email(env, org_id, invitation_id)))
        with tempfile.TemporaryDirectory(prefix="spotless-fuzz-") as tmp:
            config = Path(tmp) / "schemathesis.toml"
            config.write_text(seed.config_toml(ids))
            run_env = {
                **os.environ,
                "FUZZ_BASE_URL": api.base_url,
                "FUZZ_EMAIL": email,
                "FUZZ_PASSWORD": password,
                "FUZZ_OWNER_ID": owner_id,
                "FUZZ_SPARE_USER_ID": ids["user_id"][0],
                "SCHEMATHESIS_HOOKS": str(HERE / "hooks.py"),
            }
            code = subprocess.call(schemathesis_args(api.base_url, config, args), env=run_env, cwd=tmp)
    finally:
        api.stop()
        stripe_fake.stop()
    log = api.log()
    if "unhandled error" in log or "Traceback" in log:
        print("\n--- API node log (unhandled errors) ---\n" + log[-20_000:])
    print(f"fuzz: schemathesis exited {code} after {time.monotonic() - started:.0f}s")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
