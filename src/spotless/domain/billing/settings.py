"""An organisation's billing settings: one row, defaults until the office saves its own."""

from __future__ import annotations

import itertools
from uuid import UUID

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.audit.public import changes, record_audit
from spotless.domain.billing.models import BillingSettings
from spotless.domain.billing.schemas import BillingSettingsUpdate
from spotless.domain.billing.taxes import REGIONS, normalise_region
from spotless.domain.identity.public import Principal
from spotless.lib.errors import FieldError
from spotless.lib.query import flush_or_conflict


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


async def update_settings(session: AsyncSession, principal: Principal, data: BillingSettingsUpdate) -> BillingSettings:
    """Apply the fields sent (validated together), creating the row on the first save; audited."""
    current = await get_settings(session, principal.org_id, for_update=True)
    fields = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    if "tax_region" in fields and fields["tax_region"] is not None:
        region = normalise_region(fields["tax_region"])
        if region is None:
            raise FieldError("tax_region", f"tax_region must be one of {', '.join(sorted(REGIONS))}")
        fields["tax_region"] = region
    days = fields.get("followup_days", current.followup_days)
    if any(b <= a for a, b in itertools.pairwise(days)):
        raise FieldError(
            "followup_days", "followup_days must be increasing days after the due date, e.g. [1, 3, 7, 14]"
        )
    hold = fields.get("followup_hold_after_step", current.followup_hold_after_step)
    if hold is not None and hold > len(days):
        raise FieldError("followup_hold_after_step", f"there are only {len(days)} follow-up steps")
    before = {k: getattr(current, k) for k in fields}
    for key, value in fields.items():
        setattr(current, key, value)
    if current not in session:
        session.add(current)
    # Two first saves at once: the second meets the primary key (409, retry), never a 500.
    await flush_or_conflict(session, "billing-settings-conflict", "The settings were saved meanwhile: try again.")
    old, new = changes(before, fields)
    if new:
        record_audit(session, principal, "billing_settings.update", "billing_settings", principal.org_id, old, new)
    return current
