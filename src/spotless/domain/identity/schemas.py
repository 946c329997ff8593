"""Request and response bodies for auth, organisation settings and user administration.

Each model maps to its `XRead` in one place: the `from_model` classmethod of that `XRead`."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import msgspec
from msgspec import Meta

from spotless.lib.schema import NO_NUL, UNSET, Bps, Email, Input, Name, Output, UnsetType

if TYPE_CHECKING:
    from spotless.domain.identity.models import Invitation, Membership, Organization, User
    from spotless.domain.identity.public import OrgProfile

# Never stored as text (only its argon2 hash is), so any character is allowed.
Password = Annotated[str, Meta(min_length=1, max_length=1024)]
Role = Annotated[str, Meta(pattern=r"^(owner|admin|dispatcher|finance|viewer|worker)$")]
# An email to look up (sign-in, reset): no format rule, so a malformed one gets the same answer
# as an unknown one; only NUL is refused (the look-up is SQL).
EmailLookup = Annotated[str, Meta(min_length=1, max_length=320, pattern=NO_NUL)]
# The name an organisation knows a member by, or a person's own: may be left empty.
PersonName = Annotated[str, Meta(max_length=200, pattern=NO_NUL)]
# Checked against their lists and shapes by `validation` (timezone, currency, locale, slug), which
# words the refusal.
Code = Annotated[str, Meta(pattern=NO_NUL)]
Secret = Annotated[str, Meta(min_length=1, max_length=512)]


class TimeRange(Input):
    start: Annotated[str, Meta(examples=["08:00"])]
    end: Annotated[str, Meta(examples=["17:00"])]


BusinessHours = dict[str, list[TimeRange]]


# --- organisation ------------------------------------------------------------------------------


class OrganizationRead(Output):
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

    @classmethod
    def from_model(cls, org: Organization) -> OrganizationRead:
        return cls(
            id=org.id,
            name=org.name,
            slug=org.slug,
            timezone=org.timezone,
            currency=org.currency,
            locale=org.locale,
            business_hours=msgspec.convert(org.business_hours, BusinessHours),
            tax_rate_bps=org.tax_rate_bps,
            contact_email=org.contact_email,
            contact_phone=org.contact_phone,
            address=org.address,
            created_at=org.created_at,
            updated_at=org.updated_at,
        )


class OrganizationUpdate(Input):
    """Only the fields present change. `tax_rate_bps` is basis points: 1300 = 13%."""

    name: Name | UnsetType = UNSET
    timezone: Code | UnsetType = UNSET
    currency: Code | UnsetType = UNSET
    locale: Code | UnsetType = UNSET
    business_hours: BusinessHours | UnsetType = UNSET
    tax_rate_bps: Bps | UnsetType = UNSET
    contact_email: Email | UnsetType | None = UNSET
    # Free-form (an organisation's public number may be written "1-800-CLEANUP"), unlike `Phone`.
    contact_phone: Annotated[str, Meta(max_length=40, pattern=NO_NUL)] | UnsetType | None = UNSET
    address: Annotated[str, Meta(max_length=500, pattern=NO_NUL)] | UnsetType | None = UNSET


# --- authentication ----------------------------------------------------------------------------


class Signup(Input):
    org_name: Name
    email: Email
    password: Password
    timezone: Code
    currency: Code
    full_name: PersonName = ""
    slug: Code | None = None
    locale: Code = "en-CA"


class Login(Input):
    email: EmailLookup
    password: Password
    org_slug: Annotated[str, Meta(max_length=63, pattern=NO_NUL)] | None = None


class TokenRefresh(Input):
    refresh_token: Secret


class PasswordChange(Input):
    current_password: Password
    new_password: Password


class PasswordResetRequest(Input):
    email: EmailLookup


class PasswordResetConfirm(Input):
    token: Secret
    new_password: Password


class Accepted(Output):
    status: str = "accepted"
    detail: str = ""


class UserInfo(Output):
    id: UUID
    email: str
    full_name: str
    must_change_password: bool

    @classmethod
    def from_model(cls, user: User) -> UserInfo:
        return cls(
            id=user.id, email=user.email, full_name=user.full_name, must_change_password=user.must_change_password
        )


class OrgSummary(Output):
    id: UUID
    name: str
    slug: str
    timezone: str
    currency: str

    @classmethod
    def from_model(cls, org: Organization | OrgProfile) -> OrgSummary:
        """From the row (sign-in) or the request's `org` profile (`/v1/auth/me`)."""
        return cls(id=org.id, name=org.name, slug=org.slug, timezone=org.timezone, currency=org.currency)


