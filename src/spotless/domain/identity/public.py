"""What other contexts may use of identity: who is calling, the organisation's profile, and
membership facts. Nothing else of identity (its models, its private names) is imported elsewhere.

`org: OrgProfile` is an app-level dependency: a handler declares it and receives the caller's
organisation (zone, currency, tax rate), instead of re-fetching the `Organization` row in every
handler. It is cached per process (db/org_cache.py: invalidated on this node when a change
commits, on the others by the version their session check reads, and at most 30 s old), keyed by
the authenticated principal's organisation: it is never served to another organisation."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.db.org_cache import OrgCache, invalidate_local
from spotless.db.unit_of_work import after_commit
from spotless.domain.identity.models import Invitation, Membership, Organization, User
from spotless.domain.identity.permissions import ROLE_PERMISSIONS
from spotless.domain.identity.principal import Principal, provide_principal, unauthenticated
from spotless.lib.errors import not_found


class OrgProfile(msgspec.Struct, frozen=True, kw_only=True):
    """The organisation facts other contexts work with (never the ORM row)."""

    id: UUID
    name: str
    slug: str
    timezone: str
    currency: str
    locale: str
    tax_rate_bps: int


async def org_profile(session: AsyncSession, org_id: UUID) -> OrgProfile:
    """The organisation's profile; 404 when it is not visible (RLS scopes it to the caller's)."""
    row = (
        await session.execute(
            select(
                Organization.id,
                Organization.name,
                Organization.slug,
                Organization.timezone,
                Organization.currency,
                Organization.locale,
                Organization.tax_rate_bps,
            ).where(Organization.id == org_id)
        )
    ).first()
    if row is None:
        raise not_found("organisation")
    return OrgProfile(
        id=row.id,
        name=row.name,
        slug=row.slug,
        timezone=row.timezone,
        currency=row.currency,
        locale=row.locale,
        tax_rate_bps=row.tax_rate_bps,
    )


_profiles: OrgCache[OrgProfile] = OrgCache()


async def provide_org(principal: Principal, db_session: AsyncSession) -> OrgProfile:
    """App-level dependency `org`: the caller's organisation (cached, see the module's note)."""
    cached = _profiles.get(principal.org_id)
    if cached is not None:
        return cached
    token = _profiles.token()
    profile = await org_profile(db_session, principal.org_id)
    _profiles.put(principal.org_id, profile, token)
    return profile


def org_config_changed(session: AsyncSession, org_id: UUID) -> None:
    """This transaction changes the organisation's profile or settings: once it commits, this
    process forgets its cached copies and every other node is told (a new version in Redis)."""
    from spotless.domain.identity.sessions import SESSION_PUBLISHER_INFO_KEY

    after_commit(session, _announce, session.sync_session.info.get(SESSION_PUBLISHER_INFO_KEY), org_id)


async def _announce(publisher: Any, org_id: UUID) -> None:
    invalidate_local(org_id)
    if publisher is not None:
        await publisher.org_config_changed(org_id)


class OrgLetterhead(msgspec.Struct, frozen=True, kw_only=True):
    """What an organisation's documents (invoices) print about it."""

    name: str
    timezone: str
    address: str | None
    contact_email: str | None
    contact_phone: str | None


async def org_letterhead(session: AsyncSession, org_id: UUID) -> OrgLetterhead:
    """The organisation's name and contact lines; 404 when it is not visible (RLS)."""
    row = (
        await session.execute(
            select(
                Organization.name,
                Organization.timezone,
                Organization.address,
                Organization.contact_email,
                Organization.contact_phone,
            ).where(Organization.id == org_id)
        )
    ).first()
    if row is None:
        raise not_found("organisation")
    return OrgLetterhead(
        name=row.name,
        timezone=row.timezone,
        address=row.address,
        contact_email=row.contact_email,
        contact_phone=row.contact_phone,
    )


async def member_role(session: AsyncSession, org_id: UUID, user_id: UUID) -> str | None:
    """The role of `user_id`'s active membership in `org_id`, or None when it has none."""
    found: Any = await session.execute(
        select(Membership.role, Membership.is_active).where(Membership.org_id == org_id, Membership.user_id == user_id)
    )
    row = found.first()
    if row is None or not row.is_active:
        return None
    return str(row.role)


__all__ = [
    "ROLE_PERMISSIONS",
    "Invitation",
    "Membership",
    "OrgLetterhead",
    "OrgProfile",
    "Organization",
    "Principal",
    "User",
    "member_role",
    "org_config_changed",
    "org_letterhead",
    "org_profile",
    "provide_org",
    "provide_principal",
    "unauthenticated",
]
