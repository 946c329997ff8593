"""An organisation's billing settings: one row, defaults until the office saves its own."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.billing.models import BillingSettings


def defaults(org_id: UUID) -> BillingSettings:
    """The settings an organisation has before it saves any (not added to the session)."""
    return BillingSettings(
        org_id=org_id,
        invoicing_mode="manual",
        period="monthly",
        payment_terms_days=14,
        currency="CAD",
        tax_region=None,
        gst_hst_number=None,
        qst_number=None,
        pst_number=None,
        number_prefix="INV",
        auto_charge="off",
        followup_days=[1, 3, 7, 14],
        followup_hold_after_step=None,
    )


async def get_settings(session: AsyncSession, org_id: UUID, *, for_update: bool = False) -> BillingSettings:
    """The saved row, or the defaults (transient) when the organisation has saved none."""
    stmt = select(BillingSettings).where(BillingSettings.org_id == org_id)
    if for_update:
        stmt = stmt.with_for_update()
    found = await session.scalar(stmt)
    return found if found is not None else defaults(org_id)
