"""Invitations: how an organisation adds a person (`/v1/iam/invitations`, `/v1/me/invitations`).

Adding an email never grants anything by itself. The organisation gets an invitation, the same
answer (shape and work: one argon2 hash either way) whether or not the email has an account, and
the person joins only by accepting it:
- an existing account accepts signed in as itself (its own session) with the token from the
  invitation email (the mailbox): the link alone does nothing, and neither does a session alone;
- an email without an account gets one, created with an unusable password; the invitation email
  carries a temporary password the delivery job mints at send time, and the first sign-in with it
  is the acceptance (that account exists only because of this invitation).
Until then the organisation appears nowhere for the person (sign-in candidates, membership).
Tokens and temporary passwords are minted by the delivery job when it sends, and only their
hashes are stored; re-sending rotates them. Every action is audited in the inviting organisation."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from advanced_alchemy.service import OffsetPagination
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from spotless.db.engine import apply_org_now
from spotless.domain.audit.public import record_audit
from spotless.domain.identity import passwords
from spotless.domain.identity.authn import IdentityRuntime
from spotless.domain.identity.iam import role_above_own
from spotless.domain.identity.messages import INVITATION
from spotless.domain.identity.models import Invitation, Membership, Organization, User
from spotless.domain.identity.permissions import can_grant
from spotless.domain.identity.principal import Principal
from spotless.domain.identity.schemas import (
    InvitationCreate,
    InvitationRead,
    JoinedOrganization,
    MyInvitationRead,
    OrgRef,
)
from spotless.domain.identity.sessions import act_as_user
from spotless.domain.identity.throttle import normalise_email
from spotless.domain.identity.tokens import compose, hash_secret, new_secret, split
from spotless.domain.messaging.public import Recipient, request_message
from spotless.lib.errors import Problem, not_found, register_constraint_problem
from spotless.lib.query import flush_or_conflict, offset_page
from spotless.settings import Settings

logger = logging.getLogger("spotless.identity.invitations")

_CANDIDATES = text("SELECT user_id FROM auth_login_candidates(:email) LIMIT 1")
_MINE = text("SELECT * FROM identity_my_invitations()")


@dataclass(frozen=True)
class _Invitee:
    """The audit actor when the invited person acts (in the inviting organisation)."""

    user_id: UUID
    org_id: UUID
    email: str
    role: str


def _ttl(settings: Settings) -> timedelta:
    return timedelta(hours=settings.auth.invitation_ttl_hours)


# --- the organisation's side ------------------------------------------------------------------


async def invite(db: AsyncSession, rt: IdentityRuntime, principal: Principal, data: InvitationCreate) -> InvitationRead:
    if not can_grant(principal.role, data.role):
        raise role_above_own(f"You cannot grant the role '{data.role}', which is above yours.")
    email = normalise_email(data.email)
    # Only the organisation's own members and invitations are consulted for these refusals, so
    # they tell it nothing it could not list already.
    member_here = (
        await db.execute(
            select(Membership.id)
            .join(User, User.id == Membership.user_id)
            .where(Membership.org_id == principal.org_id, User.email == email)
        )
    ).first()
    if member_here is not None:
        raise Problem(409, "email-taken", "Already a member", "A member with this email already exists here.")
    now = datetime.now(UTC)
    await db.execute(
        update(Invitation)
        .where(
            Invitation.org_id == principal.org_id,
            Invitation.email == email,
            Invitation.status == "pending",
            Invitation.expires_at <= now,
        )
        .values(status="expired", token_hash=None, updated_at=now)
    )
    pending = (
        await db.execute(
            select(Invitation.id).where(
                Invitation.org_id == principal.org_id, Invitation.email == email, Invitation.status == "pending"
            )
        )
    ).first()
    if pending is not None:
        raise _already_invited()

    # The same argon2 work whether or not the account exists: for a new account this is its first,
    # unusable password (the delivery job replaces it with the temporary one it mails).
    placeholder = await passwords.hash_password(rt.settings.auth, new_secret())
    existing = (await db.execute(_CANDIDATES, {"email": email})).scalar_one_or_none()
    display_name = data.full_name.strip()
    if existing is None:
        user_id: UUID = uuid7()
        await act_as_user(db, user_id)
        try:
            # Flushed before the invitation that references it (no ORM relationship orders them).
            async with db.begin_nested():
                db.add(
                    User(
                        id=user_id,
                        email=email,
                        full_name=display_name,
                        password_hash=placeholder,
                        must_change_password=True,
                    )
                )
        except SAIntegrityError:
            # The same new email was just created by someone else (another organisation's invitation,
            # a sign-up): it is an existing account now.
            existing = (await db.execute(_CANDIDATES, {"email": email})).scalar_one_or_none()
            if existing is None:
                raise _retry() from None
            user_id = existing
    else:
        user_id = existing
    invitation = Invitation(
        id=uuid7(),
        org_id=principal.org_id,
        email=email,
        user_id=user_id,
        display_name=display_name,
        role=data.role,
        status="pending",
        token_hash=None,
        expires_at=now + _ttl(rt.settings),
        invited_by=principal.user_id,
        created_account=existing is None,
    )
    db.add(invitation)
    try:
        await db.flush()
    except SAIntegrityError as exc:
        # The same email invited twice at once here, or created as an account concurrently.
        if "uq_invitations_pending_email" in str(exc.orig):
            raise _already_invited() from None
        logger.warning("invitation insert refused: %s", exc.orig)
        raise _retry() from None
    # Deliberately nothing about whether the account existed: audit rows are the organisation's to read.
    record_audit(
        db, principal, "invitation.create", "invitation", invitation.id, after={"email": email, "role": data.role}
    )
    await _request_email(db, invitation)
    await db.flush()
    await db.refresh(invitation)
    return InvitationRead.from_model(invitation)


async def _request_email(db: AsyncSession, invitation: Invitation) -> None:
    """The invitation email, in this transaction: one per send (a re-send has a new expiry); the
    delivery job mints its secrets (`mint_invitation_secrets`)."""
    await request_message(
        db,
        org_id=invitation.org_id,
        kind=INVITATION.name,
        recipient=Recipient(kind="invitee", id=invitation.id),
        subject_type="invitation",
        subject_id=invitation.id,
        send_key=f"sent:{invitation.expires_at.isoformat()}",
        params={"invitation_id": invitation.id},
    )


_ALREADY_INVITED = "This email has a pending invitation here; re-send or revoke it instead."


def _already_invited() -> Problem:
    return Problem(409, "invitation-pending", "Already invited", _ALREADY_INVITED)


# One pending invitation per email and organisation: a concurrent second one (invite, resend) meets it.
register_constraint_problem("uq_invitations_pending_email", _already_invited)


def _retry() -> Problem:
    return Problem(409, "conflict", "Try again", "A concurrent change got in the way; retry the request.")


async def list_invitations(
    db: AsyncSession, principal: Principal, status: str | None, limit: int, offset: int
) -> OffsetPagination[InvitationRead]:
    base = select(Invitation).where(Invitation.org_id == principal.org_id)
    now = datetime.now(UTC)
    if status == "expired":
        base = base.where(
            (Invitation.status == "expired") | ((Invitation.status == "pending") & (Invitation.expires_at <= now))
        )
    elif status == "pending":
        base = base.where(Invitation.status == "pending", Invitation.expires_at > now)
    elif status is not None:
        base = base.where(Invitation.status == status)
    return await offset_page(
        db,
        base,
        limit=limit,
        offset=offset,
        to=InvitationRead.from_model,
        order_by=(Invitation.created_at.desc(), Invitation.id),
    )


async def _load(db: AsyncSession, principal: Principal, invitation_id: UUID, *, lock: bool = False) -> Invitation:
    statement = select(Invitation).where(Invitation.org_id == principal.org_id, Invitation.id == invitation_id)
    if lock:
        statement = statement.with_for_update()
    invitation = (await db.scalars(statement)).one_or_none()
    if invitation is None:
        raise not_found("invitation")
    return invitation


async def get_invitation(db: AsyncSession, principal: Principal, invitation_id: UUID) -> InvitationRead:
    return InvitationRead.from_model(await _load(db, principal, invitation_id))


def _not_open(status: str) -> Problem:
    return Problem(
        409, "invitation-closed", "This invitation is closed", f"The invitation is {status}; invite the person again."
    )


async def revoke(db: AsyncSession, principal: Principal, invitation_id: UUID) -> InvitationRead:
    invitation = await _load(db, principal, invitation_id, lock=True)
    status = invitation.effective_status()
    if status not in ("pending", "expired"):
        raise _not_open(status)
    before = {"status": status}
    invitation.status = "revoked"
    invitation.token_hash = None
    record_audit(
        db, principal, "invitation.revoke", "invitation", invitation.id, before=before, after={"status": "revoked"}
    )
    await db.flush()
    await db.refresh(invitation)
    return InvitationRead.from_model(invitation)


async def resend(db: AsyncSession, rt: IdentityRuntime, principal: Principal, invitation_id: UUID) -> InvitationRead:
    """A fresh expiry and a fresh token (the old link stops working now, before the new email)."""
    invitation = await _load(db, principal, invitation_id, lock=True)
    status = invitation.effective_status()
    if status not in ("pending", "expired"):
        raise _not_open(status)
    invitation.status = "pending"
    invitation.token_hash = None
    invitation.expires_at = datetime.now(UTC) + _ttl(rt.settings)
    # Re-opened while a newer invitation to the same email is pending: that one stands.
    await flush_or_conflict(db, "invitation-pending", _ALREADY_INVITED)
    record_audit(db, principal, "invitation.resend", "invitation", invitation.id, before={"status": status})
    await _request_email(db, invitation)
    await db.flush()
    await db.refresh(invitation)
    return InvitationRead.from_model(invitation)


# --- the invitee's side -----------------------------------------------------------------------


async def my_invitations(db: AsyncSession, principal: Principal) -> list[MyInvitationRead]:
    await act_as_user(db, principal.user_id)
    return [MyInvitationRead.from_row(r) for r in (await db.execute(_MINE)).all()]


def _invalid_token() -> Problem:
    return Problem(
        400,
        "invalid-invitation",
        "This invitation link is invalid or has expired",
        "Sign in with the account the invitation was sent to, or ask for it to be sent again.",
        errors=[{"field": "token", "message": "invalid or expired"}],
    )


async def _join(db: AsyncSession, invitation: Invitation, actor_email: str, home_org: UUID | None) -> OrgRef:
    """Create the membership in the inviting organisation and close the invitation (caller holds
    the invitation row lock). Leaves the transaction scoped back to `home_org`."""
    now = datetime.now(UTC)
    await apply_org_now(db, invitation.org_id)
    already = (
        await db.execute(
            select(Membership.id).where(
                Membership.org_id == invitation.org_id, Membership.user_id == invitation.user_id
            )
        )
    ).first()
    if already is None:
        db.add(
            Membership(
                id=uuid7(),
                org_id=invitation.org_id,
                user_id=invitation.user_id,
                role=invitation.role,
                display_name=invitation.display_name,
                is_active=True,
            )
        )
    invitation.status = "accepted"
    invitation.responded_at = now
    invitation.token_hash = None
    record_audit(
        db,
        _Invitee(invitation.user_id, invitation.org_id, actor_email, invitation.role),
        "invitation.accept",
        "invitation",
        invitation.id,
        after={"role": invitation.role},
    )
    org = (await db.scalars(select(Organization).where(Organization.id == invitation.org_id))).one()
    await db.flush()  # the membership and audit rows are written under the inviting organisation's scope
    if home_org is not None:
        await apply_org_now(db, home_org)
    return OrgRef.from_model(org)


async def accept(db: AsyncSession, principal: Principal, token: str) -> JoinedOrganization:
    parts = split(token)
    if parts is None:
        raise _invalid_token()
    invitation_id, secret = parts
    await act_as_user(db, principal.user_id)
    invitation = (
        await db.scalars(
            select(Invitation)
            .where(Invitation.id == invitation_id, Invitation.user_id == principal.user_id)
            .with_for_update()
        )
    ).one_or_none()
    if (
        invitation is None
        or invitation.token_hash is None
        or not hmac.compare_digest(invitation.token_hash, hash_secret(secret))
        or invitation.effective_status() != "pending"
    ):
        raise _invalid_token()
    org = await _join(db, invitation, principal.email, principal.org_id)
    return JoinedOrganization(organization=org, role=invitation.role)


async def decline(db: AsyncSession, principal: Principal, invitation_id: UUID) -> None:
    await act_as_user(db, principal.user_id)
    invitation = (
        await db.scalars(
            select(Invitation)
            .where(
                Invitation.id == invitation_id,
                Invitation.user_id == principal.user_id,
                Invitation.status == "pending",
            )
            .with_for_update()
        )
    ).one_or_none()
    if invitation is None:
        raise not_found("invitation")
    invitation.status = "declined"
    invitation.responded_at = datetime.now(UTC)
    invitation.token_hash = None
    await apply_org_now(db, invitation.org_id)
    record_audit(
        db,
        _Invitee(principal.user_id, invitation.org_id, principal.email, invitation.role),
        "invitation.decline",
        "invitation",
        invitation.id,
    )
    await db.flush()
    await apply_org_now(db, principal.org_id)


async def join_by_first_sign_in(db: AsyncSession, user_id: UUID, email: str) -> bool:
    """Sign-in of an account that belongs to no organisation: if an invitation created it, the
    sign-in with the temporary password that invitation mailed is its acceptance."""
    await act_as_user(db, user_id)
    invitation = (
        await db.scalars(
            select(Invitation)
            .where(
                Invitation.user_id == user_id,
                Invitation.created_account,
                Invitation.status == "pending",
                Invitation.expires_at > func.now(),
            )
            .order_by(Invitation.created_at)
            .limit(1)
            .with_for_update()
        )
    ).one_or_none()
    if invitation is None:
        return False
    await _join(db, invitation, email, None)
    return True


# --- delivery (the job, at send time) ---------------------------------------------------------


async def _pending(session: AsyncSession, params: Mapping[str, Any], *, lock: bool) -> Invitation | None:
    query = select(Invitation).where(Invitation.id == UUID(str(params["invitation_id"])))
    invitation = (await session.scalars(query.with_for_update() if lock else query)).one_or_none()
    if invitation is None or invitation.effective_status() != "pending":
        return None
    return invitation


async def invitation_context(session: AsyncSession, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The invitation email's plain facts (None once it is no longer open). `session` is scoped
    to the invitation's organisation."""
    invitation = await _pending(session, params, lock=False)
    if invitation is None:
        return None
    slug = await session.scalar(select(Organization.slug).where(Organization.id == invitation.org_id))
    return {
        "invitation": {
            "role": invitation.role,
            "email": invitation.email,
            "org_slug": slug,
            "until": invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
        }
    }


