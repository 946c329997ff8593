"""GET /v1/storage/{key}: the local backend's signed downloads, and POST /v1/storage/uploads: its
presigned-POST uploads (see local.py). Public: the signed link or form is the credential, as an S3
presigned URL is. With an S3 or R2 backend both answer 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.params import Parameter
from litestar.response import File

from spotless.lib.errors import Problem, not_found, problems
from spotless.lib.schema import NO_NUL
from spotless.lib.storage.local import ROUTE, InvalidKey, LocalStorage
from spotless.settings import Settings

# The route's own body ceiling (the app's is small); the signed policy's size range is the real bound.
UPLOAD_BODY_CEILING = 101 * 1_048_576


class StorageDownloadController(Controller):
    path = ROUTE
    tags = ["storage"]

    @post(
        "/uploads",
        operation_id="uploadStoredFile",
        summary="Upload one file with a presigned form (local storage backend): multipart/form-data with the "
        "form's fields, then `file`. 204; 403 for a bad or expired form, 400 when the file breaks its conditions",
        opt={"public": True, "rate_limit": "public"},
        status_code=204,
        responses=problems(400, 403, 404),
        request_max_body_size=UPLOAD_BODY_CEILING,
    )
    async def upload(self, settings: Settings, request: Request[Any, Any, Any]) -> None:
        if settings.storage.backend != "local":
            raise not_found("file")
        storage = LocalStorage.from_settings(settings)
        form = await request.form()
        policy_text, signature = form.get("policy"), form.get("signature")
        if not isinstance(policy_text, str) or not isinstance(signature, str):
            raise Problem(400, "upload-conditions-unmet", "The form has no policy or signature")
        policy = storage.verify_post(policy_text, signature)
        if policy is None:
            raise Problem(403, "invalid-upload-form", "Invalid or expired upload form")
        # The conditions S3 enforces on its presigned POST, enforced here the same way.
        upload = form.get("file")
        if form.get("key") != policy.key or form.get("Content-Type") != policy.content_type:
            raise Problem(400, "upload-conditions-unmet", "The form's key or content type is not the signed one")
        if not isinstance(upload, UploadFile):
            raise Problem(400, "upload-conditions-unmet", "The form has no file")
        data = await upload.read(policy.max_bytes + 1)
        if not policy.min_bytes <= len(data) <= policy.max_bytes:
            raise Problem(400, "upload-conditions-unmet", "The file's size is outside the signed range")

        async def chunks() -> AsyncIterator[bytes]:
            yield data

        await storage.put_stream(policy.key, chunks(), content_type=policy.content_type)

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
