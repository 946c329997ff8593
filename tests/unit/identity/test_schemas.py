"""Identity's bodies speak the shared vocabulary: NUL is refused before it reaches a text column,
and each model maps to its read body in one place."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from spotless.domain.identity.models import Invitation, Membership, Organization
from spotless.domain.identity.schemas import (
    InvitationCreate,
    InvitationRead,
    Login,
    MemberRead,
    OrganizationRead,
    OrganizationUpdate,
    PasswordResetRequest,
    Signup,
)

SIGNUP = {"org_name": "Sparkle", "email": "a@b.example", "password": "pw", "timezone": "UTC", "currency": "CAD"}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (Signup, {**SIGNUP, "org_name": "Spa\x00rkle"}),
        (Signup, {**SIGNUP, "full_name": "A\x00"}),
        (Signup, {**SIGNUP, "email": "a\x00@b.example"}),
        (Signup, {**SIGNUP, "timezone": "UTC\x00"}),
        (Login, {"email": "a\x00@b.example", "password": "pw"}),
        (PasswordResetRequest, {"email": "a\x00"}),
        (InvitationCreate, {"email": "a@b.example", "role": "viewer", "full_name": "\x00"}),
        (OrganizationUpdate, {"name": "\x00"}),
        (OrganizationUpdate, {"address": "1 Main\x00"}),
        (OrganizationUpdate, {"contact_phone": "\x00"}),
    ],
)
def test_nul_is_refused_in_every_text_field(body: type[msgspec.Struct], fields: dict[str, Any]) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(msgspec.json.encode(fields), type=body)


def test_request_bodies_refuse_unknown_fields() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(msgspec.json.encode({**SIGNUP, "is_admin": True}), type=Signup)


def test_organization_read_maps_every_setting() -> None:
    now = datetime.now(UTC)
    org = Organization(
        id=uuid.uuid4(),
        name="Sparkle",
        slug="sparkle",
        timezone="America/Toronto",
        currency="CAD",
        locale="en-CA",
        business_hours={"mon": [{"start": "08:00", "end": "17:00"}]},
        tax_rate_bps=1300,
        contact_email=None,
        contact_phone="+1 604 555 0100",
        address=None,
    )
    org.created_at = org.updated_at = now
    read = msgspec.to_builtins(OrganizationRead.from_model(org))
    assert read["business_hours"] == {"mon": [{"start": "08:00", "end": "17:00"}]}
    assert read["tax_rate_bps"] == 1300 and read["contact_phone"] == "+1 604 555 0100"


def test_member_read_names_the_status() -> None:
    membership = Membership(
        org_id=uuid.uuid4(), user_id=uuid.uuid4(), role="viewer", is_active=False, display_name="Ann"
    )
    membership.created_at = datetime.now(UTC)
    read = MemberRead.from_model(membership, "ann@b.example")
    assert (read.id, read.status, read.is_active) == (membership.user_id, "deactivated", False)


def test_invitation_read_shows_a_lapsed_pending_invitation_as_expired() -> None:
    now = datetime.now(UTC)
    invitation = Invitation(
        id=uuid.uuid4(),
        org_id=uuid.uuid4(),
        email="ann@b.example",
        user_id=uuid.uuid4(),
        display_name="",
        role="viewer",
        status="pending",
        expires_at=now - timedelta(seconds=1),
    )
    invitation.created_at = invitation.updated_at = now
    assert InvitationRead.from_model(invitation).status == "expired"
    invitation.expires_at = now + timedelta(hours=1)
    assert InvitationRead.from_model(invitation).status == "pending"
