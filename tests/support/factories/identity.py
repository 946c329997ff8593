"""Organisations, people and their memberships, idempotency records; and identity's
cross-organisation factories (tests/support/tenancy.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from spotless.domain.identity.models import Membership, Organization, User
from spotless.lib.idempotency import IdempotencyKey
from tests.support.factories.db import add, arrange
from tests.support.identity import add_member, invite, unique_email
from tests.support.tenancy import register


async def new_org(db: AsyncSession, **overrides: Any) -> Organization:
    tag = uuid.uuid4().hex
    fields: dict[str, Any] = {
        "name": f"Org {tag[:6]}",
        "slug": f"org-{tag[:12]}",
        "timezone": "America/Toronto",
        "currency": "CAD",
        "locale": "en-CA",
        "business_hours": {},
        "tax_rate_bps": 500,
    }
    return await add(db, Organization(**{**fields, **overrides}))


async def new_user(db: AsyncSession, **overrides: Any) -> User:
    """A person who cannot sign in (no real password hash): for rows that need an account."""
    fields: dict[str, Any] = {
        "email": f"{uuid.uuid4().hex[:10]}@example.com",
        "full_name": "Test",
        "password_hash": "x",
        "must_change_password": False,
    }
    return await add(db, User(**{**fields, **overrides}))


async def new_membership(
    db: AsyncSession, org_id: UUID, user_id: UUID, role: str = "worker", **overrides: Any
) -> Membership:
    return await add(db, Membership(**{"org_id": org_id, "user_id": user_id, "role": role, **overrides}))


async def new_member(db: AsyncSession, org_id: UUID, role: str = "worker", *, active: bool = True) -> Membership:
    """A new user with a membership of `org_id` (service-level tests; HTTP tests use signup)."""
    user = await new_user(db)
    return await new_membership(db, org_id, user.id, role, is_active=active)


async def new_idempotency_key(db: AsyncSession, org_id: UUID, user_id: UUID, **overrides: Any) -> IdempotencyKey:
    """A claimed key, in flight since now unless told otherwise."""
    fields: dict[str, Any] = {
        "key": f"key-{uuid.uuid4().hex[:8]}",
        "method": "POST",
        "path": "/v1/iam/users",
        "request_hash": "h",
        "status": "in_flight",
        "locked_at": datetime.now(UTC),
    }
    return await add(db, IdempotencyKey(org_id=org_id, user_id=user_id, **{**fields, **overrides}))


async def make_org(
    owner_engine: AsyncEngine, *, timezone: str = "America/Vancouver", currency: str = "CAD", tax_rate_bps: int = 500
) -> UUID:
    """`new_org` in its own transaction (America/Vancouver unless told); its id."""
    async with arrange(owner_engine) as db:
        org = await new_org(db, timezone=timezone, currency=currency, tax_rate_bps=tax_rate_bps)
    return org.id


async def make_member(owner_engine: AsyncEngine, org_id: UUID, role: str = "worker", *, active: bool = True) -> UUID:
    """`new_member` in its own transaction; the user's id."""
    async with arrange(owner_engine) as db:
        membership = await new_member(db, org_id, role, active=active)
    return membership.user_id


# --- cross-organisation factories (tests/support/tenancy.py) ----------------------------------


@register("user_id")
async def api_user_id(client: Any, member: Any) -> str:
    return str((await add_member(client, member, "viewer")).user_id)


@register("invitation_id")
async def api_invitation_id(client: Any, member: Any) -> str:
    return str((await invite(client, member, unique_email("invitee")))["id"])
