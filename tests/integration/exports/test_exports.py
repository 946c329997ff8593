"""Exports end to end, on both storage backends (S3 through moto on loopback, and local): the
request, the job run in-process with our real runner, progress, the download link, the file."""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile
from collections.abc import AsyncIterable, AsyncIterator
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import text

from spotless.domain.billing.models import LedgerEntry
from spotless.domain.exports.actors import sweep_exports
from spotless.domain.exports.runner import object_key, run_export
from spotless.lib.storage import Storage, build_storage
from tests.support.factories import add, arrange, new_client, new_issued_invoice
from tests.support.identity import add_member, signup

HOSTILE = {
    "formula": '=HYPERLINK("http://evil.example","x")',
    "plus": "+SUM(1,2)",
    "minus": "-2+3",
    "at": "@cmd",
    "tab": "\tTabbed",
    "cr": "\rCarriage",
    "lf": "\nLinefeed",
}
ROWS = 1_500


class Watching:
    """The real storage, seen from the outside while an export streams into it: the progress
    committed at each chunk and the chunk sizes. `hold` pauses the stream after its first chunk."""

    def __init__(self, inner: Storage, owner_engine: Any, export_id: str, hold: asyncio.Event | None = None) -> None:
        self.inner = inner
        self.backend = inner.backend
        self.owner_engine = owner_engine
        self.export_id = export_id
        self.hold = hold
        self.progress: list[tuple[int, int | None]] = []
        self.chunk_sizes: list[int] = []
        self.first_chunk = asyncio.Event()

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], *, content_type: str) -> int:
        async def watched() -> AsyncIterator[bytes]:
            async for chunk in chunks:
                self.chunk_sizes.append(len(chunk))
                async with self.owner_engine.connect() as conn:
                    row = (
                        await conn.execute(
                            text("SELECT progress_done, progress_total FROM exports WHERE id = :id"),
                            {"id": self.export_id},
                        )
                    ).one()
                self.progress.append((row.progress_done, row.progress_total))
                self.first_chunk.set()
                if self.hold is not None:
                    await self.hold.wait()
                yield chunk

        return await self.inner.put_stream(key, watched(), content_type=content_type)

    async def download_url(self, key: str, **kwargs: Any) -> str:
        return await self.inner.download_url(key, **kwargs)

    async def size(self, key: str) -> int | None:
        return await self.inner.size(key)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)


async def _many_clients(owner_engine: Any, org_id: UUID, count: int) -> None:
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO client (id, org_id, name, email, phone, tags, blocked, created_at, updated_at)"
                " SELECT gen_random_uuid(), :org, 'Client ' || g, 'c' || g || '@example.com', '555 01' || g,"
                " ARRAY['bulk'], false, now(), now() FROM generate_series(1, :n) g"
            ),
            {"org": org_id, "n": count},
        )


async def _download(api: Any, url: str) -> httpx.Response:
    if url.startswith("http://testserver.local"):
        return await api.get(url)
    async with httpx.AsyncClient() as http:
        return await http.get(url)


def _csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


