from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from litestar import Litestar

from spotless.domain import registry
from spotless.lib.jobs.runtime import JobRuntime, build_runtime, set_runtime
from spotless.settings import Settings
from tests.conftest import make_settings
from tests.support.client import Client, app_client
from tests.support.s3 import LocalS3, local_s3

registry.import_jobs()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[LocalS3]:
    with local_s3() as server:
        yield server


@pytest.fixture
def bucket(s3_server: LocalS3) -> str:
    name = f"exports-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(name)
    return name


@pytest.fixture(params=["s3", "local"])
def storage_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The same tests on both backends: S3 (moto on loopback) and a local directory."""
    if request.param == "s3":
        server: LocalS3 = request.getfixturevalue("s3_server")
        bucket: str = request.getfixturevalue("bucket")
        return make_settings(**server.env(bucket), EXPORT_PROGRESS_BATCH_ROWS="50")
    return make_settings(
        ORDER_STORAGE_BACKEND="local", ORDER_UPLOAD_ROOT=str(tmp_path / "uploads"), EXPORT_PROGRESS_BATCH_ROWS="50"
    )


@pytest.fixture
async def runtime(storage_settings: Settings) -> AsyncIterator[JobRuntime]:
    rt = build_runtime(storage_settings, application_name="spotless-tests-exports")
    set_runtime(rt)
    yield rt
    set_runtime(None)
    await rt.close()


@pytest.fixture
def storage_app(storage_settings: Settings) -> Litestar:
    from spotless.app import create_app

    return create_app(storage_settings)


@pytest.fixture
async def api(storage_app: Litestar) -> AsyncIterator[Client]:
    async with app_client(storage_app) as test_client:
        yield test_client
