"""Storage (ORDER_STORAGE_BACKEND and its credentials) and export settings, read by `load_settings`."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta


def _var(name: str, **bounds: Any) -> Meta:
    """As settings' `_var`: the bounds and the variable `load_settings` names in its errors."""
    return Meta(extra={"env": name}, **bounds)


class StorageSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Where files (exports, later photos) rest: ORDER_STORAGE_BACKEND as the operations guides name it.
    `s3` and `r2` are the S3 API (R2 with its account endpoint); `local` is a directory under
    ORDER_UPLOAD_ROOT whose files are downloaded through a signed, expiring URL served by the API."""

    backend: Literal["s3", "r2", "local"] = "local"
    upload_root: Annotated[str, _var("ORDER_UPLOAD_ROOT", min_length=1)] = "var/uploads"
    bucket: str | None = None
    region: str = "us-east-1"
    # S3-compatible endpoints (MinIO, moto in tests, R2's https://<account>.r2.cloudflarestorage.com).
    endpoint_url: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    # Signs the local backend's download links (HMAC-SHA256); AUTH_SECRET_KEY's derivation when unset.
    signing_secret: str | None = None
    # Presigned GET links live this long: a download starts within it, a leaked link dies soon.
    download_ttl_seconds: Annotated[int, _var("STORAGE_DOWNLOAD_TTL_SECONDS", ge=10, le=7 * 86_400)] = 300
    # Multipart parts: the memory an upload holds at most. S3 and R2 refuse parts under 5 MiB (but
    # the last), so prod refuses less for them; tests use small parts against a local S3.
    multipart_part_bytes: Annotated[int, _var("STORAGE_MULTIPART_PART_BYTES", ge=65_536, le=512 * 1_048_576)] = (
        8 * 1_048_576
    )


class ExportSettings(msgspec.Struct, frozen=True, kw_only=True):
    # A finished export can be downloaded for this long; then it is `expired` and its object deleted.
    ttl_hours: Annotated[int, _var("EXPORT_TTL_HOURS", ge=1, le=24 * 90)] = 72
    # Rows between two progress updates (and lease renewals) of a running export.
    progress_batch_rows: Annotated[int, _var("EXPORT_PROGRESS_BATCH_ROWS", ge=1, le=1_000_000)] = 1_000
    # A running export whose worker has not renewed its lease for this long is taken over.
    lease_seconds: Annotated[int, _var("EXPORT_LEASE_SECONDS", ge=10, le=86_400)] = 300
    # Attempts before an export is dead-lettered (status failed, with its reason).
    max_attempts: Annotated[int, _var("EXPORT_MAX_ATTEMPTS", ge=1, le=20)] = 3
    # The longest period one export may cover.
    max_period_days: Annotated[int, _var("EXPORT_MAX_PERIOD_DAYS", ge=1, le=3_660)] = 731
    sweep_interval_seconds: Annotated[int, _var("EXPORT_SWEEP_INTERVAL_SECONDS", ge=10, le=86_400)] = 300


def load_storage_settings(env: Any) -> StorageSettings:
    """S3_* for AWS S3 (or any S3 API), R2_* for Cloudflare R2 (the guides' R2_BUCKET, R2_ACCESS_KEY,
    R2_SECRET_KEY; the endpoint from R2_ENDPOINT_URL or R2_ACCOUNT_ID)."""
    from spotless.settings import ConfigError  # settings imports this module first

    backend = (env.str("ORDER_STORAGE_BACKEND", "local") or "local").strip().lower()
    if backend not in ("s3", "r2", "local"):
        raise ConfigError(f"ORDER_STORAGE_BACKEND must be one of s3, r2, local, got {backend!r}")
    common: dict[str, Any] = {
        "upload_root": env.str("ORDER_UPLOAD_ROOT", "var/uploads") or "var/uploads",
        "signing_secret": env.str("STORAGE_SIGNING_SECRET"),
        "download_ttl_seconds": env.int("STORAGE_DOWNLOAD_TTL_SECONDS", 300),
        "multipart_part_bytes": env.int("STORAGE_MULTIPART_PART_BYTES", 8 * 1_048_576),
    }
    if backend == "r2":
        account = env.str("R2_ACCOUNT_ID")
        endpoint = env.str("R2_ENDPOINT_URL") or (f"https://{account}.r2.cloudflarestorage.com" if account else None)
        if not endpoint:
            raise ConfigError("ORDER_STORAGE_BACKEND=r2 needs R2_ENDPOINT_URL or R2_ACCOUNT_ID")
        if not env.str("R2_BUCKET"):
            raise ConfigError("ORDER_STORAGE_BACKEND=r2 needs R2_BUCKET")
        return StorageSettings(
            backend="r2",
            bucket=env.str("R2_BUCKET"),
            region=env.str("R2_REGION", "auto") or "auto",
            endpoint_url=endpoint,
            access_key=env.str("R2_ACCESS_KEY"),
            secret_key=env.str("R2_SECRET_KEY"),
            **common,
        )
    if backend == "s3":
        if not env.str("S3_BUCKET"):
            raise ConfigError("ORDER_STORAGE_BACKEND=s3 needs S3_BUCKET")
        return StorageSettings(
            backend="s3",
            bucket=env.str("S3_BUCKET"),
            region=env.str("S3_REGION", "us-east-1") or "us-east-1",
            endpoint_url=env.str("S3_ENDPOINT_URL"),
            access_key=env.str("S3_ACCESS_KEY"),
            secret_key=env.str("S3_SECRET_KEY"),
            **common,
        )
    return StorageSettings(backend="local", **common)


def load_export(env: Any) -> ExportSettings:
    return ExportSettings(
        ttl_hours=env.int("EXPORT_TTL_HOURS", 72),
        progress_batch_rows=env.int("EXPORT_PROGRESS_BATCH_ROWS", 1_000),
        lease_seconds=env.int("EXPORT_LEASE_SECONDS", 300),
        max_attempts=env.int("EXPORT_MAX_ATTEMPTS", 3),
        max_period_days=env.int("EXPORT_MAX_PERIOD_DAYS", 731),
        sweep_interval_seconds=env.int("EXPORT_SWEEP_INTERVAL_SECONDS", 300),
    )


def prod_problems(
    storage: StorageSettings,
    weakness: Callable[[str], str | None],
    is_local_url: Callable[[str], bool],
    allow_loopback: Collection[str],
) -> list[str]:
    problems: list[str] = []
    if storage.backend == "local" and storage.signing_secret is not None:
        weak = weakness(storage.signing_secret)
        if weak:
            problems.append(f"STORAGE_SIGNING_SECRET {weak}")
    if storage.backend in ("s3", "r2") and storage.multipart_part_bytes < 5 * 1_048_576:
        problems.append("STORAGE_MULTIPART_PART_BYTES must be at least 5 MiB (5242880) for S3 and R2")
    endpoint_var = f"{storage.backend.upper()}_ENDPOINT_URL"
    if storage.endpoint_url and endpoint_var not in allow_loopback and is_local_url(storage.endpoint_url):
        problems.append(f"{endpoint_var} points at this machine; name the storage service")
    return problems