async def test_a_large_export_streams_with_progress_and_downloads_safely(
    api, runtime, storage_settings, owner_engine, s3_server
):
    owner = await signup(api)
    await _many_clients(owner_engine, owner.org_id, ROWS)
    async with arrange(owner_engine) as db:
        for label, name in HOSTILE.items():
            await new_client(db, owner.org_id, name=name, notes=label, email=None)

    created = await api.post("/v1/exports", json={"kind": "clients"}, headers=owner.headers)
    assert created.status_code == 202, created.text
    body = created.json()
    assert body["status"] == "queued" and body["progress"] == {"done": 0, "total": None}
    assert created.headers["location"] == f"/v1/exports/{body['id']}"
    assert body["download_url"] is None
    # The job was stored with the export (the outbox), in the same transaction.
    async with owner_engine.connect() as conn:
        jobs = (await conn.execute(text("SELECT args FROM job_outbox WHERE actor_name = 'exports.run'"))).all()
    assert [j.args for j in jobs] == [[str(owner.org_id), body["id"]]]
    # The same request while it is queued joins it.
    again = await api.post("/v1/exports", json={"kind": "clients"}, headers=owner.headers)
    assert again.status_code == 202 and again.json()["id"] == body["id"]

    watching = Watching(build_storage(storage_settings), owner_engine, body["id"])
    outcome = await run_export(runtime, owner.org_id, UUID(body["id"]), storage=watching)
    assert outcome == "succeeded"

    total = ROWS + len(HOSTILE)
    # The file went out while rows were still being read: the first chunk was stored with the
    # total known and only part of it counted, and progress advanced chunk by chunk.
    assert watching.progress[0][1] == total
    assert watching.progress[0][0] < total
    seen = [done for done, _ in watching.progress]
    assert seen == sorted(seen) and len(set(seen)) >= 3
    assert max(watching.chunk_sizes) < 128 * 1024

    polled = (await api.get(f"/v1/exports/{body['id']}", headers=owner.headers)).json()
    assert polled["status"] == "succeeded"
    assert polled["progress"] == {"done": total, "total": total}
    assert polled["filename"] == "clients.csv"
    assert polled["download_url"] and polled["download_expires_at"]
    response = await _download(api, polled["download_url"])
    assert response.status_code == 200, response.text
    assert polled["size_bytes"] == len(response.content)
    rows = _csv(response.content)
    assert rows[0][:3] == ["client_id", "name", "email"]
    assert len(rows) == total + 1
    by_note = {row[8]: row for row in rows[1:] if row[8]}
    for label, name in HOSTILE.items():
        assert by_note[label][1] == "'" + name, label
    if storage_settings.storage.backend == "s3":
        bucket = storage_settings.storage.bucket
        head = s3_server.client().head_object(
            Bucket=bucket, Key=object_key(owner.org_id, UUID(body["id"]), "clients.csv")
        )
        assert "-" in head["ETag"]  # uploaded in parts
        assert s3_server.open_uploads(bucket) == []

    # A redelivery of the finished job does nothing.
    assert await run_export(runtime, owner.org_id, UUID(body["id"])) == "not-claimed"


async def test_a_crashed_worker_is_taken_over_and_the_export_has_one_file(
    api, runtime, storage_settings, owner_engine, s3_server
):
    owner = await signup(api)
    await _many_clients(owner_engine, owner.org_id, ROWS)
    export_id = (await api.post("/v1/exports", json={"kind": "clients"}, headers=owner.headers)).json()["id"]
    storage = build_storage(storage_settings)

    # The first worker dies mid-stream (its task is cancelled with the lease held).
    held = Watching(storage, owner_engine, export_id, hold=asyncio.Event())
    first = asyncio.create_task(run_export(runtime, owner.org_id, UUID(export_id), owner="worker-1", storage=held))
    await asyncio.wait_for(held.first_chunk.wait(), 30)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    state = (await api.get(f"/v1/exports/{export_id}", headers=owner.headers)).json()
    assert state["status"] == "running" and state["attempts"] == 1

    # A redelivery while the lease is live is refused; once it lapses, the next worker restarts it.
    assert await run_export(runtime, owner.org_id, UUID(export_id), owner="worker-2", storage=storage) == "not-claimed"
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE exports SET lease_expires_at = now() - interval '1 second' WHERE id = :id"), {"id": export_id}
        )
    assert await run_export(runtime, owner.org_id, UUID(export_id), owner="worker-2", storage=storage) == "succeeded"
    assert await run_export(runtime, owner.org_id, UUID(export_id), owner="worker-3", storage=storage) == "not-claimed"

    done = (await api.get(f"/v1/exports/{export_id}", headers=owner.headers)).json()
    assert done["status"] == "succeeded" and done["attempts"] == 2
    assert done["progress"]["done"] == ROWS
    prefix = f"exports/{owner.org_id}/{export_id}/"
    if storage_settings.storage.backend == "s3":
        bucket = storage_settings.storage.bucket
        assert s3_server.keys(bucket, prefix) == [prefix + "clients.csv"]
        assert s3_server.open_uploads(bucket) == []
    else:
        folder = storage.root / prefix  # type: ignore[attr-defined]
        assert sorted(p.name for p in folder.iterdir()) == ["clients.csv"]
    response = await _download(api, done["download_url"])
    assert len(_csv(response.content)) == ROWS + 1


