"""Before/after photos: a presigned upload, then a confirmation that turns the raw upload into a
clean stored photo, or refuses it and deletes it.

On confirm the object's size comes from storage (HEAD), its type from its first bytes (`sniff`),
never from what the app declared; the photo is re-encoded from its pixels (no EXIF, no GPS) and a
thumbnail made, both under new keys. The raw upload is deleted at once and also queued (not before
its form expires), because its presigned form could otherwise write it again.

Quota (ORDER_PHOTO_QUOTA_COUNT photos, ORDER_PHOTO_QUOTA_BYTES stored) is checked under a
per-organisation advisory lock when an upload is requested and again, in bytes, on confirm:
two uploads at once cannot both take the last place."""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, timedelta
from uuid import UUID

import anyio
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.evidence.images import EXTENSIONS, UnreadableImage, clean
from spotless.domain.evidence.models import JobPhoto, StorageDeletion
from spotless.domain.evidence.schemas import PhotoRead, PhotoUpload, PhotoUploadCreate
from spotless.domain.evidence.sniff import SNIFF_BYTES, sniff
from spotless.domain.scheduling.public import FieldJob
from spotless.lib.errors import FieldError, Problem, not_found
from spotless.lib.storage import ObjectTooLarge, Storage
from spotless.photo_settings import PhotoSettings

logger = logging.getLogger("spotless.evidence")


def photo_prefix(org_id: UUID, booking_id: UUID, photo_id: UUID) -> str:
    return f"photos/{org_id}/{booking_id}/{photo_id}"


def too_large(limit: int) -> Problem:
    return Problem(
        413, "photo-too-large", "The photo is too large", f"A photo may be at most {limit} bytes.", max_bytes=limit
    )


def _quota_reached(what: str, limit: int) -> Problem:
    return Problem(
        409,
        "photo-quota-reached",
        "The organisation's photo quota is reached",
        f"The organisation may store at most {limit} {what} of photos; delete some or raise the quota.",
        quota=what,
        limit=limit,
    )


def _refused(detail: str, detected: str) -> Problem:
    return Problem(415, "photo-type-not-allowed", "The file is not an allowed photo", detail, detected=detected)


async def _lock_quota(session: AsyncSession, org_id: UUID) -> None:
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('job_photo_quota:' || :org, 0))"), {"org": str(org_id)}
    )


async def _usage(session: AsyncSession) -> tuple[int, int]:
    row = (await session.execute(select(func.count(), func.coalesce(func.sum(JobPhoto.size_bytes), 0)))).one()
    return int(row[0] or 0), int(row[1] or 0)


async def request_upload(
    session: AsyncSession,
    storage: Storage,
    photos: PhotoSettings,
    booking: FieldJob,
    body: PhotoUploadCreate,
    *,
    user_id: UUID,
    worker_id: UUID,
) -> PhotoUpload:
    declared = body.content_type.lower()
    if declared not in photos.allowed_types:
        raise FieldError(
            "content_type", f"must be one of {', '.join(photos.allowed_types)}", code="unsupported_media_type"
        )
    if body.size_bytes > photos.max_bytes:
        raise too_large(photos.max_bytes)
    await _lock_quota(session, booking.org_id)
    count, stored = await _usage(session)
    if count >= photos.quota_count:
        raise _quota_reached("photos", photos.quota_count)
    if stored + body.size_bytes > photos.quota_bytes:
        raise _quota_reached("bytes", photos.quota_bytes)
    expires_at = datetime.now(UTC) + timedelta(seconds=photos.upload_ttl_seconds)
    photo = JobPhoto(
        org_id=booking.org_id,
        booking_id=booking.id,
        kind=body.kind,
        upload_key="",
        upload_expires_at=expires_at,
        declared_type=declared,
        uploaded_by_user_id=user_id,
        worker_id=worker_id,
    )
    session.add(photo)
    await session.flush()
    photo.upload_key = f"{photo_prefix(booking.org_id, booking.id, photo.id)}/upload"
    form = await storage.presigned_post(
        photo.upload_key,
        content_type=declared,
        min_bytes=1,
        max_bytes=photos.max_bytes,
        ttl_seconds=photos.upload_ttl_seconds,
    )
    photo.upload_expires_at = form.expires_at
    await session.flush()
    return PhotoUpload(
        photo_id=photo.id, url=form.url, fields=form.fields, expires_at=form.expires_at, max_bytes=photos.max_bytes
    )


async def _discard(storage: Storage, key: str) -> None:
    # A refused upload goes now; if storage fails, the row stays pending and the janitor removes
    # both once the form has expired.
    try:
        await storage.delete(key)
    except Exception:
        logger.warning("could not delete refused upload %s; the janitor will", key, exc_info=True)


