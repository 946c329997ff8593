"""S3 and R2 (the S3 API at an account endpoint) through aioboto3.

Uploads are multipart once a stream outgrows one part: each part is sent as soon as it is full,
so memory stays at one part. A stream that fails (or is cancelled) aborts its upload, so no half
object and no orphaned parts remain; an object smaller than one part is a single PUT."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import ClientError

from spotless.storage_settings import StorageSettings


class S3Storage:
    def __init__(
        self,
        *,
        backend: str,
        bucket: str,
        region: str,
        endpoint_url: str | None,
        access_key: str | None,
        secret_key: str | None,
        part_bytes: int,
    ) -> None:
        self.backend = backend
        self.bucket = bucket
        self.part_bytes = part_bytes
        self._endpoint_url = endpoint_url
        self._session = aioboto3.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
        )
        # Path-style for custom endpoints (MinIO, moto, R2 accept it; no per-bucket DNS needed);
        # SigV4 everywhere (R2 knows no other). Bounded timeouts: a stuck storage fails the job.
        self._config = AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            connect_timeout=10,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
        )

    @classmethod
    def from_settings(cls, storage: StorageSettings) -> S3Storage:
        assert storage.bucket  # load_settings refuses s3/r2 without one
        return cls(
            backend=storage.backend,
            bucket=storage.bucket,
            region=storage.region,
            endpoint_url=storage.endpoint_url,
            access_key=storage.access_key,
            secret_key=storage.secret_key,
            part_bytes=storage.multipart_part_bytes,
        )

    def client(self) -> Any:
        return self._session.client("s3", endpoint_url=self._endpoint_url, config=self._config)

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], *, content_type: str) -> int:
        async with self.client() as s3:
            buffer = bytearray()
            upload_id: str | None = None
            parts: list[dict[str, Any]] = []
            total = 0
            try:
                async for chunk in chunks:
                    buffer += chunk
                    total += len(chunk)
                    while len(buffer) >= self.part_bytes:
                        if upload_id is None:
                            created = await s3.create_multipart_upload(
                                Bucket=self.bucket, Key=key, ContentType=content_type
                            )
                            upload_id = created["UploadId"]
                        part, buffer = bytes(buffer[: self.part_bytes]), bytearray(buffer[self.part_bytes :])
                        number = len(parts) + 1
                        sent = await s3.upload_part(
                            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=part
                        )
                        parts.append({"PartNumber": number, "ETag": sent["ETag"]})
                if upload_id is None:
                    await s3.put_object(Bucket=self.bucket, Key=key, Body=bytes(buffer), ContentType=content_type)
                    return total
                if buffer:
                    number = len(parts) + 1
                    sent = await s3.upload_part(
                        Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=bytes(buffer)
                    )
                    parts.append({"PartNumber": number, "ETag": sent["ETag"]})
                await s3.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
                return total
            except BaseException:
                if upload_id is not None:
                    # Best effort: a bucket lifecycle rule reaps what a failed abort leaves.
                    with contextlib.suppress(Exception):
                        await s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
                raise

    async def download_url(self, key: str, *, filename: str, content_type: str, ttl_seconds: int) -> str:
        async with self.client() as s3:
            url: str = await s3.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": key,
                    "ResponseContentDisposition": f'attachment; filename="{filename}"',
                    "ResponseContentType": content_type,
                },
                ExpiresIn=ttl_seconds,
            )
            return url

    async def size(self, key: str) -> int | None:
        async with self.client() as s3:
            try:
                head = await s3.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise
            return int(head["ContentLength"])

    async def delete(self, key: str) -> None:
        async with self.client() as s3:
            await s3.delete_object(Bucket=self.bucket, Key=key)  # S3 answers 204 for a missing key too