async def mint_invitation_secrets(
    session: AsyncSession, settings: Settings, params: Mapping[str, Any]
) -> dict[str, str | None] | None:
    """The delivery job's secrets hook, at send time: the invitation's token (and, for an account
    the invitation created and nobody has used yet, its temporary password), storing only hashes.
    Each attempt mints afresh, so only the last email's secrets work. None when no longer open."""
    invitation = await _pending(session, params, lock=True)
    if invitation is None:
        return None
    secret = new_secret()
    invitation.token_hash = hash_secret(secret)
    link = f"{settings.auth.invitation_url}?{urlencode({'token': compose(invitation.id, secret)})}"
    temp_password = await _mint_first_password(session, settings, invitation)
    return {"accept_url": link, "temp_password": temp_password}


async def _mint_first_password(session: AsyncSession, settings: Settings, invitation: Invitation) -> str | None:
    if not invitation.created_account:
        return None
    await act_as_user(session, invitation.user_id)
    user = (await session.scalars(select(User).where(User.id == invitation.user_id).with_for_update())).one_or_none()
    # Only while nobody has used the account: never touch a password its owner has set.
    if user is None or user.password_changed_at is not None or user.last_login_at is not None:
        return None
    temp_password = passwords.temporary_password()
    user.password_hash = await passwords.hash_password(settings.auth, temp_password)
    user.must_change_password = True
    return temp_password
