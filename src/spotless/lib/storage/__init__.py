"""Object storage for files the API produces or receives (exports now, field photos later).

Infrastructure, not a domain: a backend knows bytes and keys, never organisations or exports; the
caller chooses the key (exports use `exports/<org_id>/<export_id>/<file>`, so a re-run of one
export overwrites its own object and never leaves a second one).

- `put_stream` takes an async iterator of chunks and never holds more than one multipart part
  (STORAGE_MULTIPART_PART_BYTES) in memory, whatever the file's size.
- `download_url` is a short-lived signed GET: S3/R2's presigned URL, or for `local` a link to
  the API's own `/v1/storage/...` route signed with HMAC-SHA256 (see `local.py`).
- `presigned_post` lets a client upload one object straight to storage: S3's
  `generate_presigned_post` with an exact key, content type and content-length-range; for `local`
  a policy of the same shape signed with HMAC-SHA256 and posted to the API's `/v1/storage/uploads`.
- `read` fetches a whole (bounded) object, `read_range` its first bytes (type sniffing).
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from spotless.settings import Settings


@dataclass(frozen=True, slots=True)
class PresignedPost:
    """A form upload: POST `url` as multipart/form-data with `fields` and then the file (`file`)."""

    url: str
    fields: dict[str, str]
    expires_at: datetime


class ObjectTooLarge(Exception):
    pass


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

    async def presigned_post(
        self, key: str, *, content_type: str, min_bytes: int, max_bytes: int, ttl_seconds: int
    ) -> PresignedPost:
        """A one-object upload form valid for `ttl_seconds`: exactly `key`, `content_type` and a
        size between `min_bytes` and `max_bytes`."""
        ...

    async def read_range(self, key: str, start: int, length: int) -> bytes | None:
        """Up to `length` bytes from `start`, or None when there is no object."""
        ...

    async def read(self, key: str, *, max_bytes: int) -> bytes | None:
        """The whole object (None when there is none); ObjectTooLarge past `max_bytes`."""
        ...


def build_storage(settings: Settings) -> Storage:
    storage = settings.storage
    if storage.backend == "local":
        from spotless.lib.storage.local import LocalStorage

        return LocalStorage.from_settings(settings)
    from spotless.lib.storage.s3 import S3Storage

    return S3Storage.from_settings(storage)


__all__ = ["ObjectTooLarge", "PresignedPost", "Storage", "build_storage"]
