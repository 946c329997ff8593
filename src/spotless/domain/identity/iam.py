"""Admin-issued onboarding and member administration (`/v1/iam/users`).

Rules: nobody acts on a member ranked above them or grants a role above their own; an
organisation always keeps an active owner (checked here under a lock on the organisation row,
and again by a deferred constraint trigger at commit). Every change is audited in its own
transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.service import OffsetPagination
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from spotless.domain.audit.services import record_audit
from spotless.domain.identity import passwords
from spotless.domain.identity.authn import IdentityRuntime
from spotless.domain.identity.models import Membership, Organization, User
from spotless.domain.identity.permissions import can_grant, rank
from spotless.domain.identity.principal import Principal
from spotless.domain.identity.schemas import CreatedMember, Member, NewMember, SessionsRevoked, TempPassword
from spotless.domain.identity.services import login_candidates
from spotless.domain.identity.sessions import act_as_user, last_owner, revoke_sessions, session_changed
from spotless.domain.identity.throttle import normalise_email
from spotless.lib.errors import Problem, not_found
from spotless.lib.jobs import enqueue


def _notify(db: AsyncSession, to: str, subject: str, body: str, kind: str) -> None:
    enqueue(db, "messaging.send_email", to=to, subject=subject, body=body, kind=kind, dedupe_key=f"{kind}:{uuid7()}")


def _temp_password_lines(rt: IdentityRuntime, temp_password: str) -> str:
    # EMAIL_TEMP_PASSWORDS: operators choose whether the password travels by email or by hand.
    if rt.settings.email.temp_passwords:
        return f"Your temporary password: {temp_password}\nYou will be asked to choose your own when you sign in.\n"
    return "Your administrator will give you a temporary password; you will choose your own at sign-in.\n"


def role_above_own(detail: str) -> Problem:
    return Problem(403, "role-above-own", "Beyond your own role", detail)


def _member(user: User, membership: Membership) -> Member:
    return Member(
        id=user.id,
        email=user.email,
        full_name=user.full_name,
        role=membership.role,
        is_active=membership.is_active,
        must_change_password=user.must_change_password,
        created_at=membership.created_at,
        last_login_at=user.last_login_at,
    )


def _snapshot(membership: Membership) -> dict[str, Any]:
    return {"role": membership.role, "is_active": membership.is_active}


async def list_members(db: AsyncSession, principal: Principal, limit: int, offset: int) -> OffsetPagination[Member]:
    base = (
        select(User, Membership)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == principal.org_id)
    )
    total = (
        await db.execute(select(func.count()).select_from(Membership).where(Membership.org_id == principal.org_id))
    ).scalar_one()
    rows = (await db.execute(base.order_by(Membership.created_at, Membership.id).limit(limit).offset(offset))).all()
    return OffsetPagination(items=[_member(u, m) for u, m in rows], total=total, limit=limit, offset=offset)


async def _load(
    db: AsyncSession, principal: Principal, user_id: UUID, *, lock: bool = False
) -> tuple[User, Membership]:
    statement = (
        select(User, Membership)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == principal.org_id, Membership.user_id == user_id)
    )
    if lock:
        statement = statement.with_for_update(of=Membership)
    row = (await db.execute(statement)).one_or_none()
    if row is None:
        raise not_found("user")
    return row[0], row[1]


async def get_member(db: AsyncSession, principal: Principal, user_id: UUID) -> Member:
    user, membership = await _load(db, principal, user_id)
    return _member(user, membership)


def _may_act_on(principal: Principal, membership: Membership) -> None:
    if rank(membership.role) > rank(principal.role):
        raise role_above_own(f"You cannot manage a member whose role ({membership.role}) is above yours.")


async def _ensure_another_owner(db: AsyncSession, principal: Principal, membership: Membership) -> None:
    """Called before an active owner stops being one. Locks the organisation row so two owners
    cannot demote each other at the same time."""
    if membership.role != "owner" or not membership.is_active:
        return
    await db.execute(select(Organization.id).where(Organization.id == principal.org_id).with_for_update())
    others = (
        await db.execute(
            select(func.count())
            .select_from(Membership)
            .where(
                Membership.org_id == principal.org_id,
                Membership.role == "owner",
                Membership.is_active,
                Membership.id != membership.id,
            )
        )
    ).scalar_one()
    if others == 0:
        raise last_owner()


async def create_member(db: AsyncSession, rt: IdentityRuntime, principal: Principal, data: NewMember) -> CreatedMember:
    if not can_grant(principal.role, data.role):
        raise role_above_own(f"You cannot grant the role '{data.role}', which is above yours.")
    email = normalise_email(data.email)
    rows = await login_candidates(db, email)
    temp_password: str | None = None
    if rows:
        if any(r.org_id == principal.org_id for r in rows):
            raise Problem(409, "email-taken", "Already a member", "A member with this email already exists here.")
        # An existing account joins with its own password; we never reset someone else's
        # credentials from another organisation.
        user_id: UUID = rows[0].user_id
        await act_as_user(db, user_id)
        user = (await db.execute(select(User).where(User.id == user_id))).scalar_one()
    else:
        temp_password = passwords.temporary_password()
        user_id = uuid7()
        await act_as_user(db, user_id)
        user = User(
            id=user_id,
            email=email,
            full_name=data.full_name.strip(),
            password_hash=await passwords.hash_password(rt.settings.auth, temp_password),
            must_change_password=True,
        )
        db.add(user)
        await db.flush()
    membership = Membership(id=uuid7(), org_id=principal.org_id, user_id=user_id, role=data.role, is_active=True)
    db.add(membership)
    await db.flush()
    record_audit(
        db,
        principal,
        "user.create",
        "user",
        user_id,
        after={"email": email, "role": data.role},
        meta={"existing_account": temp_password is None},
    )
    org = (await db.execute(select(Organization).where(Organization.id == principal.org_id))).scalar_one()
    access = f"You now have access to {org.name} on Spotless as {data.role}.\nSign in with {email}"
    if temp_password is None:
        body = f"{access} and your usual password (organisation: {org.slug}).\n"
    else:
        body = f"{access} (organisation: {org.slug}).\n" + _temp_password_lines(rt, temp_password)
    _notify(db, email, f"Your access to {org.name}", body, "member_invite")
    await db.refresh(membership)
    return CreatedMember(user=_member(user, membership), temp_password=temp_password)


async def reset_temp_password(
    db: AsyncSession, rt: IdentityRuntime, principal: Principal, user_id: UUID
) -> TempPassword:
    user, membership = await _load(db, principal, user_id, lock=True)
    _may_act_on(principal, membership)
    rows = await login_candidates(db, user.email)
    if any(r.org_id is not None and r.org_id != principal.org_id for r in rows):
        # The password is the person's, shared by every organisation they belong to: an admin of
        # one must not be able to take over their access to another.
        raise Problem(
            409,
            "shared-account",
            "This account belongs to other organisations too",
            "Ask the person to use 'forgot password' instead.",
        )
    temp_password = passwords.temporary_password()
    user = (await db.execute(select(User).where(User.id == user_id).with_for_update())).scalar_one()
    user.password_hash = await passwords.hash_password(rt.settings.auth, temp_password)
    user.must_change_password = True
    user.password_changed_at = datetime.now(UTC)
    revoked = await revoke_sessions(db, principal.org_id, user_id, "temp_password_reset")
    record_audit(db, principal, "user.reset_temp_password", "user", user_id, meta={"revoked_sessions": revoked})
    _notify(
        db,
        user.email,
        "Your Spotless password was reset",
        "An administrator reset your password and signed you out everywhere.\n"
        + _temp_password_lines(rt, temp_password),
        "temp_password_reset",
    )
    return TempPassword(user_id=user_id, temp_password=temp_password)


async def change_role(db: AsyncSession, principal: Principal, user_id: UUID, role: str) -> Member:
    user, membership = await _load(db, principal, user_id, lock=True)
    _may_act_on(principal, membership)
    if not can_grant(principal.role, role):
        raise role_above_own(f"You cannot grant the role '{role}', which is above yours.")
    if role == membership.role:
        return _member(user, membership)
    if role != "owner":
        await _ensure_another_owner(db, principal, membership)
    before = _snapshot(membership)
    membership.role = role
    session_changed(db, principal.org_id, user_id)
    record_audit(db, principal, "user.role_change", "user", user_id, before=before, after=_snapshot(membership))
    return _member(user, membership)


async def set_active(db: AsyncSession, principal: Principal, user_id: UUID, active: bool) -> Member:
    user, membership = await _load(db, principal, user_id, lock=True)
    _may_act_on(principal, membership)
    if membership.is_active == active:
        return _member(user, membership)
    if not active:
        await _ensure_another_owner(db, principal, membership)
    before = _snapshot(membership)
    membership.is_active = active
    membership.deactivated_at = None if active else datetime.now(UTC)
    meta: dict[str, Any] = {}
    if not active:
        meta["revoked_sessions"] = await revoke_sessions(db, principal.org_id, user_id, "deactivated")
    session_changed(db, principal.org_id, user_id)
    record_audit(
        db,
        principal,
        "user.activate" if active else "user.deactivate",
        "user",
        user_id,
        before=before,
        after=_snapshot(membership),
        meta=meta,
    )
    return _member(user, membership)


async def logout_member(db: AsyncSession, principal: Principal, user_id: UUID) -> SessionsRevoked:
    _, membership = await _load(db, principal, user_id)
    _may_act_on(principal, membership)
    revoked = await revoke_sessions(db, principal.org_id, user_id, "admin_logout")
    record_audit(db, principal, "user.logout", "user", user_id, meta={"revoked_sessions": revoked})
    return SessionsRevoked(user_id=user_id, revoked_sessions=revoked)
