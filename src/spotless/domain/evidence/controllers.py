"""Checklist templates (office, on a service), a job's evidence (office), and the field app's
checklist and photo routes under /v1/worker/jobs/{booking_id} (the caller's own jobs only: another
job, or one of another organisation, is a 404)."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, Response, get, post, put
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.evidence import checklists, photos
from spotless.domain.evidence.schemas import (
    ChecklistTemplateRead,
    ChecklistTemplateWrite,
    ChecklistTick,
    JobChecklistRead,
    JobEvidenceRead,
    PhotoRead,
    PhotoUpload,
    PhotoUploadCreate,
)
from spotless.domain.identity.public import Principal
from spotless.domain.scheduling.public import job_for_office, own_field_job
from spotless.lib.errors import problems
from spotless.lib.storage import Storage, build_storage
from spotless.settings import Settings

CATALOG_VIEW = {"permission": "core.view"}
CATALOG_MANAGE = {"permission": "pricing.manage"}
BOOKINGS_VIEW = {"permission": "bookings.view"}
FIELD = {"permission": "bookings.status"}
NO_STORE = {"Cache-Control": "private, no-store"}


def _storage(settings: Settings) -> Storage:
    return build_storage(settings)


class ChecklistTemplateController(Controller):
    path = "/v1/services/{service_id:uuid}/checklist"
    tags = ["field"]

    @get(operation_id="getServiceChecklist", summary="The service's checklist template", opt=CATALOG_VIEW)
    async def show(self, db_session: AsyncSession, service_id: UUID) -> ChecklistTemplateRead:
        return await checklists.template(db_session, service_id)

    @put(
        operation_id="replaceServiceChecklist",
        summary="Replace the service's checklist template (jobs already opened keep their copy)",
        opt=CATALOG_MANAGE,
        responses=problems(400, 404),
    )
    async def replace(
        self, db_session: AsyncSession, principal: Principal, service_id: UUID, data: ChecklistTemplateWrite
    ) -> ChecklistTemplateRead:
        return await checklists.replace_template(db_session, principal.org_id, service_id, data.items)


class BookingEvidenceController(Controller):
    path = "/v1/bookings/{booking_id:uuid}/evidence"
    tags = ["field"]

    @get(
        operation_id="getBookingEvidence",
        summary="What was done on a job: its checklist (who ticked what, when) and its photos with short-lived links",
        opt=BOOKINGS_VIEW,
        responses=problems(404),
    )
    async def show(
        self, db_session: AsyncSession, principal: Principal, settings: Settings, booking_id: UUID
    ) -> Response[JobEvidenceRead]:
        booking = await job_for_office(db_session, principal, booking_id)
        storage = _storage(settings)
        checklist = await checklists.open_job_checklist(db_session, booking)
        rows = await photos.list_photos(db_session, booking.id)
        body = JobEvidenceRead(
            booking_id=booking.id,
            checklist=checklist,
            photos=[await photos.to_read(p, storage, settings.photos) for p in rows],
        )
        return Response(body, headers=NO_STORE)


class WorkerJobEvidenceController(Controller):
    path = "/v1/worker/jobs/{booking_id:uuid}"
    tags = ["field"]

    @get(
        "/checklist",
        operation_id="getMyJobChecklist",
        summary="The job's checklist",
        opt=FIELD,
        responses=problems(403, 404),
    )
    async def checklist(self, db_session: AsyncSession, principal: Principal, booking_id: UUID) -> JobChecklistRead:
        booking, _ = await own_field_job(db_session, principal, booking_id)
        return await checklists.open_job_checklist(db_session, booking)

    @put(
        "/checklist/{item_id:uuid}",
        operation_id="tickMyJobChecklistItem",
        summary="Tick (or untick) one item of the job's checklist",
        opt=FIELD,
        responses=problems(400, 403, 404),
    )
    async def tick(
        self, db_session: AsyncSession, principal: Principal, booking_id: UUID, item_id: UUID, data: ChecklistTick
    ) -> JobChecklistRead:
        booking, worker_id = await own_field_job(db_session, principal, booking_id)
        await checklists.open_job_checklist(db_session, booking)
        return await checklists.tick(
            db_session, booking, item_id, data.done, user_id=principal.user_id, worker_id=worker_id
        )

    @get("/photos", operation_id="listMyJobPhotos", summary="The job's photos", opt=FIELD, responses=problems(403, 404))
    async def list_photos(
        self, db_session: AsyncSession, principal: Principal, settings: Settings, booking_id: UUID
    ) -> Response[list[PhotoRead]]:
        booking, _ = await own_field_job(db_session, principal, booking_id)
        storage = _storage(settings)
        rows = await photos.list_photos(db_session, booking.id)
        return Response([await photos.to_read(p, storage, settings.photos) for p in rows], headers=NO_STORE)

    @post(
        "/photos/uploads",
        operation_id="requestMyJobPhotoUpload",
        summary="Ask for a photo upload: a presigned POST form (exact key, content type, size range, short expiry). "
        "413 photo-too-large, 409 photo-quota-reached",
        opt=FIELD,
        status_code=201,
        responses=problems(400, 403, 404, 409, 413),
    )
    async def request_upload(
        self,
        db_session: AsyncSession,
        principal: Principal,
        settings: Settings,
        booking_id: UUID,
        data: PhotoUploadCreate,
    ) -> Response[PhotoUpload]:
        booking, worker_id = await own_field_job(db_session, principal, booking_id)
        upload = await photos.request_upload(
            db_session,
            _storage(settings),
            settings.photos,
            booking,
            data,
            user_id=principal.user_id,
            worker_id=worker_id,
        )
        return Response(upload, status_code=201, headers=NO_STORE)

    @post(
        "/photos/{photo_id:uuid}/confirm",
        operation_id="confirmMyJobPhoto",
        summary="Confirm an uploaded photo: its size and real type are checked, EXIF/GPS stripped, a thumbnail made. "
        "415 photo-type-not-allowed, 413 photo-too-large, 409 photo-not-uploaded / photo-quota-reached "
        "(a refused file is deleted)",
        opt=FIELD,
        status_code=200,
        responses=problems(403, 404, 409, 413, 415),
    )
    async def confirm(
        self, db_session: AsyncSession, principal: Principal, settings: Settings, booking_id: UUID, photo_id: UUID
    ) -> Response[PhotoRead]:
        booking, _ = await own_field_job(db_session, principal, booking_id)
        storage = _storage(settings)
        photo = await photos.confirm(db_session, storage, settings.photos, booking, photo_id)
        return Response(await photos.to_read(photo, storage, settings.photos), headers=NO_STORE)