async def confirm(
    session: AsyncSession, storage: Storage, photos: PhotoSettings, booking: FieldJob, photo_id: UUID
) -> JobPhoto:
    photo = await session.scalar(
        select(JobPhoto).where(JobPhoto.id == photo_id, JobPhoto.booking_id == booking.id).with_for_update()
    )
    if photo is None:
        raise not_found("photo")
    if photo.status == "confirmed":
        return photo  # a retried confirmation
    key = photo.upload_key
    assert key
    size = await storage.size(key)
    if size is None:
        raise Problem(
            409, "photo-not-uploaded", "Nothing was uploaded for this photo", "Upload the file, then confirm."
        )
    if size > photos.max_bytes:
        await _discard(storage, key)
        raise too_large(photos.max_bytes)
    head = await storage.read_range(key, 0, SNIFF_BYTES) or b""
    sniffed = sniff(head)
    if sniffed is None or sniffed not in photos.allowed_types:
        await _discard(storage, key)
        raise _refused(
            "The file's content is not one of "
            + ", ".join(photos.allowed_types)
            + " (its declared type is not trusted).",
            detected=sniffed or "unknown",
        )
    if sniffed != photo.declared_type:
        # A PNG sent as a .jpg: the object would be served under a type it is not.
        await _discard(storage, key)
        raise _refused(f"The file is {sniffed}, not the {photo.declared_type} it was declared as.", detected=sniffed)
    try:
        data = await storage.read(key, max_bytes=photos.max_bytes)
    except ObjectTooLarge:
        await _discard(storage, key)
        raise too_large(photos.max_bytes) from None
    if data is None:
        raise Problem(
            409, "photo-not-uploaded", "Nothing was uploaded for this photo", "Upload the file, then confirm."
        )
    try:
        cleaned = await anyio.to_thread.run_sync(
            lambda: clean(data, sniffed, max_pixels=photos.max_pixels, thumb_px=photos.thumb_px)
        )
    except UnreadableImage as exc:
        await _discard(storage, key)
        raise _refused(f"The file is not a readable {sniffed} image: {exc}", detected=sniffed) from None
    await _lock_quota(session, booking.org_id)
    _, stored = await _usage(session)
    if stored + len(cleaned.data) > photos.quota_bytes:
        await _discard(storage, key)
        raise _quota_reached("bytes", photos.quota_bytes)
    prefix = photo_prefix(booking.org_id, booking.id, photo.id)
    object_key = f"{prefix}/photo.{EXTENSIONS[cleaned.content_type]}"
    thumb_key = f"{prefix}/thumb.jpg"
    await _put(storage, object_key, cleaned.data, cleaned.content_type)
    await _put(storage, thumb_key, cleaned.thumbnail, "image/jpeg")
    photo.status, photo.confirmed_at = "confirmed", datetime.now(UTC)
    photo.object_key, photo.thumb_key = object_key, thumb_key
    photo.content_type, photo.size_bytes = cleaned.content_type, len(cleaned.data)
    photo.width, photo.height = cleaned.width, cleaned.height
    photo.upload_key = None
    await queue_deletion(session, booking.org_id, key, not_before=photo.upload_expires_at)
    await session.flush()
    with contextlib.suppress(Exception):
        await storage.delete(key)  # the queued row deletes it again after the form's expiry
    return photo


async def _put(storage: Storage, key: str, data: bytes, content_type: str) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield data

    await storage.put_stream(key, chunks(), content_type=content_type)


async def queue_deletion(session: AsyncSession, org_id: UUID, key: str, *, not_before: datetime) -> None:
    now = datetime.now(UTC)
    await session.execute(
        insert(StorageDeletion)
        .values(org_id=org_id, object_key=key, not_before=not_before, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["org_id", "object_key"])
    )


async def list_photos(session: AsyncSession, booking_id: UUID) -> list[JobPhoto]:
    return list(
        await session.scalars(
            select(JobPhoto).where(JobPhoto.booking_id == booking_id).order_by(JobPhoto.created_at, JobPhoto.id)
        )
    )


async def to_read(photo: JobPhoto, storage: Storage, photos: PhotoSettings) -> PhotoRead:
    links: dict[str, object] = {}
    if photo.status == "confirmed" and photo.object_key and photo.thumb_key and photo.content_type:
        ttl = photos.url_ttl_seconds
        ext = EXTENSIONS[photo.content_type]
        links = {
            "url": await storage.download_url(
                photo.object_key,
                filename=f"{photo.kind}-{photo.id}.{ext}",
                content_type=photo.content_type,
                ttl_seconds=ttl,
            ),
            "thumbnail_url": await storage.download_url(
                photo.thumb_key,
                filename=f"{photo.kind}-{photo.id}-thumb.jpg",
                content_type="image/jpeg",
                ttl_seconds=ttl,
            ),
            "urls_expire_at": datetime.now(UTC) + timedelta(seconds=ttl),
        }
    return PhotoRead(
        id=photo.id,
        booking_id=photo.booking_id,
        kind=photo.kind,  # type: ignore[arg-type]
        status=photo.status,  # type: ignore[arg-type]
        content_type=photo.content_type,
        size_bytes=photo.size_bytes,
        width=photo.width,
        height=photo.height,
        uploaded_by_user_id=photo.uploaded_by_user_id,
        worker_id=photo.worker_id,
        created_at=photo.created_at,
        confirmed_at=photo.confirmed_at,
        **links,  # type: ignore[arg-type]
    )
