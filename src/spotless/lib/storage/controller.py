"""GET /v1/storage/{key}: the local backend's signed downloads (see local.py). Public: the signed
link is the credential, as an S3 presigned URL is. With an S3 or R2 backend it answers 404."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter
from litestar.response import File

from spotless.lib.errors import Problem, not_found, problems
from spotless.lib.schema import NO_NUL
from spotless.lib.storage.local import ROUTE, InvalidKey, LocalStorage
from spotless.settings import Settings


class StorageDownloadController(Controller):
    path = ROUTE
    tags = ["storage"]

    @get(
        "/{key:path}",
        operation_id="downloadStoredFile",
        summary="Download a stored file through a signed, expiring link (local storage backend)",
        opt={"public": True, "rate_limit": "public"},
        responses=problems(403, 404),
    )
    async def download(
        self,
        settings: Settings,
        key: str,
        expires: int,
        signature: Annotated[str, Parameter(max_length=128, pattern=r"^[0-9a-f]+$")],
        filename: Annotated[str, Parameter(max_length=200, pattern=NO_NUL)],
        type: Annotated[str, Parameter(max_length=100, pattern=r"^[\w.+-]+/[\w.+-]+(; ?charset=[\w-]+)?$")],
    ) -> File:
        if settings.storage.backend != "local":
            raise not_found("file")
        storage = LocalStorage.from_settings(settings)
        object_key = key.lstrip("/")
        if not storage.verify(object_key, expires=expires, filename=filename, content_type=type, signature=signature):
            raise Problem(403, "invalid-download-link", "Invalid or expired download link")
        try:
            path = storage.path(object_key)
        except InvalidKey:
            raise not_found("file") from None
        if not path.is_file():
            raise not_found("file")
        return File(
            path=path,
            filename=filename,
            media_type=type,
            content_disposition_type="attachment",
            headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
        )
