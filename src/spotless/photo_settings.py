"""Field photo settings (ORDER_PHOTO_*, the storage janitor's), read by `load_settings`."""

from __future__ import annotations

import importlib.util
from typing import Annotated, Any

import msgspec
from msgspec import Meta


def _var(name: str, **bounds: Any) -> Meta:
    """As settings' `_var`: the bounds and the variable `load_settings` names in its errors."""
    return Meta(extra={"env": name}, **bounds)


PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp", "image/heic")
DEFAULT_PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp")


class PhotoSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Field photos (before/after a job) as the operations guides name them: ORDER_PHOTO_MAX_BYTES,
    the MIME allowlist, the upload and read link TTLs, a per-organisation quota and a retention."""

    max_bytes: Annotated[int, _var("ORDER_PHOTO_MAX_BYTES", ge=1_024, le=100 * 1_048_576)] = 10 * 1_048_576
    # What a photo's bytes may be (sniffed, never the declared type). HEIC needs a decoder Pillow
    # lacks, so it is refused by the settings unless pillow-heif is installed.
    allowed_types: tuple[str, ...] = DEFAULT_PHOTO_TYPES
    # A presigned upload is usable this long; an upload not confirmed by then (+ the janitor's
    # grace) is deleted.
    upload_ttl_seconds: Annotated[int, _var("ORDER_PHOTO_UPLOAD_TTL_SECONDS", ge=30, le=3_600)] = 300
    url_ttl_seconds: Annotated[int, _var("ORDER_PHOTO_URL_TTL_SECONDS", ge=10, le=86_400)] = 300
    quota_bytes: Annotated[int, _var("ORDER_PHOTO_QUOTA_BYTES", ge=0)] = 5 * 1_073_741_824
    quota_count: Annotated[int, _var("ORDER_PHOTO_QUOTA_COUNT", ge=0)] = 50_000
    # Longest side of a thumbnail, in pixels; photos larger than max_pixels are refused (bombs).
    thumb_px: Annotated[int, _var("ORDER_PHOTO_THUMB_PX", ge=32, le=2_048)] = 320
    max_pixels: Annotated[int, _var("ORDER_PHOTO_MAX_PIXELS", ge=1_000_000, le=400_000_000)] = 60_000_000
    # Default retention of confirmed photos (the retention work makes it per organisation).
    retention_days: Annotated[int, _var("ORDER_PHOTO_RETENTION_DAYS", ge=1, le=36_500)] = 730
    janitor_grace_seconds: Annotated[int, _var("STORAGE_JANITOR_GRACE_SECONDS", ge=0, le=7 * 86_400)] = 3_600
    janitor_interval_seconds: Annotated[int, _var("STORAGE_JANITOR_INTERVAL_SECONDS", ge=10, le=86_400)] = 3_600


def load_photo_settings(env: Any) -> PhotoSettings:
    from spotless.settings import ConfigError  # settings imports this module first

    allowed = tuple(t.strip().lower() for t in env.csv("ORDER_PHOTO_ALLOWED_MIME_TYPES", DEFAULT_PHOTO_TYPES))
    unknown = sorted(set(allowed) - set(PHOTO_TYPES))
    if unknown or not allowed:
        raise ConfigError(f"ORDER_PHOTO_ALLOWED_MIME_TYPES may list {', '.join(PHOTO_TYPES)}; got {unknown or 'none'}")
    if "image/heic" in allowed and importlib.util.find_spec("pillow_heif") is None:
        raise ConfigError("ORDER_PHOTO_ALLOWED_MIME_TYPES has image/heic but pillow-heif is not installed")
    return PhotoSettings(
        max_bytes=env.int("ORDER_PHOTO_MAX_BYTES", 10 * 1_048_576),
        allowed_types=allowed,
        upload_ttl_seconds=env.int("ORDER_PHOTO_UPLOAD_TTL_SECONDS", 300),
        url_ttl_seconds=env.int("ORDER_PHOTO_URL_TTL_SECONDS", 300),
        quota_bytes=env.int("ORDER_PHOTO_QUOTA_BYTES", 5 * 1_073_741_824),
        quota_count=env.int("ORDER_PHOTO_QUOTA_COUNT", 50_000),
        thumb_px=env.int("ORDER_PHOTO_THUMB_PX", 320),
        max_pixels=env.int("ORDER_PHOTO_MAX_PIXELS", 60_000_000),
        retention_days=env.int("ORDER_PHOTO_RETENTION_DAYS", 730),
        janitor_grace_seconds=env.int("STORAGE_JANITOR_GRACE_SECONDS", 3_600),
        janitor_interval_seconds=env.int("STORAGE_JANITOR_INTERVAL_SECONDS", 3_600),
    )