async def test_the_ledgers_and_the_tax_zip(api, runtime, storage_settings, owner_engine):
    owner = await signup(api)
    finance = await add_member(api, owner, "finance")
    today = date.today()
    async with arrange(owner_engine) as db:
        person = await new_client(db, owner.org_id, name="Ada Client")
        invoice = await new_issued_invoice(db, owner.org_id, person.id, number=1, paid_cents=100_00)
        await new_issued_invoice(db, owner.org_id, person.id, number=2, items=(("=cmd|' /C calc'!A0", 50_00),))
        await add(
            db,
            LedgerEntry(
                org_id=owner.org_id, invoice_id=invoice.id, client_id=person.id, kind="payment", amount_cents=100_00,
                method="etransfer", source="manual", reference="-ref 42", occurred_at=invoice.issued_at,
            ),
        )  # fmt: skip
    period = {"from": (today - timedelta(days=3)).isoformat(), "to": (today + timedelta(days=3)).isoformat()}

    for kind in ("invoices", "payments"):
        created = await api.post("/v1/exports", json={"kind": kind, "period": period}, headers=finance.headers)
        assert created.status_code == 202, created.text
        assert await run_export(runtime, owner.org_id, UUID(created.json()["id"])) == "succeeded"
        ready = (await api.get(f"/v1/exports/{created.json()['id']}", headers=finance.headers)).json()
        rows = _csv((await _download(api, ready["download_url"])).content)
        if kind == "invoices":
            assert [r[1] for r in rows[1:]] == ["INV-2026-000001", "INV-2026-000002"]
            assert rows[1][13] == "226.00" and rows[1][14] == "100.00" and rows[1][16] == "126.00"
        else:
            assert rows[1][2:6] == ["payment", "etransfer", "manual", "100.00"]
            assert rows[1][9] == "'-ref 42"

    # The operations guides' tax export: 202 while it is built, 303 to the ZIP once ready.
    url = f"/v1/admin/finance/taxes/export?from={period['from']}&to={period['to']}"
    started = await api.get(url, headers=finance.headers)
    assert started.status_code == 202, started.text
    export_id = started.json()["id"]
    assert started.json()["kind"] == "taxes" and started.json()["format"] == "zip"
    assert (await api.get(url, headers=finance.headers)).json()["id"] == export_id  # joined, not doubled
    assert await run_export(runtime, owner.org_id, UUID(export_id)) == "succeeded"
    ready = await api.get(url, headers=finance.headers)
    assert ready.status_code == 303
    archive = zipfile.ZipFile(io.BytesIO((await _download(api, ready.headers["location"])).content))
    assert archive.namelist() == ["summary.csv", "invoices.csv", "payments.csv"]
    summary = _csv(archive.read("summary.csv"))
    assert summary[0] == ["tax", "rate_percent", "region", "taxable", "tax_collected", "documents"]
    # $200 and $50 at 13 % HST (per invoice, rounded): $26.00 + $6.50.
    assert summary[1] == ["HST", "13.000", "ON", "250.00", "32.50", "2"]
    invoices = _csv(archive.read("invoices.csv"))
    assert len(invoices) == 3
    assert len(_csv(archive.read("payments.csv"))) == 2
    assert archive.read("summary.csv").startswith(b"\xef\xbb\xbf")

    bad = await api.get(
        f"/v1/admin/finance/taxes/export?from={period['to']}&to={period['from']}", headers=finance.headers
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "to"
    missing = await api.post("/v1/exports", json={"kind": "bookings"}, headers=finance.headers)
    assert missing.status_code == 400 and missing.json()["errors"][0]["field"] == "period"
    wrong = await api.post(
        "/v1/exports", json={"kind": "taxes", "period": period, "format": "csv"}, headers=finance.headers
    )
    assert wrong.status_code == 400 and wrong.json()["errors"][0]["field"] == "format"


async def test_a_bookings_export_reads_the_period_in_local_time(api, runtime, owner_engine):
    from tests.support.factories import arrange_world, new_booking

    owner = await signup(api, timezone="America/Vancouver")
    world = await arrange_world(owner_engine, owner.org_id, timezone="America/Vancouver", workers=0)
    tomorrow = date.today() + timedelta(days=1)
    async with arrange(owner_engine) as db:
        from datetime import datetime

        local = world.tz
        inside = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 23, 30, tzinfo=local)  # 07:30 UTC next day
        outside = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 0, 30, tzinfo=local) - timedelta(hours=1)
        await new_booking(
            db, owner.org_id, world.client_id, world.address_id, world.service_id, starts_at=inside, notes="@late"
        )
        await new_booking(db, owner.org_id, world.client_id, world.address_id, world.service_id, starts_at=outside)
    period = {"from": tomorrow.isoformat(), "to": tomorrow.isoformat()}
    created = await api.post("/v1/exports", json={"kind": "bookings", "period": period}, headers=owner.headers)
    assert await run_export(runtime, owner.org_id, UUID(created.json()["id"])) == "succeeded"
    ready = (await api.get(f"/v1/exports/{created.json()['id']}", headers=owner.headers)).json()
    assert ready["filename"] == f"bookings_{tomorrow:%Y%m%d}_{tomorrow:%Y%m%d}.csv"
    rows = _csv((await _download(api, ready["download_url"])).content)
    assert len(rows) == 2 and rows[1][12] == "'@late"


