"""Member administration (`/v1/iam/users`); adding a member is an invitation (`invitations.py`).

Rules: nobody acts on a member ranked above them or grants a role above their own; an
organisation always keeps an active owner (checked here under a lock on the organisation row,
and again by a deferred constraint trigger at commit). Every change is audited in its own
transaction."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

from advanced_alchemy.service import OffsetPagination
from sqlalchemy import Select, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.audit.public import record_audit
from spotless.domain.identity import passwords
from spotless.domain.identity.authn import IdentityRuntime
from spotless.domain.identity.messages import TEMP_PASSWORD_RESET
from spotless.domain.identity.models import Membership, Organization, User
from spotless.domain.identity.permissions import can_grant, rank
from spotless.domain.identity.principal import Principal
from spotless.domain.identity.schemas import MemberRead, SessionsRevoked, TempPassword
from spotless.domain.identity.sessions import act_as_user, last_owner, revoke_sessions, session_changed
from spotless.domain.messaging.public import Recipient, request_message
from spotless.lib.errors import Problem, not_found
from spotless.lib.query import offset_page
from spotless.settings import Settings

# SECURITY DEFINER (migration 0005): the member's `users` row is theirs alone to update otherwise.
_SET_PASSWORD = text("SELECT identity_admin_set_password(:user, :hash)")


async def _notify_reset(
    db: AsyncSession, principal: Principal, user_id: UUID, changed_at: datetime, *, emailed: bool
) -> None:
    """The reset's email through messaging's one delivery path, once per reset whatever redelivers
    it. Its row and job hold ids only: an emailed temporary password is minted at send time."""
    await request_message(
        db,
        org_id=principal.org_id,
        kind=TEMP_PASSWORD_RESET.name,
        recipient=Recipient(kind="user", id=user_id),
        subject_type="user",
        subject_id=user_id,
        send_key=f"temp_password_reset:{changed_at.isoformat()}",
        params={"user_id": str(user_id), "changed_at": changed_at.isoformat(), "emailed": emailed},
    )


def role_above_own(detail: str) -> Problem:
    return Problem(403, "role-above-own", "Beyond your own role", detail)


def _snapshot(membership: Membership) -> dict[str, Any]:
    return {"role": membership.role, "is_active": membership.is_active}


async def list_members(db: AsyncSession, principal: Principal, limit: int, offset: int) -> OffsetPagination[MemberRead]:
    # `offset_page` is typed for a one-column select; this one also carries the account's email.
    members = cast(
        "Select[Any]",
        select(Membership, User.email)
        .join(User, Membership.user_id == User.id)
        .where(Membership.org_id == principal.org_id),
    )
    return await offset_page(
        db,
        members,
        limit=limit,
        offset=offset,
        to=lambda row: MemberRead.from_model(*row),
        order_by=(Membership.created_at, Membership.id),
    )


async def _load(db: AsyncSession, principal: Principal, user_id: UUID, *, lock: bool = False) -> tuple[str, Membership]:
    statement = (
        select(User.email, Membership)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == principal.org_id, Membership.user_id == user_id)
    )
    if lock:
        statement = statement.with_for_update(of=Membership)
    row = (await db.execute(statement)).one_or_none()
    if row is None:
        raise not_found("user")
    return row[0], row[1]


async def get_member(db: AsyncSession, principal: Principal, user_id: UUID) -> MemberRead:
    email, membership = await _load(db, principal, user_id)
    return MemberRead.from_model(membership, email)


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


async def reset_temp_password(
    db: AsyncSession, rt: IdentityRuntime, principal: Principal, user_id: UUID
) -> TempPassword:
    """Replace a member's password with a temporary one and end their sessions. Refused (by the
    database function) for an account shared with another organisation: the password is the
    person's, and an admin of one organisation must not take over their access to another."""
    _, membership = await _load(db, principal, user_id, lock=True)
    _may_act_on(principal, membership)
    by_email = rt.settings.email.temp_passwords
    temp_password = passwords.temporary_password()
    # By email, the job mints the password it mails at send time; this hash (of a value nobody
    # keeps) ends the old password now.
    new_hash = await passwords.hash_password(
        rt.settings.auth, passwords.temporary_password() if by_email else temp_password
    )
    changed_at = (await db.execute(_SET_PASSWORD, {"user": user_id, "hash": new_hash})).scalar_one()
    if changed_at is None:
        raise Problem(
            409,
            "shared-account",
            "This account belongs to other organisations too",
            "Ask the person to use 'forgot password' instead.",
        )
    revoked = await revoke_sessions(db, principal.org_id, user_id, "temp_password_reset")
    record_audit(
        db,
        principal,
        "user.reset_temp_password",
        "user",
        user_id,
        meta={"revoked_sessions": revoked, "delivery": "email" if by_email else "response"},
    )
    await _notify_reset(db, principal, user_id, changed_at, emailed=by_email)
    if by_email:
        return TempPassword(user_id=user_id, delivery="email", temp_password=None)
    return TempPassword(user_id=user_id, delivery="response", temp_password=temp_password)


async def mint_temp_password(
    session: AsyncSession, settings: Settings, params: Mapping[str, Any]
) -> dict[str, str | None] | None:
    """The delivery job's secrets hook for an emailed reset: mint the temporary password now,
    store only its hash. None (nothing sent) once the password changed since: the person chose
    theirs, or a newer reset superseded this one. A retried send mints again, so only the latest
    email's password works."""
    user_id = UUID(str(params["user_id"]))
    changed_at = datetime.fromisoformat(str(params["changed_at"]))
    await act_as_user(session, user_id)
    user = (await session.scalars(select(User).where(User.id == user_id).with_for_update())).one_or_none()
    if user is None or not user.must_change_password or user.password_changed_at != changed_at:
        return None
    temp_password = passwords.temporary_password()
    user.password_hash = await passwords.hash_password(settings.auth, temp_password)
    return {"temp_password": temp_password}


async def change_role(db: AsyncSession, principal: Principal, user_id: UUID, role: str) -> MemberRead:
    email, membership = await _load(db, principal, user_id, lock=True)
    _may_act_on(principal, membership)
    if not can_grant(principal.role, role):
        raise role_above_own(f"You cannot grant the role '{role}', which is above yours.")
    if role == membership.role:
        return MemberRead.from_model(membership, email)
    if role != "owner":
        await _ensure_another_owner(db, principal, membership)
    before = _snapshot(membership)
    membership.role = role
    session_changed(db, principal.org_id, user_id)
    record_audit(db, principal, "user.role_change", "user", user_id, before=before, after=_snapshot(membership))
    return MemberRead.from_model(membership, email)


async def set_active(db: AsyncSession, principal: Principal, user_id: UUID, active: bool) -> MemberRead:
    email, membership = await _load(db, principal, user_id, lock=True)
    _may_act_on(principal, membership)
    if membership.is_active == active:
        return MemberRead.from_model(membership, email)
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
    return MemberRead.from_model(membership, email)


async def logout_member(db: AsyncSession, principal: Principal, user_id: UUID) -> SessionsRevoked:
    _, membership = await _load(db, principal, user_id)
    _may_act_on(principal, membership)
    revoked = await revoke_sessions(db, principal.org_id, user_id, "admin_logout")
    record_audit(db, principal, "user.logout", "user", user_id, meta={"revoked_sessions": revoked})
    return SessionsRevoked(user_id=user_id, revoked_sessions=revoked)
