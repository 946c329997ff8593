"""/v1/services (and their add-ons), /v1/addons (offered with every service),
/v1/frequency-discounts and POST /v1/quotes. Removing a service or add-on is DELETE (204, soft:
bookings keep what they were sold); PATCH {"active": true} offers it again."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from advanced_alchemy.service.pagination import OffsetPagination
from litestar import Controller, delete, get, patch, post, put
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.catalog import services
from spotless.domain.catalog.pricing import Quote
from spotless.domain.catalog.schemas import (
    AddonCreate,
    AddonRead,
    AddonUpdate,
    FrequencyDiscountsRead,
    FrequencyDiscountsUpdate,
    QuoteRequest,
    ServiceCreate,
    ServiceRead,
    ServiceUpdate,
)
from spotless.domain.identity.public import OrgProfile, Principal
from spotless.lib.schema import Limit, Offset  # offset capped: a deep offset is a 400, not a scan

VIEW = {"permission": "core.view"}
MANAGE = {"permission": "pricing.manage"}


class ServiceController(Controller):
    path = "/v1/services"
    tags = ["catalog"]

    @post(operation_id="createService", summary="Add a service to the catalogue", opt=MANAGE)
    async def create_service(self, db_session: AsyncSession, org: OrgProfile, data: ServiceCreate) -> ServiceRead:
        service = await services.create_service(db_session, org.id, data)
        return ServiceRead.from_model(service, org.currency)

    @get(operation_id="listServices", summary="The catalogue", opt=VIEW)
    async def list_services(
        self,
        db_session: AsyncSession,
        org: OrgProfile,
        include_inactive: bool = False,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> OffsetPagination[ServiceRead]:
        return await services.list_services(
            db_session, org, limit=limit, offset=offset, include_inactive=include_inactive
        )

    @get("/{service_id:uuid}", operation_id="getService", summary="One service", opt=VIEW)
    async def get_service(self, db_session: AsyncSession, org: OrgProfile, service_id: UUID) -> ServiceRead:
        service = await services.get_service(db_session, service_id)
        return ServiceRead.from_model(service, org.currency)

    @patch(
        "/{service_id:uuid}", operation_id="updateService", summary="Change a service's prices or details", opt=MANAGE
    )
    async def update_service(
        self, db_session: AsyncSession, org: OrgProfile, service_id: UUID, data: ServiceUpdate
    ) -> ServiceRead:
        service = await services.update_service(db_session, service_id, data)
        return ServiceRead.from_model(service, org.currency)

    @delete(
        "/{service_id:uuid}", operation_id="deactivateService", summary="Stop offering a service (soft)", opt=MANAGE
    )
    async def deactivate_service(self, db_session: AsyncSession, service_id: UUID) -> None:
        await services.deactivate_service(db_session, service_id)

    # --- the service's own add-ons ---

    @get(
        "/{service_id:uuid}/addons",
        operation_id="listServiceAddons",
        summary="Add-ons offered with this service (its own and, unless disabled, organisation-wide ones)",
        opt=VIEW,
    )
    async def list_addons(
        self,
        db_session: AsyncSession,
        org: OrgProfile,
        service_id: UUID,
        include_inactive: bool = False,
        include_global: Annotated[bool, Parameter(description="include add-ons offered with every service")] = True,
    ) -> list[AddonRead]:
        rows = await services.list_addons(
            db_session, service_id, include_inactive=include_inactive, include_global=include_global
        )
        return [AddonRead.from_model(a, org.currency) for a in rows]

    @post(
        "/{service_id:uuid}/addons",
        operation_id="createServiceAddon",
        summary="Add an add-on to this service",
        opt=MANAGE,
    )
    async def create_addon(
        self, db_session: AsyncSession, org: OrgProfile, service_id: UUID, data: AddonCreate
    ) -> AddonRead:
        addon = await services.create_addon(db_session, org.id, service_id, data)
        return AddonRead.from_model(addon, org.currency)

    @patch(
        "/{service_id:uuid}/addons/{addon_id:uuid}",
        operation_id="updateServiceAddon",
        summary="Change one of this service's add-ons",
        opt=MANAGE,
    )
    async def update_addon(
        self, db_session: AsyncSession, org: OrgProfile, service_id: UUID, addon_id: UUID, data: AddonUpdate
    ) -> AddonRead:
        addon = await services.update_addon(db_session, addon_id, service_id, data)
        return AddonRead.from_model(addon, org.currency)

    @delete(
        "/{service_id:uuid}/addons/{addon_id:uuid}",
        operation_id="deactivateServiceAddon",
        summary="Stop offering one of this service's add-ons (soft)",
        opt=MANAGE,
    )
    async def deactivate_addon(self, db_session: AsyncSession, service_id: UUID, addon_id: UUID) -> None:
        await services.deactivate_addon(db_session, addon_id, service_id)


class AddonController(Controller):
    """Add-ons offered with every service of the organisation (service_id null)."""

    path = "/v1/addons"
    tags = ["catalog"]

    @get(operation_id="listOrgAddons", summary="Organisation-wide add-ons", opt=VIEW)
    async def list_addons(
        self, db_session: AsyncSession, org: OrgProfile, include_inactive: bool = False
    ) -> list[AddonRead]:
        rows = await services.list_addons(db_session, None, include_inactive=include_inactive)
        return [AddonRead.from_model(a, org.currency) for a in rows]

    @post(operation_id="createOrgAddon", summary="Add an add-on offered with every service", opt=MANAGE)
    async def create_addon(self, db_session: AsyncSession, org: OrgProfile, data: AddonCreate) -> AddonRead:
        addon = await services.create_addon(db_session, org.id, None, data)
        return AddonRead.from_model(addon, org.currency)

    @patch("/{addon_id:uuid}", operation_id="updateOrgAddon", summary="Change an organisation-wide add-on", opt=MANAGE)
    async def update_addon(
        self, db_session: AsyncSession, org: OrgProfile, addon_id: UUID, data: AddonUpdate
    ) -> AddonRead:
        addon = await services.update_addon(db_session, addon_id, None, data)
        return AddonRead.from_model(addon, org.currency)

    @delete(
        "/{addon_id:uuid}",
        operation_id="deactivateOrgAddon",
        summary="Stop offering an organisation-wide add-on (soft)",
        opt=MANAGE,
    )
    async def deactivate_addon(self, db_session: AsyncSession, addon_id: UUID) -> None:
        await services.deactivate_addon(db_session, addon_id, None)


class PricingController(Controller):
    path = "/v1"
    tags = ["catalog"]

    @get(
        "/frequency-discounts",
        operation_id="getFrequencyDiscounts",
        summary="Discounts for recurring work, in basis points",
        opt=VIEW,
    )
    async def get_discounts(self, db_session: AsyncSession) -> FrequencyDiscountsRead:
        return await services.get_frequency_discounts(db_session)

    @put(
        "/frequency-discounts",
        operation_id="setFrequencyDiscounts",
        summary="Replace the discounts for recurring work (omitted = 0)",
        opt=MANAGE,
    )
    async def set_discounts(
        self, db_session: AsyncSession, principal: Principal, data: FrequencyDiscountsUpdate
    ) -> FrequencyDiscountsRead:
        return await services.set_frequency_discounts(db_session, principal.org_id, data)

    @post(
        "/quotes",
        operation_id="createQuote",
        status_code=HTTP_200_OK,
        summary="Price a visit: line items, discount, tax, total (minor units) and estimated minutes",
        description="Deterministic; bookings are priced by the same calculation. Nothing is stored.",
        opt={"permission": "bookings.view"},
    )
    async def create_quote(self, db_session: AsyncSession, org: OrgProfile, data: QuoteRequest) -> Quote:
        return await services.quote_for(db_session, org, data.service_id, data)
