"""/v1/auth/*, /v1/org, /v1/iam/users/*, /v1/iam/invitations/* and /v1/me/invitations/*: thin
handlers over the identity services."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from advanced_alchemy.service import OffsetPagination
from litestar import Controller, Request, Response, get, patch, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.identity import iam, invitations, orgs, services
from spotless.domain.identity.authn import PASSWORD_CHANGE_OPT, IdentityRuntime
from spotless.domain.identity.principal import Principal
from spotless.domain.identity.public import OrgProfile
from spotless.domain.identity.schemas import (
    Accepted,
    AcceptInvitation,
    AuthResult,
    DeclineInvitation,
    InvitationCreate,
    InvitationRead,
    JoinedOrganization,
    Login,
    Me,
    MemberRead,
    MyInvitationRead,
    OrganizationRead,
    OrganizationUpdate,
    PasswordChange,
    PasswordResetConfirm,
    PasswordResetRequest,
    RoleChange,
    SessionsRevoked,
    Signup,
    TempPassword,
    TokenPair,
    TokenRefresh,
)
from spotless.domain.identity.throttle import account_key
from spotless.lib.edge import client_ip
from spotless.lib.errors import ProblemDocument
from spotless.lib.idempotency import idempotent
from spotless.lib.pagination import DEFAULT_LIMIT
from spotless.lib.ratelimit import ACCOUNT_BUCKET, enforce
from spotless.lib.schema import Limit, Offset  # capped: a deep offset is a 400, not a scan

PUBLIC_AUTH = {"public": True, "rate_limit": "auth"}
SELF = {"permission": "core.view", PASSWORD_CHANGE_OPT: True}
USERS = {"permission": "users.manage", "rate_limit": "admin"}
MINE = {"permission": "core.view"}
InvitationStatus = Annotated[
    str | None,
    Parameter(pattern="^(pending|accepted|declined|revoked|expired)$", description="Only invitations in this state"),
]


def _problem(status: int, description: str) -> dict[int, ResponseSpec]:
    """Responses specific to a route (the generic ones are added for every route by lib.errors)."""
    return {
        status: ResponseSpec(
            data_container=ProblemDocument,
            description=description,
            media_type="application/problem+json",
            generate_examples=False,
        )
    }


async def _invite(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    identity: IdentityRuntime,
    principal: Principal,
    data: InvitationCreate,
) -> Response[InvitationRead]:
    """Adding a member and inviting one are one flow (the answer must not tell whether the email has an
    account); both routes stay because the apps already call the first."""
    return await idempotent(
        request,
        db_session,
        principal,
        lambda: invitations.invite(db_session, identity, principal, data),
        status_code=HTTP_202_ACCEPTED,
    )


def _client(request: Request[Any, Any, Any], identity: IdentityRuntime) -> services.Client:
    return services.Client(ip=client_ip(request.scope, identity.settings), user_agent=request.headers.get("user-agent"))


class AuthController(Controller):
    path = "/v1/auth"
    tags = ["auth"]

    @post(
        "/signup",
        operation_id="signup",
        summary="Create an organisation and its owner; returns tokens",
        opt=PUBLIC_AUTH,
    )
    async def signup(
        self, request: Request[Any, Any, Any], db_session: AsyncSession, identity: IdentityRuntime, data: Signup
    ) -> AuthResult:
        return await services.signup(db_session, identity, data, _client(request, identity))

    @post(
        "/login",
        operation_id="login",
        summary="Sign in with email and password (org_slug for several organisations)",
        opt=PUBLIC_AUTH,
        status_code=HTTP_200_OK,
        responses={
            **_problem(401, "Wrong email or password, or no active membership (`/problems/invalid-credentials`)"),
            **_problem(429, "Too many failed attempts for this account or address (`/problems/too-many-attempts`)"),
        },
    )
    async def login(
        self, request: Request[Any, Any, Any], db_session: AsyncSession, identity: IdentityRuntime, data: Login
    ) -> AuthResult:
        # The "auth" class limits each address; this bucket limits each account from all addresses
        # (generous: one address spending its whole quota must not lock the owner out).
        await enforce(request.app.state.rate_limiter, ACCOUNT_BUCKET, account_key(data.email))
        return await services.login(db_session, identity, data, _client(request, identity))

    @post(
        "/refresh",
        operation_id="refreshTokens",
        summary="Exchange a refresh token (single use) for a new pair",
        opt=PUBLIC_AUTH,
        status_code=HTTP_200_OK,
        responses=_problem(401, "Invalid, expired or already used (which revokes the session) refresh token"),
    )
    async def refresh(self, db_session: AsyncSession, identity: IdentityRuntime, data: TokenRefresh) -> TokenPair:
        return await services.refresh(db_session, identity, data.refresh_token)

    @post(
        "/logout",
        operation_id="logout",
        summary="End the current session",
        opt=SELF,
        status_code=HTTP_204_NO_CONTENT,
    )
    async def logout(self, db_session: AsyncSession, identity: IdentityRuntime, principal: Principal) -> None:
        await services.logout(db_session, identity, principal)

    @get("/me", operation_id="getMe", summary="The caller: user, organisation, role, permissions", opt=SELF)
    async def me(self, db_session: AsyncSession, principal: Principal, org: OrgProfile) -> Me:
        return await services.me(db_session, principal, org)

    @post(
        "/change-password",
        operation_id="changePassword",
        summary="Replace the password (ends other sessions)",
        opt=SELF,
        status_code=HTTP_204_NO_CONTENT,
    )
    async def change_password(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        identity: IdentityRuntime,
        principal: Principal,
        data: PasswordChange,
    ) -> None:
        await services.change_password(
            db_session, identity, principal, data.current_password, data.new_password, _client(request, identity)
        )

    @post(
        "/password-reset/request",
        operation_id="requestPasswordReset",
        summary="Email a single-use reset link (same answer whether or not the email exists)",
        opt=PUBLIC_AUTH,
        status_code=HTTP_202_ACCEPTED,
    )
    async def request_reset(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        identity: IdentityRuntime,
        data: PasswordResetRequest,
    ) -> Accepted:
        await services.request_password_reset(db_session, identity, data.email, _client(request, identity))
        return Accepted(detail="If an account exists for this email, a reset link is on its way.")

    @post(
        "/password-reset/confirm",
        operation_id="confirmPasswordReset",
        summary="Set a new password with an emailed token (ends every session)",
        opt=PUBLIC_AUTH,
        status_code=HTTP_204_NO_CONTENT,
    )
    async def confirm_reset(
        self, db_session: AsyncSession, identity: IdentityRuntime, data: PasswordResetConfirm
    ) -> None:
        await services.confirm_password_reset(db_session, identity, data.token, data.new_password)


class OrganizationController(Controller):
    path = "/v1/org"
    tags = ["organization"]

    @get(
        operation_id="getOrganization",
        summary="The caller's organisation and its settings",
        opt={"permission": "core.view"},
    )
    async def get_org(self, db_session: AsyncSession, principal: Principal) -> OrganizationRead:
        return await orgs.read_organization(db_session, principal.org_id)

    @patch(
        operation_id="updateOrganization",
        summary="Change organisation settings (audited)",
        opt={"permission": "settings.manage"},
    )
    async def update_org(
        self, db_session: AsyncSession, principal: Principal, data: OrganizationUpdate
    ) -> OrganizationRead:
        return await orgs.update_organization(db_session, principal, data)


class IamUsersController(Controller):
    """Admin-issued onboarding. `{user_id}` is the user's id; a user of another organisation is 404."""

    path = "/v1/iam/users"
    tags = ["iam"]

    @get(operation_id="listUsers", summary="Members of the organisation", opt={"permission": "users.manage"})
    async def list_users(
        self, db_session: AsyncSession, principal: Principal, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
    ) -> OffsetPagination[MemberRead]:
        return await iam.list_members(db_session, principal, limit, offset)

    @post(
        operation_id="createUser",
        summary="Add a member: always an invitation, whether or not the email has an account (Idempotency-Key supported)",
        opt=USERS,
        status_code=HTTP_202_ACCEPTED,
        responses=_problem(
            409, "Already a member, or already invited (`/problems/email-taken`, `/problems/invitation-pending`)"
        ),
    )
    async def create_user(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        identity: IdentityRuntime,
        principal: Principal,
        data: InvitationCreate,
    ) -> Response[InvitationRead]:
        return await _invite(request, db_session, identity, principal, data)

    @get("/{user_id:uuid}", operation_id="getUser", summary="One member", opt={"permission": "users.manage"})
    async def get_user(self, db_session: AsyncSession, principal: Principal, user_id: UUID) -> MemberRead:
        return await iam.get_member(db_session, principal, user_id)

    @post(
        "/{user_id:uuid}/reset-temp-password",
        operation_id="resetTempPassword",
        summary=(
            "Issue a new temporary password (shown once, or mailed with EMAIL_TEMP_PASSWORDS); ends the member's "
            "sessions (Idempotency-Key supported: a replay never shows the password again)"
        ),
        opt=USERS,
        status_code=HTTP_200_OK,
        responses=_problem(409, "The account belongs to other organisations too (`/problems/shared-account`)"),
    )
    async def reset_temp_password(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        identity: IdentityRuntime,
        principal: Principal,
        user_id: UUID,
    ) -> Response[TempPassword]:
        return await idempotent(
            request,
            db_session,
            principal,
            lambda: iam.reset_temp_password(db_session, identity, principal, user_id),
            secret_fields=("temp_password",),
        )

    @post(
        "/{user_id:uuid}/role",
        operation_id="changeUserRole",
        summary="Change a member's role",
        opt=USERS,
        status_code=HTTP_200_OK,
    )
    async def change_role(
        self,
        db_session: AsyncSession,
        identity: IdentityRuntime,
        principal: Principal,
        user_id: UUID,
        data: RoleChange,
    ) -> MemberRead:
        return await iam.change_role(db_session, principal, user_id, data.role)

    @post(
        "/{user_id:uuid}/deactivate",
        operation_id="deactivateUser",
        summary="Deactivate a member and end their sessions",
        opt=USERS,
        status_code=HTTP_200_OK,
    )
    async def deactivate(
        self, db_session: AsyncSession, identity: IdentityRuntime, principal: Principal, user_id: UUID
    ) -> MemberRead:
        return await iam.set_active(db_session, principal, user_id, False)

    @post(
        "/{user_id:uuid}/activate",
        operation_id="activateUser",
        summary="Reactivate a member",
        opt=USERS,
        status_code=HTTP_200_OK,
    )
    async def activate(
        self, db_session: AsyncSession, identity: IdentityRuntime, principal: Principal, user_id: UUID
    ) -> MemberRead:
        return await iam.set_active(db_session, principal, user_id, True)

    @post(
        "/{user_id:uuid}/logout",
        operation_id="logoutUser",
        summary="End all of a member's sessions",
        opt=USERS,
        status_code=HTTP_200_OK,
    )
    async def logout(
        self, db_session: AsyncSession, identity: IdentityRuntime, principal: Principal, user_id: UUID
    ) -> SessionsRevoked:
        return await iam.logout_member(db_session, principal, user_id)


