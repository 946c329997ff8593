"""A local S3: moto's server on a loopback port, as a child process (our aioboto3 client is real;
only the far end is local). Multipart parts may be as small as PART_BYTES here, so tests can show
a multipart upload without writing 5 MiB parts."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3

from tests.support.processes import BIN, _spawn, free_port

PART_BYTES = 65_536
ACCESS_KEY = "moto-test-key"
SECRET_KEY = "moto-test-secret-0123456789"


@dataclass
class LocalS3:
    endpoint_url: str
    popen: subprocess.Popen[bytes]

    def env(self, bucket: str) -> dict[str, str]:
        return {
            "ORDER_STORAGE_BACKEND": "s3",
            "S3_BUCKET": bucket,
            "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_ACCESS_KEY": ACCESS_KEY,
            "S3_SECRET_KEY": SECRET_KEY,
            "S3_REGION": "us-east-1",
            "STORAGE_MULTIPART_PART_BYTES": str(PART_BYTES),
        }

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def create_bucket(self, bucket: str) -> None:
        self.client().create_bucket(Bucket=bucket)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        listed = self.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for item in listed.get("Contents", [])]

    def open_uploads(self, bucket: str) -> list[Any]:
        return list(self.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []))


@contextmanager
def local_s3() -> Iterator[LocalS3]:
    port = free_port()
    popen, log = _spawn(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        {"S3_UPLOAD_PART_MIN_SIZE": str(PART_BYTES), "MOTO_ALLOW_NONEXISTENT_REGION": "true"},
        "moto",
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if popen.poll() is not None or time.monotonic() > deadline:
                popen.kill()
                raise RuntimeError(f"moto did not start: {log.read_text(errors='replace')[-2000:]}") from None
            time.sleep(0.1)
    try:
        yield LocalS3(endpoint_url=f"http://127.0.0.1:{port}", popen=popen)
    finally:
        popen.terminate()
        try:
            popen.wait(10)
        except subprocess.TimeoutExpired:
            popen.kill()
