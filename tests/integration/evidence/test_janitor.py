"""`storage-janitor`: unconfirmed uploads removed after their expiry + grace, photos past
retention removed, failed deletes kept in the queue and retried; and photo rows under RLS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from spotless.domain.evidence.actors import run_janitor
from spotless.domain.evidence.models import JobPhoto
from spotless.lib.storage import build_storage
from spotless.lib.storage.s3 import S3Storage
from tests.integration.evidence.support import arrange, jpeg_with_gps, upload
from tests.support.identity import signup


async def _uploaded(api, *, confirm: bool) -> tuple[dict, dict, object]:
    _owner, _world, cleaner, booking = await arrange(api)
    form = (
        await api.post(
            f"/v1/worker/jobs/{booking['id']}/photos/uploads",
            json={"kind": "after", "content_type": "image/jpeg", "size_bytes": 10_000},
            headers=cleaner.headers,
        )
    ).json()
    await upload(api, form, jpeg_with_gps())
    if confirm:
        done = await api.post(
            f"/v1/worker/jobs/{booking['id']}/photos/{form['photo_id']}/confirm", headers=cleaner.headers
        )
        assert done.status_code == 200, done.text
    return form, booking, cleaner


async def _count(owner_engine, sql: str) -> int:
    async with owner_engine.connect() as conn:
        return int(await conn.scalar(text(sql)) or 0)


async def test_unconfirmed_uploads_are_removed_after_expiry_and_grace(api, runtime, owner_engine):
    form, _booking, _cleaner = await _uploaded(api, confirm=False)
    kept, _b, _c = await _uploaded(api, confirm=True)
    storage = build_storage(runtime.settings)
    key = form["fields"]["key"]
    assert await storage.size(key)
    # Within the form's lifetime nothing is touched.
    early = await run_janitor(runtime)
    assert early["unconfirmed"] == 0 and await storage.size(key)
    later = (
        datetime.now(UTC)
        + timedelta(seconds=runtime.settings.photos.upload_ttl_seconds)
        + timedelta(seconds=runtime.settings.photos.janitor_grace_seconds + 5)
    )
    report = await run_janitor(runtime, now=later)
    assert report["unconfirmed"] == 1 and report["delete_failed"] == 0
    assert report["deleted"] >= 2  # the abandoned upload, and the confirmed photo's raw upload
    assert await storage.size(key) is None
    photo_id = form["photo_id"]
    assert await _count(owner_engine, f"SELECT count(*) FROM job_photo WHERE id = '{photo_id}'") == 0
    # The confirmed photo stays, with its files.
    assert await _count(owner_engine, f"SELECT count(*) FROM job_photo WHERE id = '{kept['photo_id']}'") == 1
    assert await _count(owner_engine, "SELECT count(*) FROM storage_deletion") == 0
    # Past retention it goes too.
    aged = await run_janitor(
        runtime, now=datetime.now(UTC) + timedelta(days=runtime.settings.photos.retention_days + 1)
    )
    assert aged["retention"] == 1 and aged["deleted"] == 2  # photo and thumbnail
    assert await _count(owner_engine, f"SELECT count(*) FROM job_photo WHERE id = '{kept['photo_id']}'") == 0


async def test_a_failed_delete_stays_queued_and_is_retried(s3_server, bucket, owner_engine):
    from spotless.app import create_app
    from spotless.lib.jobs.runtime import build_runtime
    from tests.conftest import make_settings
    from tests.support.client import app_client

    settings = make_settings(**s3_server.env(bucket))
    rt = build_runtime(settings, application_name="spotless-tests-janitor")
    try:
        async with app_client(create_app(settings)) as api:
            form, _b, _c = await _uploaded(api, confirm=False)
        later = datetime.now(UTC) + timedelta(days=1)
        # Storage refusing: a bucket that does not exist.
        broken = S3Storage.from_settings(make_settings(**s3_server.env("no-such-bucket")).storage)
        failed = await run_janitor(rt, broken, now=later)
        assert failed["unconfirmed"] == 1 and failed["delete_failed"] == 1 and failed["deleted"] == 0
        async with owner_engine.connect() as conn:
            attempts, error, not_before = (
                await conn.execute(text("SELECT attempts, last_error, not_before FROM storage_deletion"))
            ).one()
        assert attempts == 1 and "NoSuchBucket" in error and not_before > later
        assert form["fields"]["key"] in s3_server.keys(bucket)
        # Not retried before its backoff; then retried against the working storage.
        assert (await run_janitor(rt, now=later))["deleted"] == 0
        retried = await run_janitor(rt, now=later + timedelta(hours=1))
        assert retried["deleted"] == 1 and retried["queued"] == 0
        assert form["fields"]["key"] not in s3_server.keys(bucket)
    finally:
        await rt.close()


async def test_photo_rows_are_under_rls(tmp_path, app_sessions):
    from spotless.app import create_app
    from tests.conftest import make_settings
    from tests.support.client import app_client

    settings = make_settings(ORDER_STORAGE_BACKEND="local", ORDER_UPLOAD_ROOT=str(tmp_path / "u"))
    async with app_client(create_app(settings)) as client:
        _form, _booking, cleaner = await _uploaded(client, confirm=False)
        stranger = await signup(client, name="Other org")
    async with app_sessions.scoped(stranger.org_id) as session:
        assert await session.scalar(select(func.count()).select_from(JobPhoto)) == 0
    async with app_sessions.scoped(cleaner.org_id) as session:
        assert await session.scalar(select(func.count()).select_from(JobPhoto)) == 1
    with pytest.raises(DBAPIError, match="row-level security"):
        async with app_sessions.scoped(stranger.org_id) as session:
            await session.execute(
                text(
                    "INSERT INTO storage_deletion (id, org_id, object_key, not_before, created_at, updated_at)"
                    " VALUES (gen_random_uuid(), :org, 'photos/x', now(), now(), now())"
                ),
                {"org": cleaner.org_id},
            )
