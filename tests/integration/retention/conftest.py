from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar import Litestar

from spotless.domain import registry
from spotless.lib.jobs.runtime import JobRuntime, build_runtime, set_runtime
from spotless.settings import Settings
from tests.conftest import make_settings
from tests.support.client import Client, app_client

registry.import_jobs()


@pytest.fixture
def local_settings(tmp_path: Path) -> Settings:
    return make_settings(
        ORDER_STORAGE_BACKEND="local", ORDER_UPLOAD_ROOT=str(tmp_path / "uploads"), RETENTION_BATCH_SIZE="2"
    )


@pytest.fixture
async def runtime(local_settings: Settings) -> AsyncIterator[JobRuntime]:
    rt = build_runtime(local_settings, application_name="spotless-tests-retention")
    set_runtime(rt)
    yield rt
    set_runtime(None)
    await rt.close()


@pytest.fixture
async def api(local_settings: Settings) -> AsyncIterator[Client]:
    from spotless.app import create_app

    app: Litestar = create_app(local_settings)
    async with app_client(app) as test_client:
        yield test_client