class InvitationsController(Controller):
    """The organisation's invitations. `{invitation_id}` of another organisation is 404."""

    path = "/v1/iam/invitations"
    tags = ["iam"]

    @get(operation_id="listInvitations", summary="Invitations of the organisation", opt={"permission": "users.manage"})
    async def list_invitations(
        self,
        db_session: AsyncSession,
        principal: Principal,
        status: InvitationStatus = None,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> OffsetPagination[InvitationRead]:
        return await invitations.list_invitations(db_session, principal, status, limit, offset)

    @post(
        operation_id="createInvitation",
        summary="Invite a person (the same answer whether or not the email has an account; Idempotency-Key supported)",
        opt=USERS,
        status_code=HTTP_202_ACCEPTED,
        responses=_problem(
            409, "Already a member, or already invited (`/problems/email-taken`, `/problems/invitation-pending`)"
        ),
    )
    async def create_invitation(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        identity: IdentityRuntime,
        principal: Principal,
        data: InvitationCreate,
    ) -> Response[InvitationRead]:
        return await _invite(request, db_session, identity, principal, data)

    @get(
        "/{invitation_id:uuid}",
        operation_id="getInvitation",
        summary="One invitation",
        opt={"permission": "users.manage"},
    )
    async def get_invitation(
        self, db_session: AsyncSession, principal: Principal, invitation_id: UUID
    ) -> InvitationRead:
        return await invitations.get_invitation(db_session, principal, invitation_id)

    @post(
        "/{invitation_id:uuid}/revoke",
        operation_id="revokeInvitation",
        summary="Withdraw a pending invitation (its link stops working)",
        opt=USERS,
        status_code=HTTP_200_OK,
        responses=_problem(409, "Already accepted, declined or revoked (`/problems/invitation-closed`)"),
    )
    async def revoke(self, db_session: AsyncSession, principal: Principal, invitation_id: UUID) -> InvitationRead:
        return await invitations.revoke(db_session, principal, invitation_id)

    @post(
        "/{invitation_id:uuid}/resend",
        operation_id="resendInvitation",
        summary="Send a pending or expired invitation again, with a new link and expiry (the old link stops working)",
        opt=USERS,
        status_code=HTTP_202_ACCEPTED,
        responses=_problem(409, "Already accepted, declined or revoked (`/problems/invitation-closed`)"),
    )
    async def resend(
        self, db_session: AsyncSession, identity: IdentityRuntime, principal: Principal, invitation_id: UUID
    ) -> InvitationRead:
        return await invitations.resend(db_session, identity, principal, invitation_id)


class MyInvitationsController(Controller):
    """Invitations addressed to the caller's own account, in any organisation."""

    path = "/v1/me/invitations"
    tags = ["auth"]

    @get(operation_id="listMyInvitations", summary="Pending invitations to my account", opt=MINE)
    async def list_mine(self, db_session: AsyncSession, principal: Principal) -> list[MyInvitationRead]:
        return await invitations.my_invitations(db_session, principal)

    @post(
        "/accept",
        operation_id="acceptInvitation",
        summary="Join the inviting organisation: the token from the invitation email, in my own session",
        opt=MINE,
        status_code=HTTP_200_OK,
        responses=_problem(
            400, "Invalid or expired token, or not addressed to this account (`/problems/invalid-invitation`)"
        ),
    )
    async def accept(
        self, db_session: AsyncSession, principal: Principal, data: AcceptInvitation
    ) -> JoinedOrganization:
        return await invitations.accept(db_session, principal, data.token)

    @post(
        "/decline",
        operation_id="declineInvitation",
        summary="Decline a pending invitation to my account",
        opt=MINE,
        status_code=HTTP_204_NO_CONTENT,
    )
    async def decline(self, db_session: AsyncSession, principal: Principal, data: DeclineInvitation) -> None:
        await invitations.decline(db_session, principal, data.invitation_id)