async def test_a_failing_export_retries_then_dead_letters_and_is_replayed(api, runtime, storage_settings, tmp_path):
    """Storage that refuses every write (S3: a bucket that does not exist; local: the root is a
    file): each attempt fails, the last one dead-letters the export with its reason."""
    from spotless.lib.jobs.runtime import build_runtime
    from tests.conftest import make_settings

    if storage_settings.storage.backend == "s3":
        env = {
            "ORDER_STORAGE_BACKEND": "s3",
            "S3_BUCKET": "no-such-bucket",
            "S3_ENDPOINT_URL": storage_settings.storage.endpoint_url or "",
            "S3_ACCESS_KEY": storage_settings.storage.access_key or "",
            "S3_SECRET_KEY": storage_settings.storage.secret_key or "",
        }
    else:
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("x")
        env = {"ORDER_STORAGE_BACKEND": "local", "ORDER_UPLOAD_ROOT": str(blocker)}
    broken = build_runtime(make_settings(**env, EXPORT_MAX_ATTEMPTS="2"), application_name="spotless-tests-broken")
    try:
        owner = await signup(api)
        other = await signup(api, name="Other Org")
        export_id = (await api.post("/v1/exports", json={"kind": "clients"}, headers=owner.headers)).json()["id"]
        with pytest.raises(Exception):  # noqa: B017 (raised for Dramatiq's retry, whatever the storage's error)
            await run_export(broken, owner.org_id, UUID(export_id))
        first = (await api.get(f"/v1/exports/{export_id}", headers=owner.headers)).json()
        assert first["status"] == "queued" and first["attempts"] == 1 and first["error"]
        assert await run_export(broken, owner.org_id, UUID(export_id)) == "dead"
    finally:
        await broken.close()

    dead = (await api.get(f"/v1/exports/{export_id}", headers=owner.headers)).json()
    assert dead["status"] == "failed" and dead["attempts"] == 2 and dead["error"]
    assert dead["download_url"] is None

    dlq = await api.get("/v1/admin/queue/dlq?kind=all&limit=1", headers=owner.headers)
    assert dlq.status_code == 200, dlq.text
    assert dlq.json()["outbox_dead_count"] == 0 and dlq.json()["export_dead_count"] == 1
    assert [(i["kind"], i["id"]) for i in dlq.json()["items"]] == [("export", export_id)]
    theirs = (await api.get("/v1/admin/queue/dlq?kind=all&limit=1", headers=other.headers)).json()
    assert theirs == {"outbox_dead_count": 0, "export_dead_count": 0, "items": []}

    # Another organisation cannot replay it; its own admin can.
    refused = await api.post(
        "/v1/admin/queue/dlq/replay", json={"kind": "export", "ids": [export_id]}, headers=other.headers
    )
    assert refused.status_code == 202 and refused.json() == {"replayed": 0, "not_found": [export_id]}
    replayed = await api.post(
        "/v1/admin/queue/dlq/replay", json={"kind": "export", "ids": [export_id]}, headers=owner.headers
    )
    assert replayed.json() == {"replayed": 1, "not_found": []}
    assert await run_export(runtime, owner.org_id, UUID(export_id)) == "succeeded"
    assert (await api.get("/v1/admin/queue/dlq", headers=owner.headers)).json()["export_dead_count"] == 0


