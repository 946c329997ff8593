"""The `local` backend: objects are files under ORDER_UPLOAD_ROOT; downloads go through the API.

A download link is `/v1/storage/<key>?expires=&filename=&type=&signature=`, the signature an
HMAC-SHA256 over all of them with STORAGE_SIGNING_SECRET (derived from AUTH_SECRET_KEY when unset):
nobody can widen a link's lifetime, rename the file or point it at another key. The link is the
credential (like S3's presigned URLs), so the route is public; it answers 403 for a bad or
expired signature and 404 for a missing object.

A stream is written to a temporary file beside its target and renamed onto it when complete, so a
crashed upload never leaves a partial object under its key.

Uploads mirror S3's presigned POST: `presigned_post` returns a form for `/v1/storage/uploads` whose
`policy` (base64 JSON: expiration and conditions on the key, content type and size) is signed with
a key derived apart from the download one, so a download link can never pass for an upload form."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import time
import uuid
from collections.abc import AsyncIterable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

import anyio
import msgspec

from spotless.lib.storage import ObjectTooLarge, PresignedPost
from spotless.settings import Settings

ROUTE = "/v1/storage"
UPLOAD_ROUTE = f"{ROUTE}/uploads"
# Keys are ours (never a user's file name): plain segments, no `..`, no absolute paths.
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


class InvalidKey(ValueError):
    pass


def check_key(key: str) -> str:
    if len(key) > 512 or not _KEY.match(key) or ".." in key:
        raise InvalidKey(f"not a storage key: {key!r}")
    return key


def signing_key(settings: Settings) -> bytes:
    secret = settings.storage.signing_secret
    if secret:
        return secret.encode()
    # A key of its own, derived: a download signature can never stand in for a token signature.
    return hmac.new(settings.auth.secret_key.encode(), b"spotless/storage-downloads/v1", hashlib.sha256).digest()


def _signature(key: bytes, object_key: str, expires: int, filename: str, content_type: str) -> str:
    message = "\n".join((object_key, str(expires), filename, content_type)).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class UploadPolicy(msgspec.Struct, frozen=True):
    key: str
    content_type: str
    min_bytes: int
    max_bytes: int
    expires: int


def _post_signature(secret: bytes, policy: str) -> str:
    upload_key = hmac.new(secret, b"spotless/storage-uploads/v1", hashlib.sha256).digest()
    return hmac.new(upload_key, policy.encode(), hashlib.sha256).hexdigest()


class LocalStorage:
    backend = "local"

    def __init__(self, root: str | Path, secret: bytes) -> None:
        self.root = Path(root).resolve()
        self._secret = secret

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalStorage:
        return cls(settings.storage.upload_root, signing_key(settings))

    def path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise InvalidKey(f"not a storage key: {key!r}")
        return path

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], *, content_type: str) -> int:
        target = self.path(key)
        await anyio.to_thread.run_sync(lambda: target.parent.mkdir(parents=True, exist_ok=True))
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        total = 0
        try:
            async with await anyio.open_file(partial, "wb") as out:
                async for chunk in chunks:
                    await out.write(chunk)
                    total += len(chunk)
                await out.flush()
                await anyio.to_thread.run_sync(os.fsync, out.wrapped.fileno())
            await anyio.to_thread.run_sync(os.replace, partial, target)
        except BaseException:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise
        return total

    async def download_url(self, key: str, *, filename: str, content_type: str, ttl_seconds: int) -> str:
        check_key(key)
        expires = int(time.time()) + ttl_seconds
        query = urlencode(
            {
                "expires": expires,
                "filename": filename,
                "type": content_type,
                "signature": _signature(self._secret, key, expires, filename, content_type),
            }
        )
        return f"{ROUTE}/{quote(key)}?{query}"

    def verify(self, key: str, *, expires: int, filename: str, content_type: str, signature: str) -> bool:
        """The link is ours, for this key, name and type, and not expired."""
        expected = _signature(self._secret, key, expires, filename, content_type)
        return hmac.compare_digest(expected, signature) and expires >= int(time.time())

    async def size(self, key: str) -> int | None:
        path = self.path(key)
        try:
            return (await anyio.to_thread.run_sync(path.stat)).st_size
        except FileNotFoundError:
            return None

    async def delete(self, key: str) -> None:
        path = self.path(key)
        await anyio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))

    async def presigned_post(
        self, key: str, *, content_type: str, min_bytes: int, max_bytes: int, ttl_seconds: int
    ) -> PresignedPost:
        check_key(key)
        expires = int(time.time()) + ttl_seconds
        policy = base64.b64encode(
            msgspec.json.encode(UploadPolicy(key, content_type, min_bytes, max_bytes, expires))
        ).decode()
        return PresignedPost(
            url=UPLOAD_ROUTE,
            fields={
                "key": key,
                "Content-Type": content_type,
                "policy": policy,
                "signature": _post_signature(self._secret, policy),
            },
            expires_at=datetime.fromtimestamp(expires, UTC),
        )

    def verify_post(self, policy: str, signature: str) -> UploadPolicy | None:
        """The upload form's policy when it is ours and not expired."""
        if not hmac.compare_digest(_post_signature(self._secret, policy), signature):
            return None
        try:
            decoded = msgspec.json.decode(base64.b64decode(policy, validate=True), type=UploadPolicy)
        except (ValueError, msgspec.DecodeError):
            return None
        return decoded if decoded.expires >= int(time.time()) else None

    async def read_range(self, key: str, start: int, length: int) -> bytes | None:
        path = self.path(key)

        def read() -> bytes | None:
            try:
                with path.open("rb") as f:
                    f.seek(start)
                    return f.read(length)
            except FileNotFoundError:
                return None

        return await anyio.to_thread.run_sync(read)

    async def read(self, key: str, *, max_bytes: int) -> bytes | None:
        path = self.path(key)

        def read() -> bytes | None:
            try:
                with path.open("rb") as f:
                    data = f.read(max_bytes + 1)
            except FileNotFoundError:
                return None
            if len(data) > max_bytes:
                raise ObjectTooLarge(key)
            return data

        return await anyio.to_thread.run_sync(read)
