"""The exports tests' storage fixtures (moto S3 on loopback, a local directory), reused: `api` is
a client of an app on either backend, `runtime` a job runtime with the same settings."""

from __future__ import annotations

from tests.integration.exports.conftest import api, bucket, runtime, s3_server, storage_app, storage_settings

__all__ = ["api", "bucket", "runtime", "s3_server", "storage_app", "storage_settings"]
