"""Photos under each organisation's retention (`photo_days`, applied by `retention.apply`): a photo
older than its organisation keeps is removed with its files (through the storage deletion queue
the janitor works), a newer one stays, and another organisation's photos are never touched by
this organisation's run. On both storage backends (moto S3 on loopback, a local directory)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import text

from spotless.domain.evidence.actors import run_janitor
from spotless.domain.retention.jobs import apply_for_org, apply_retention
from spotless.lib.storage import build_storage
from tests.integration.evidence.support import arrange, jpeg_with_gps, upload


async def _photo(api: Any, booking: dict[str, Any], cleaner: Any) -> str:
    path = f"/v1/worker/jobs/{booking['id']}/photos"
    form = (
        await api.post(
            f"{path}/uploads",
            json={"kind": "after", "content_type": "image/jpeg", "size_bytes": 10_000},
            headers=cleaner.headers,
        )
    ).json()
    await upload(api, form, jpeg_with_gps())
    done = await api.post(f"{path}/{form['photo_id']}/confirm", headers=cleaner.headers)
    assert done.status_code == 200, done.text
    return str(form["photo_id"])


async def _age(owner_engine: Any, photo_id: str, days: int) -> tuple[str, str]:
    async with owner_engine.begin() as conn:
        row = (
            await conn.execute(
                text(
                    "UPDATE job_photo SET confirmed_at = now() - make_interval(days => :days) WHERE id = :id"
                    " RETURNING object_key, thumb_key"
                ),
                {"id": photo_id, "days": days},
            )
        ).one()
    return row.object_key, row.thumb_key


async def _photos(owner_engine: Any, org_id: UUID) -> set[str]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(text("SELECT id FROM job_photo WHERE org_id = :org"), {"org": org_id})
        return {str(r.id) for r in rows}


async def _queued(owner_engine: Any) -> set[str]:
    async with owner_engine.connect() as conn:
        return set((await conn.execute(text("SELECT object_key FROM storage_deletion"))).scalars())


async def test_photos_past_the_organisations_retention_go_with_their_files(api, runtime, owner_engine):
    owner, _world, cleaner, booking = await arrange(api)
    other, _w, other_cleaner, other_booking = await arrange(api)
    assert (await api.put("/v1/admin/retention", json={"photo_days": 30}, headers=owner.headers)).status_code == 200
    old, new = await _photo(api, booking, cleaner), await _photo(api, booking, cleaner)
    theirs = await _photo(api, other_booking, other_cleaner)
    old_files = await _age(owner_engine, old, 40)
    new_files = await _age(owner_engine, new, 10)
    # Past what A keeps, within what B keeps (the default, 365 days).
    their_files = await _age(owner_engine, theirs, 40)
    storage = build_storage(runtime.settings)
    assert all([await storage.size(key) for key in (*old_files, *new_files, *their_files)])
    # Already queued: the confirmed photos' raw uploads (due once their forms expire).
    uploads = await _queued(owner_engine)

    counts = await apply_for_org(runtime, owner.org_id, runtime.settings.retention.batch_size)
    assert counts["photos"] == 1
    assert await _photos(owner_engine, owner.org_id) == {new}
    assert await _photos(owner_engine, other.org_id) == {theirs}
    # The files are queued for the janitor (its retried deletes), not deleted on the spot.
    assert await _queued(owner_engine) - uploads == set(old_files)
    assert all([await storage.size(key) for key in old_files])

    report = await run_janitor(runtime)
    assert report["deleted"] == 2 and report["delete_failed"] == 0
    assert await _queued(owner_engine) == uploads
    for key in old_files:
        assert await storage.size(key) is None, key
    assert all([await storage.size(key) for key in (*new_files, *their_files)])

    # The system job: B's photo is within B's retention, and nothing of A's is left to remove.
    again = await apply_retention(runtime)
    assert again["photos"] == 0
    assert await _photos(owner_engine, other.org_id) == {theirs}
    assert await _photos(owner_engine, owner.org_id) == {new}