class Me(Output):
    user: UserInfo
    organization: OrgSummary
    role: str
    permissions: list[str]
    session_id: UUID


class TokenPair(Output):
    access_token: str
    refresh_token: str
    expires_in: int
    access_token_expires_at: datetime
    token_type: str = "bearer"


class AuthResult(Output):
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


class MemberRead(Output):
    """What an organisation knows of a member: its own view (the name it gave them, role,
    status), never the person's account (global name, last sign-in, other organisations)."""

    id: UUID  # the user's id
    email: str
    display_name: str
    role: str
    status: str  # active | deactivated
    is_active: bool
    created_at: datetime

    @classmethod
    def from_model(cls, membership: Membership, email: str) -> MemberRead:
        """`email` is the account's (a membership row does not carry it)."""
        return cls(
            id=membership.user_id,
            email=email,
            display_name=membership.display_name,
            role=membership.role,
            status="active" if membership.is_active else "deactivated",
            is_active=membership.is_active,
            created_at=membership.created_at,
        )


class InvitationCreate(Input):
    """Adding a member: always an invitation, whether or not the email has an account."""

    email: Email
    role: Role
    # The name the organisation will know this member by.
    full_name: PersonName = ""


class InvitationRead(Output):
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

    @classmethod
    def from_model(cls, inv: Invitation) -> InvitationRead:
        return cls(
            id=inv.id,
            email=inv.email,
            display_name=inv.display_name,
            role=inv.role,
            status=inv.effective_status(),
            expires_at=inv.expires_at,
            invited_by=inv.invited_by,
            responded_at=inv.responded_at,
            created_at=inv.created_at,
            updated_at=inv.updated_at,
        )


class OrgRef(Output):
    id: UUID
    name: str
    slug: str

    @classmethod
    def from_model(cls, org: Organization) -> OrgRef:
        return cls(id=org.id, name=org.name, slug=org.slug)


class MyInvitationRead(Output):
    """An invitation addressed to the caller's own account."""

    id: UUID
    organization: OrgRef
    role: str
    expires_at: datetime
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> MyInvitationRead:
        """A row of `identity_my_invitations()` (the invitee cannot read the organisation itself)."""
        return cls(
            id=row.id,
            organization=OrgRef(id=row.org_id, name=row.org_name, slug=row.org_slug),
            role=row.role,
            expires_at=row.expires_at,
            created_at=row.created_at,
        )


class AcceptInvitation(Input):
    # From the invitation email's link: proves the mailbox; the caller's session proves the account.
    token: Secret


class DeclineInvitation(Input):
    invitation_id: UUID


class JoinedOrganization(Output):
    organization: OrgRef
    role: str


class TempPassword(Output):
    user_id: UUID
    # "response": shown here once (never stored, never replayed); "email": minted and mailed by the
    # email job at send time (EMAIL_TEMP_PASSWORDS=true), so it is null here.
    delivery: str
    temp_password: Annotated[
        str | None,
        Meta(description="Shown once. Null when an Idempotency-Key replay answers (header Idempotent-Withheld)."),
    ]


class RoleChange(Input):
    role: Role


class SessionsRevoked(Output):
    user_id: UUID
    revoked_sessions: int
