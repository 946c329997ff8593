"""Fixtures for tests of Stripe event processing, refunds and disputes: the fake Stripe server,
settings pointing at it, the job runtime the inbox handler reads them from, and the API.

    from tests.support.stripe_world import *  # noqa: F403 (fixtures)
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.app import create_app
from spotless.domain.billing.stripe_client import reset_stripe
from spotless.lib.jobs.runtime import JobRuntime, build_runtime, set_runtime
from spotless.settings import Settings
from tests.conftest import make_settings
from tests.support.client import Client, app_client
from tests.support.fake_stripe import FakeStripe, _fake_stripe_server, fake_stripe, stripe_env
from tests.support.stripe_webhooks import InboxJobs


@pytest.fixture
def stripe_settings(fake_stripe: FakeStripe) -> Settings:
    return make_settings(**stripe_env(fake_stripe, STRIPE_TIMEOUT_SECONDS="5"))


@pytest.fixture
async def runtime(stripe_settings: Settings) -> AsyncIterator[JobRuntime]:
    rt = build_runtime(stripe_settings, application_name="billing-test")
    set_runtime(rt)
    yield rt
    set_runtime(None)
    await rt.close()
    reset_stripe()


@pytest.fixture
async def api(stripe_settings: Settings, runtime: JobRuntime) -> AsyncIterator[Client]:
    async with app_client(create_app(stripe_settings)) as client:
        yield client


@pytest.fixture
def jobs(owner_engine: AsyncEngine) -> InboxJobs:
    return InboxJobs(owner_engine)


__all__ = ["_fake_stripe_server", "api", "fake_stripe", "jobs", "runtime", "stripe_settings"]
