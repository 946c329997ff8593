"""Bodies of the checklist and photo endpoints (office and field)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta

from spotless.lib.schema import Input, Name, Output

PhotoKind = Literal["before", "after"]
ItemLabel = Name


class ChecklistTemplateWrite(Input):
    """The service's whole checklist, in order (replaces the previous one; an empty list clears it)."""

    items: Annotated[list[ItemLabel], Meta(max_length=100)]


class ChecklistTemplateItemRead(Output):
    id: UUID
    position: int
    label: str


class ChecklistTemplateRead(Output):
    service_id: UUID
    items: list[ChecklistTemplateItemRead]


class ChecklistItemRead(Output):
    id: UUID
    position: int
    label: str
    done: bool
    done_at: datetime | None
    done_by_user_id: UUID | None
    done_by_worker_id: UUID | None


class JobChecklistRead(Output):
    booking_id: UUID
    items: list[ChecklistItemRead]
    done: int
    total: int


class ChecklistTick(Input):
    done: bool


class PhotoUploadCreate(Input):
    kind: PhotoKind
    # What the app says it sends: signed into the form (storage refuses another), never trusted on confirm.
    content_type: Annotated[
        str, Meta(max_length=100, pattern=r"^[\w.+-]+/[\w.+-]+$", description="a media type, such as image/jpeg")
    ]
    size_bytes: Annotated[int, Meta(ge=1)]


class PhotoUpload(Output):
    photo_id: UUID
    # POST `url` as multipart/form-data: every field of `fields`, then the file as `file`.
    url: str
    fields: dict[str, str]
    expires_at: datetime
    max_bytes: int


class PhotoRead(Output):
    id: UUID
    booking_id: UUID
    kind: PhotoKind
    status: Literal["pending", "confirmed"]
    content_type: str | None
    size_bytes: int | None
    width: int | None
    height: int | None
    uploaded_by_user_id: UUID
    worker_id: UUID | None
    created_at: datetime
    confirmed_at: datetime | None
    # Short-lived signed links (ORDER_PHOTO_URL_TTL_SECONDS), for confirmed photos only.
    url: str | None = None
    thumbnail_url: str | None = None
    urls_expire_at: datetime | None = None


class JobEvidenceRead(Output):
    """What the office sees of a job: its checklist (as ticked, by whom and when) and its photos."""

    booking_id: UUID
    checklist: JobChecklistRead
    photos: list[PhotoRead]
