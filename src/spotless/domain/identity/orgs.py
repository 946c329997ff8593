"""Organisation settings. Other domains read them through `get_organization` (timezone for
"per day" rules, currency for money, business hours for slots)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.audit.services import changes, record_audit
from spotless.domain.identity import validation
from spotless.domain.identity.models import Organization
from spotless.domain.identity.principal import Principal
from spotless.domain.identity.schemas import Organization as OrganizationOut
from spotless.domain.identity.schemas import OrganizationPatch
from spotless.lib.errors import not_found

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
    statement = select(Organization).where(Organization.id == org_id)
    if lock:
        statement = statement.with_for_update()
    org = (await db.execute(statement)).scalar_one_or_none()
    if org is None:
        raise not_found("organization")
    return org


def to_schema(org: Organization) -> OrganizationOut:
    return msgspec.convert(
        {
            **{f: getattr(org, f) for f in _FIELDS},
            "id": org.id,
            "slug": org.slug,
            "created_at": org.created_at,
            "updated_at": org.updated_at,
        },
        OrganizationOut,
        from_attributes=True,
    )


def _snapshot(org: Organization) -> dict[str, Any]:
    return {f: getattr(org, f) for f in _FIELDS}


async def update_organization(db: AsyncSession, principal: Principal, patch: OrganizationPatch) -> OrganizationOut:
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
        await db.flush()
        await db.refresh(org)
    return to_schema(org)
