"""Request and response bodies for auth, organisation settings and user administration."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Role = Annotated[str, msgspec.Meta(pattern=r"^(owner|admin|dispatcher|finance|viewer|worker)$")]


class TimeRange(msgspec.Struct, forbid_unknown_fields=True):
    start: Annotated[str, msgspec.Meta(examples=["08:00"])]
    end: Annotated[str, msgspec.Meta(examples=["17:00"])]


BusinessHours = dict[str, list[TimeRange]]


# --- organisation ------------------------------------------------------------------------------


class Organization(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    slug: str
    timezone: str
    currency: str
    locale: str
    business_hours: BusinessHours
    tax_rate_bps: int
    contact_email: str | None
    contact_phone: str | None
    address: str | None
    created_at: datetime
    updated_at: datetime


class OrganizationPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Only the fields present change. `tax_rate_bps` is basis points: 1300 = 13%."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    timezone: str | msgspec.UnsetType = msgspec.UNSET
    currency: str | msgspec.UnsetType = msgspec.UNSET
    locale: str | msgspec.UnsetType = msgspec.UNSET
    business_hours: BusinessHours | msgspec.UnsetType = msgspec.UNSET
    tax_rate_bps: Annotated[int, msgspec.Meta(ge=0, le=10_000)] | msgspec.UnsetType = msgspec.UNSET
    contact_email: Email | msgspec.UnsetType | None = msgspec.UNSET
    contact_phone: Annotated[str, msgspec.Meta(max_length=40)] | msgspec.UnsetType | None = msgspec.UNSET
    address: Annotated[str, msgspec.Meta(max_length=500)] | msgspec.UnsetType | None = msgspec.UNSET


# --- authentication ----------------------------------------------------------------------------


class SignupRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    org_name: Name
    email: Email
    password: Password
    timezone: str
    currency: str
    full_name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    slug: str | None = None
    locale: str = "en-CA"


class LoginRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(min_length=1, max_length=320)]
    password: Password
    org_slug: Annotated[str, msgspec.Meta(max_length=63)] | None = None


class RefreshRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]


class ChangePasswordRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    current_password: Password
    new_password: Password


class PasswordResetRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(min_length=1, max_length=320)]


class PasswordResetConfirm(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
    new_password: Password


class Accepted(msgspec.Struct):
    status: str = "accepted"
    detail: str = ""


class UserInfo(msgspec.Struct, kw_only=True):
    id: UUID
    email: str
    full_name: str
    must_change_password: bool


class OrgSummary(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    slug: str
    timezone: str
    currency: str


class Me(msgspec.Struct, kw_only=True):
    user: UserInfo
    organization: OrgSummary
    role: str
    permissions: list[str]
    session_id: UUID


class TokenPair(msgspec.Struct, kw_only=True):
    access_token: str
    refresh_token: str
    expires_in: int
    access_token_expires_at: datetime
    token_type: str = "bearer"


class AuthResult(msgspec.Struct, kw_only=True):
    """Tokens plus who they belong to, so a client needs no second call after signing in."""

    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    access_token_expires_at: datetime
    user: UserInfo
    organization: OrgSummary
    role: str
    permissions: list[str]


# --- user administration ------------------------------------------------------------------------


class Member(msgspec.Struct, kw_only=True):
    """What an organisation knows of a member: its own view (the name it gave them, role,
    status), never the person's account (global name, last sign-in, other organisations)."""

    id: UUID  # the user's id
    email: str
    display_name: str
    role: str
    status: str  # active | deactivated
    is_active: bool
    created_at: datetime


class NewMember(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: Email
    role: Role
    # The name the organisation will know this member by.
    full_name: Annotated[str, msgspec.Meta(max_length=200)] = ""


class Invitation(msgspec.Struct, kw_only=True):
    """The answer to "add a member", whether or not the email already has an account: the person
    joins when they accept (a new account: at its first sign-in with the emailed temporary password)."""

    id: UUID
    email: str
    display_name: str
    role: str
    status: str  # pending | accepted | declined | revoked | expired
    expires_at: datetime
    invited_by: UUID | None
    responded_at: datetime | None
    created_at: datetime
    updated_at: datetime


class OrgRef(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    slug: str


class MyInvitation(msgspec.Struct, kw_only=True):
    """An invitation addressed to the caller's own account."""

    id: UUID
    organization: OrgRef
    role: str
    expires_at: datetime
    created_at: datetime


class AcceptInvitation(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # From the invitation email's link: proves the mailbox; the caller's session proves the account.
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]


class DeclineInvitation(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    invitation_id: UUID


class JoinedOrganization(msgspec.Struct, kw_only=True):
    organization: OrgRef
    role: str


class TempPassword(msgspec.Struct, kw_only=True):
    user_id: UUID
    # "response": shown here once (never stored, never replayed); "email": minted and mailed by the
    # email job at send time (EMAIL_TEMP_PASSWORDS=true), so it is null here.
    delivery: str
    temp_password: Annotated[
        str | None,
        msgspec.Meta(
            description="Shown once. Null when an Idempotency-Key replay answers (header Idempotent-Withheld)."
        ),
    ]


class RoleChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    role: Role


class SessionsRevoked(msgspec.Struct, kw_only=True):
    user_id: UUID
    revoked_sessions: int
