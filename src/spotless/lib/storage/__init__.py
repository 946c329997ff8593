"""Object storage for files the API produces or receives (exports now, field photos later).

Infrastructure, not a domain: a backend knows bytes and keys, never organisations or exports; the
caller chooses the key (exports use `exports/<org_id>/<export_id>/<file>`, so a re-run of one
export overwrites its own object and never leaves a second one).

- `put_stream` takes an async iterator of chunks and never holds more than one multipart part
  (STORAGE_MULTIPART_PART_BYTES) in memory, whatever the file's size.
- `download_url` is a short-lived signed GET: S3/R2's presigned URL, or for `local` a link to
  the API's own `/v1/storage/...` route signed with HMAC-SHA256 (see `local.py`).
- Photos add presigned POST uploads next to `download_url` (S3's `generate_presigned_post` with a
  content-length-range and content type; a signed upload route for `local`), on the same clients.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Protocol

from spotless.settings import Settings


class Storage(Protocol):
    backend: str

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], *, content_type: str) -> int:
        """Store the chunks under `key` (replacing any object there); returns the bytes stored.
        Nothing is visible under `key` unless the whole stream was stored."""
        ...

    async def download_url(self, key: str, *, filename: str, content_type: str, ttl_seconds: int) -> str:
        """A GET link valid for `ttl_seconds` that downloads the object as `filename`. For the
        local backend the link is relative to the API (`/v1/storage/...`)."""
        ...

    async def size(self, key: str) -> int | None:
        """The object's size, or None when there is none."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; deleting one that is gone is not an error."""
        ...


def build_storage(settings: Settings) -> Storage:
    storage = settings.storage
    if storage.backend == "local":
        from spotless.lib.storage.local import LocalStorage

        return LocalStorage.from_settings(settings)
    from spotless.lib.storage.s3 import S3Storage

    return S3Storage.from_settings(storage)


__all__ = ["Storage", "build_storage"]
