"""Organisation settings (`/v1/org`). Other contexts read the organisation through
`identity.public` (`org_profile`, the `org` dependency), never this module."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.audit.public import changes, record_audit
from spotless.domain.identity import validation
from spotless.domain.identity.models import Organization
from spotless.domain.identity.principal import Principal
from spotless.domain.identity.public import org_config_changed
from spotless.domain.identity.schemas import OrganizationRead, OrganizationUpdate
from spotless.lib.query import get_or_404

_FIELDS = (
    "name",
    "timezone",
    "currency",
    "locale",
    "business_hours",
    "tax_rate_bps",
    "contact_email",
    "contact_phone",
    "address",
)


async def get_organization(db: AsyncSession, org_id: UUID, *, lock: bool = False) -> Organization:
    # With `with_for_update` the row is always queried (an identity-map hit would take no lock).
    return await get_or_404(db, Organization, org_id, "organization", with_for_update=True if lock else None)


async def read_organization(db: AsyncSession, org_id: UUID) -> OrganizationRead:
    return OrganizationRead.from_model(await get_organization(db, org_id))


def _snapshot(org: Organization) -> dict[str, Any]:
    return {f: getattr(org, f) for f in _FIELDS}


async def update_organization(db: AsyncSession, principal: Principal, patch: OrganizationUpdate) -> OrganizationRead:
    values = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
    if "timezone" in values:
        values["timezone"] = validation.timezone(values["timezone"])
    if "currency" in values:
        values["currency"] = validation.currency(values["currency"])
    if "locale" in values:
        values["locale"] = validation.locale(values["locale"])
    if "business_hours" in values:
        values["business_hours"] = validation.business_hours(
            {day: [msgspec.structs.asdict(r) for r in ranges] for day, ranges in values["business_hours"].items()}
        )
    if isinstance(values.get("name"), str):
        values["name"] = values["name"].strip()
    org = await get_organization(db, principal.org_id, lock=True)
    before = _snapshot(org)
    for key, value in values.items():
        setattr(org, key, value)
    old, new = changes(before, _snapshot(org))
    if new:
        record_audit(db, principal, "organization.update", "organization", org.id, before=old, after=new)
        org_config_changed(db, org.id)  # cached profiles: this node at commit, the others by version
        await db.flush()
        await db.refresh(org)
    return OrganizationRead.from_model(org)
