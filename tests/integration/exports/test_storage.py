"""The storage layer against moto's S3 server on loopback and against a local directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from spotless.lib.storage import build_storage
from spotless.lib.storage.local import InvalidKey, LocalStorage
from spotless.lib.storage.s3 import S3Storage
from tests.conftest import make_settings
from tests.support.client import app_client
from tests.support.s3 import PART_BYTES, LocalS3


def _s3(s3_server: LocalS3, bucket: str) -> S3Storage:
    storage = build_storage(make_settings(**s3_server.env(bucket)))
    assert isinstance(storage, S3Storage)
    return storage


async def test_a_large_stream_goes_up_in_parts_as_it_is_produced(s3_server, bucket):
    storage = _s3(s3_server, bucket)
    chunk = b"x" * 16_384
    parts_seen_while_producing: list[int] = []

    async def lazily() -> AsyncIterator[bytes]:
        for index in range(40):  # 640 KiB: ten parts of 64 KiB
            if index == 30:
                # Three quarters through, the first parts are already in storage: nothing waits
                # in memory for the end of the stream.
                uploads = s3_server.open_uploads(bucket)
                assert len(uploads) == 1
                listed = s3_server.client().list_parts(Bucket=bucket, Key="big.bin", UploadId=uploads[0]["UploadId"])
                parts_seen_while_producing.append(len(listed.get("Parts", [])))
            yield chunk

    size = await storage.put_stream("big.bin", lazily(), content_type="application/octet-stream")
    assert size == 40 * 16_384
    assert parts_seen_while_producing and parts_seen_while_producing[0] >= 6
    head = s3_server.client().head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == size
    assert head["ETag"].strip('"').endswith(f"-{size // PART_BYTES}")  # a multipart object
    assert s3_server.open_uploads(bucket) == []
    assert await storage.size("big.bin") == size


async def test_a_small_stream_is_one_put(s3_server, bucket):
    storage = _s3(s3_server, bucket)

    async def once() -> AsyncIterator[bytes]:
        yield b"hello"

    assert await storage.put_stream("small.txt", once(), content_type="text/plain") == 5
    assert "-" not in s3_server.client().head_object(Bucket=bucket, Key="small.txt")["ETag"]


async def test_a_failed_stream_leaves_no_object_and_no_parts(s3_server, bucket):
    storage = _s3(s3_server, bucket)

    async def broken() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"y" * 16_384
        raise RuntimeError("the source died")

    with pytest.raises(RuntimeError):
        await storage.put_stream("broken.bin", broken(), content_type="application/octet-stream")
    assert s3_server.keys(bucket) == []
    assert s3_server.open_uploads(bucket) == []
    assert await storage.size("broken.bin") is None


async def test_presigned_get_downloads_with_its_name_and_a_short_expiry(s3_server, bucket):
    storage = _s3(s3_server, bucket)

    async def body() -> AsyncIterator[bytes]:
        yield b"a,b\r\n1,2\r\n"

    await storage.put_stream("exports/x/report.csv", body(), content_type="text/csv")
    url = await storage.download_url(
        "exports/x/report.csv", filename="report.csv", content_type="text/csv; charset=utf-8", ttl_seconds=120
    )
    query = parse_qs(urlsplit(url).query)
    # What we sign: SigV4, the short lifetime, the download's name and type.
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["120"]
    assert query["response-content-disposition"] == ['attachment; filename="report.csv"']
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 200
    assert response.content == b"a,b\r\n1,2\r\n"
    assert response.headers["content-disposition"] == 'attachment; filename="report.csv"'
    # A link tampered with (another key) is refused by the signature.
    async with httpx.AsyncClient() as http:
        forged = await http.get(url.replace("report.csv?", "other.csv?", 1))
    assert forged.status_code == 403

    await storage.delete("exports/x/report.csv")
    await storage.delete("exports/x/report.csv")  # idempotent
    assert await storage.size("exports/x/report.csv") is None


async def test_the_presigned_expiry_is_the_ttl_asked_for(s3_server, bucket):
    """moto does not enforce a presigned URL's expiry, so the test asserts what we sign: the
    lifetime (X-Amz-Expires) from the signing time (X-Amz-Date, now)."""
    storage = _s3(s3_server, bucket)
    before = datetime.now(UTC).replace(microsecond=0)
    url = await storage.download_url("soon.txt", filename="soon.txt", content_type="text/plain", ttl_seconds=30)
    query = parse_qs(urlsplit(url).query)
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert before - timedelta(seconds=1) <= signed_at <= datetime.now(UTC)
    assert query["X-Amz-Expires"] == ["30"]
    assert "X-Amz-Signature" in query


# --- local ----------------------------------------------------------------------------------------


def _local_settings(tmp_path: Path):
    return make_settings(ORDER_STORAGE_BACKEND="local", ORDER_UPLOAD_ROOT=str(tmp_path / "root"))


async def test_local_stream_is_atomic_and_served_through_a_signed_link(tmp_path):
    settings = _local_settings(tmp_path)
    storage = build_storage(settings)
    assert isinstance(storage, LocalStorage)

    async def broken() -> AsyncIterator[bytes]:
        yield b"partial"
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        await storage.put_stream("exports/o/e/f.csv", broken(), content_type="text/csv")
    assert await storage.size("exports/o/e/f.csv") is None
    assert list((tmp_path / "root" / "exports" / "o" / "e").iterdir()) == []  # no temporary file left

    async def body() -> AsyncIterator[bytes]:
        yield b"col\r\n"
        yield b"value\r\n"

    assert await storage.put_stream("exports/o/e/f.csv", body(), content_type="text/csv") == 12
    link = await storage.download_url("exports/o/e/f.csv", filename="f.csv", content_type="text/csv", ttl_seconds=60)
    assert link.startswith("/v1/storage/exports/o/e/f.csv?")

    from spotless.app import create_app

    async with app_client(create_app(settings)) as client:
        ok = await client.get(link)
        assert ok.status_code == 200, ok.text
        assert ok.content == b"col\r\nvalue\r\n"
        assert ok.headers["content-disposition"].startswith("attachment")
        assert "no-store" in ok.headers["cache-control"]
        # Another name, another key or a longer life: the signature no longer matches.
        for forged in (
            link.replace("filename=f.csv", "filename=g.csv"),
            link.replace("/f.csv?", "/g.csv?"),
            link.replace("expires=", "expires=9"),
        ):
            refused = await client.get(forged)
            assert refused.status_code == 403, forged
            assert refused.json()["type"] == "/problems/invalid-download-link"
        expired = await storage.download_url(
            "exports/o/e/f.csv", filename="f.csv", content_type="text/csv", ttl_seconds=-5
        )
        assert (await client.get(expired)).status_code == 403
        await storage.delete("exports/o/e/f.csv")
        assert (await client.get(link)).status_code == 404


def test_local_keys_cannot_leave_the_root(tmp_path):
    storage = LocalStorage(tmp_path, b"k" * 32)
    for bad in ("../etc/passwd", "/etc/passwd", "a/../../b", "a//b", ".hidden", ""):
        with pytest.raises(InvalidKey):
            storage.path(bad)
