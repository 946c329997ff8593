"""Sign-in throttling on the real /v1/auth/login route: counted before the password is checked,
atomically, per (account, address) with a per-account ceiling and a per-address limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from litestar import Litestar

from spotless.app import create_app
from tests.conftest import make_settings
from tests.support.client import app_client
from tests.support.identity import signup, unique_email

WRONG = "not-the-password-1"


@asynccontextmanager
async def from_address(app: Litestar, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    """Requests to an app whose lifespan already runs, as seen from client address `ip`."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
        yield client


async def _login(client: httpx.AsyncClient, email: str, password: str) -> int:
    return (await client.post("/v1/auth/login", json={"email": email, "password": password})).status_code


async def test_parallel_wrong_guesses_admit_at_most_the_limit(app, client, settings):
    owner = await signup(client)
    limit = settings.auth.login_max_failures
    async with from_address(app, "203.0.113.66") as attacker:
        codes = await asyncio.gather(*(_login(attacker, owner.email, WRONG) for _ in range(20)))
    # Each guess is counted before its (slow) verification: at most `limit` reach argon2.
    assert codes.count(401) <= limit, codes
    assert codes.count(401) + codes.count(429) == 20, codes
    assert codes.count(429) >= 20 - limit


async def test_the_owner_signs_in_from_their_address_while_an_attacker_hammers(app, client):
    owner = await signup(client)
    async with from_address(app, "203.0.113.66") as attacker, from_address(app, "198.51.100.7") as home:
        codes = [await _login(attacker, owner.email, WRONG) for _ in range(8)]
        codes += await asyncio.gather(*(_login(attacker, owner.email, WRONG) for _ in range(12)))
        assert set(codes) <= {401, 429} and 429 in codes
        # The attacker locked only their own address out of this account.
        assert await _login(home, owner.email, owner.password) == 200
        assert await _login(attacker, owner.email, owner.password) == 429


async def test_guesses_spread_over_addresses_meet_the_account_ceiling():
    settings = make_settings(AUTH_LOGIN_MAX_FAILURES_PER_ACCOUNT="8")
    app = create_app(settings)
    async with app_client(app) as client:
        owner = await signup(client)
        codes = []
        for n in range(10):
            async with from_address(app, f"192.0.2.{n + 10}") as guesser:
                codes.append(await _login(guesser, owner.email, WRONG))
        assert codes == [401] * 8 + [429] * 2
        # A success gives its attempt back, so the owner is not the one locked out by their own sign-ins.
        other = await signup(client)
        async with from_address(app, "198.51.100.9") as home:
            assert [await _login(home, other.email, other.password) for _ in range(10)] == [200] * 10


async def test_one_address_trying_many_accounts_meets_the_address_limit():
    settings = make_settings(AUTH_LOGIN_MAX_FAILURES_PER_IP="3")
    app = create_app(settings)
    async with app_client(app) as client, from_address(app, "203.0.113.99") as sprayer:
        codes = [await _login(sprayer, unique_email("target"), WRONG) for _ in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        owner = await signup(client)
        async with from_address(app, "198.51.100.10") as home:
            assert await _login(home, owner.email, owner.password) == 200