async def test_the_sweep_expires_exports_and_deletes_their_files(api, runtime, storage_settings, owner_engine):
    owner = await signup(api)
    other = await signup(api, name="Other Org")
    ids = {}
    for who in (owner, other):
        export_id = (await api.post("/v1/exports", json={"kind": "clients"}, headers=who.headers)).json()["id"]
        assert await run_export(runtime, who.org_id, UUID(export_id)) == "succeeded"
        ids[who.org_id] = export_id
    mine = ids[owner.org_id]
    link = (await api.get(f"/v1/exports/{mine}", headers=owner.headers)).json()["download_url"]
    assert (await _download(api, link)).status_code == 200
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE exports SET expires_at = now() - interval '1 minute' WHERE id = :id"), {"id": mine}
        )

    report = await sweep_exports(runtime)
    assert report["expired"] == 1 and report["deleted"] == 1
    expired = (await api.get(f"/v1/exports/{mine}", headers=owner.headers)).json()
    assert expired["status"] == "expired" and expired["download_url"] is None
    storage = build_storage(storage_settings)
    assert await storage.size(object_key(owner.org_id, UUID(mine), "clients.csv")) is None
    assert (await _download(api, link)).status_code in (403, 404)
    # The other organisation's export is untouched.
    theirs = (await api.get(f"/v1/exports/{ids[other.org_id]}", headers=other.headers)).json()
    assert theirs["status"] == "succeeded"
    assert await storage.size(object_key(other.org_id, UUID(ids[other.org_id]), "clients.csv")) is not None
    assert (await sweep_exports(runtime))["deleted"] == 0  # nothing left to do

    # A worker that died with the lease: the sweep sends the export again.
    stuck = (await api.post("/v1/exports", json={"kind": "clients", "period": {"from": "2026-01-01", "to": "2026-01-31"}}, headers=owner.headers)).json()["id"]  # fmt: skip
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE exports SET status = 'running', lease_owner = 'dead', attempts = 1,"
                " lease_expires_at = now() - interval '1 second' WHERE id = :id"
            ),
            {"id": stuck},
        )
        await conn.execute(text("DELETE FROM job_outbox"))
    assert (await sweep_exports(runtime))["resumed"] == 1
    async with owner_engine.connect() as conn:
        jobs = (await conn.execute(text("SELECT args FROM job_outbox WHERE actor_name = 'exports.run'"))).all()
    assert [j.args for j in jobs] == [[str(owner.org_id), stuck]]
    assert await run_export(runtime, owner.org_id, UUID(stuck)) == "succeeded"
