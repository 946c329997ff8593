"""/v1/admin/retention (the organisation's retention, and a run of it now) and
/v1/clients/{id}/erasure (a client's erasure on request). Owners and admins (`privacy.manage`)."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, Response, get, post, put
from litestar.status_codes import HTTP_202_ACCEPTED
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.identity.public import Principal
from spotless.domain.retention import erasure
from spotless.domain.retention.jobs import apply_org_retention_job
from spotless.domain.retention.models import ClientErasure
from spotless.domain.retention.schemas import (
    ClientErasureRead,
    RetentionCleanupQueued,
    RetentionSettingsRead,
    RetentionSettingsUpdate,
)
from spotless.domain.retention.settings import get_retention, update_retention
from spotless.lib.errors import not_found, problems
from spotless.settings import Settings

PRIVACY = {"permission": "privacy.manage"}


def _settings_read(row: object) -> RetentionSettingsRead:
    return RetentionSettingsRead(
        message_body_days=row.message_body_days,  # type: ignore[attr-defined]
        export_days=row.export_days,  # type: ignore[attr-defined]
        photo_days=row.photo_days,  # type: ignore[attr-defined]
    )


def _erasure_read(row: ClientErasure) -> ClientErasureRead:
    return ClientErasureRead(
        client_id=row.client_id,
        erased=True,
        erased_at=erasure.erased_at(row),
        erased_by=row.erased_by,
        counts={str(k): int(v) for k, v in (row.counts or {}).items()},
    )


class RetentionController(Controller):
    path = "/v1/admin/retention"
    tags = ["retention"]

    @get(
        operation_id="getRetentionSettings",
        opt=PRIVACY,
        responses=problems(403),
        summary="How long the organisation keeps message bodies, expired exports and job photos (days)",
    )
    async def get_retention_settings(
        self, db_session: AsyncSession, principal: Principal, settings: Settings
    ) -> RetentionSettingsRead:
        return _settings_read(await get_retention(db_session, principal.org_id, settings.retention))

    @put(
        operation_id="updateRetentionSettings",
        opt=PRIVACY,
        responses=problems(400, 403, 409),
        summary="Change the retention (only the fields sent; 1 to 3660 days). Invoices and the ledger are "
        "always kept (accounting law)",
    )
    async def update_retention_settings(
        self, db_session: AsyncSession, principal: Principal, settings: Settings, data: RetentionSettingsUpdate
    ) -> RetentionSettingsRead:
        return _settings_read(await update_retention(db_session, principal, settings.retention, data))

    @post(
        "/cleanup",
        operation_id="runRetentionCleanup",
        opt=PRIVACY,
        status_code=HTTP_202_ACCEPTED,
        responses=problems(403),
        summary="Apply the organisation's retention now (queued; only this organisation's rows)",
    )
    async def run_cleanup(self, db_session: AsyncSession, principal: Principal) -> Response[RetentionCleanupQueued]:
        job_id = apply_org_retention_job.enqueue(db_session, principal.org_id)
        return Response(RetentionCleanupQueued(job_id=job_id), status_code=HTTP_202_ACCEPTED)


class ClientErasureController(Controller):
    path = "/v1/clients/{client_id:uuid}/erasure"
    tags = ["retention"]

    @post(
        operation_id="eraseClient",
        opt=PRIVACY,
        status_code=200,
        responses=problems(403, 404, 409),
        summary="Erase a client's personal data (tombstone; bookings, invoices and ledger kept without it). "
        "409 `client-has-open-work` lists what blocks it; erasing again answers the first erasure",
    )
    async def erase_client(
        self, db_session: AsyncSession, principal: Principal, settings: Settings, client_id: UUID
    ) -> ClientErasureRead:
        return _erasure_read(await erasure.erase_client(db_session, principal, client_id, settings))

    @get(
        operation_id="getClientErasure",
        opt=PRIVACY,
        responses=problems(403, 404),
        summary="Whether the client was erased, when, by whom and what it emptied",
    )
    async def get_erasure(self, db_session: AsyncSession, principal: Principal, client_id: UUID) -> ClientErasureRead:
        found = await erasure.erasure_of(db_session, client_id)
        if found is not None:
            return _erasure_read(found)
        if not await erasure.client_exists(db_session, principal.org_id, client_id):
            raise not_found("client")
        return ClientErasureRead(client_id=client_id, erased=False)
