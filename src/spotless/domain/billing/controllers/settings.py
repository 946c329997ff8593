"""/v1/billing/settings: how the organisation invoices, its terms, tax region and numbers."""

from __future__ import annotations

from litestar import Controller, get, put
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.billing.schemas import BillingSettingsRead, BillingSettingsUpdate
from spotless.domain.billing.settings import get_settings, update_settings
from spotless.domain.identity.public import Principal
from spotless.lib.errors import problems


class BillingSettingsController(Controller):
    path = "/v1/billing/settings"
    tags = ["billing"]

    @get(
        operation_id="getBillingSettings",
        opt={"permission": "finance.view"},
        responses=problems(),
        summary="Invoicing mode and period, payment terms, tax region, registration numbers, follow-up schedule",
    )
    async def get_billing_settings(self, db_session: AsyncSession, principal: Principal) -> BillingSettingsRead:
        return BillingSettingsRead.from_model(await get_settings(db_session, principal.org_id))

    @put(
        operation_id="updateBillingSettings",
        opt={"permission": "finance.manage"},
        responses=problems(400),
        summary="Change the billing settings (only the fields sent; null clears a number or the tax region)",
    )
    async def update_billing_settings(
        self, db_session: AsyncSession, principal: Principal, data: BillingSettingsUpdate
    ) -> BillingSettingsRead:
        return BillingSettingsRead.from_model(await update_settings(db_session, principal, data))
