"""Sign up organisations and add members through the API, as a client would.

owner = await signup(client)                     # a new organisation and its owner
dispatcher = await add_member(client, owner, "dispatcher")
await client.get("/v1/auth/me", headers=dispatcher.headers)

Adding a member is an invitation; its email (token, and a new account's temporary password) is
a `deliveries` row whose secrets the `messaging.deliver` job mints at send time.
`deliver_invitation` runs that real job in-process, as a worker would, against a local SMTP
server (aiosmtpd), and returns the email that server received.
"""

from __future__ import annotations

import itertools
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

from httpx import Response

_counter = itertools.count(1)
DEFAULT_PASSWORD = "correct-horse-battery-9"


@dataclass
class Member:
    email: str
    password: str
    role: str
    org_id: UUID
    user_id: UUID
    org_slug: str
    access_token: str
    refresh_token: str
    session_id: UUID | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{next(_counter)}-{uuid.uuid4().hex[:8]}@example.com"


def _expect(response: Response, status: int, what: str) -> dict[str, Any]:
    assert response.status_code == status, f"{what}: {response.status_code} {response.text}"
    return response.json() if response.content else {}


def _member(body: dict[str, Any], email: str, password: str) -> Member:
    return Member(
        email=email,
        password=password,
        role=body["role"],
        org_id=UUID(body["organization"]["id"]),
        user_id=UUID(body["user"]["id"]),
        org_slug=body["organization"]["slug"],
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
    )


async def signup(
    client: Any,
    *,
    name: str = "Sparkle Cleaning",
    slug: str | None = None,
    timezone: str = "America/Toronto",
    currency: str = "CAD",
    email: str | None = None,
    password: str = DEFAULT_PASSWORD,
    locale: str = "en-CA",
) -> Member:
    """A new organisation and its owner (201), signed in."""
    email = email or unique_email("owner")
    body: dict[str, Any] = {
        "org_name": name,
        "email": email,
        "password": password,
        "timezone": timezone,
        "currency": currency,
        "locale": locale,
        "full_name": "Owner Person",
    }
    if slug is not None:
        body["slug"] = slug
    data = _expect(await client.post("/v1/auth/signup", json=body), 201, "signup")
    return _member(data, email, password)


async def login(client: Any, email: str, password: str, org_slug: str | None = None) -> Response:
    body: dict[str, Any] = {"email": email, "password": password}
    if org_slug:
        body["org_slug"] = org_slug
    return await client.post("/v1/auth/login", json=body)


@dataclass
class SentEmail:
    to: str
    subject: str
    body: str


async def deliver_pending(where: str, params: dict[str, Any], *, again: bool = False) -> list[SentEmail]:
    """Run every not-yet-run `messaging.deliver` job whose delivery matches `where`
    (SQL over `deliveries d`), once each, against a local SMTP server; the emails it received.
    again: run those already run too (the broker redelivering them)."""
    from contextlib import suppress

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from spotless.domain.messaging.actors import deliver_message
    from spotless.domain.messaging.delivery import DeadLettered
    from spotless.settings import normalize_database_url
    from tests.conftest import ADMIN_URL
    from tests.support.messaging import job_runtime
    from tests.support.smtp import SmtpServer

    # As the cluster admin, like the `owner_engine` fixture: RLS is forced on the table owner.
    owner = create_async_engine(normalize_database_url(ADMIN_URL), poolclass=NullPool)
    try:
        async with owner.connect() as conn:
            rows = list(
                await conn.execute(
                    text(
                        "SELECT o.id, o.args FROM job_outbox o JOIN deliveries d ON d.id = (o.args->>1)::uuid"
                        f" WHERE o.actor_name = 'messaging.deliver' AND {where} ORDER BY o.id"
                    ),
                    params,
                )
            )
    finally:
        await owner.dispose()
    server = SmtpServer()
    server.controller.start()
    try:
        async with job_runtime(**server.env()):
            for row in rows:
                if row.id in _RAN_OUTBOX and not again:
                    continue
                _RAN_OUTBOX.add(row.id)
                with suppress(DeadLettered):
                    await deliver_message(*row.args)
    finally:
        server.controller.stop()
    return [SentEmail(to=m.rcpt_tos[0], subject=str(m.message["Subject"]), body=m.body) for m in server.messages]


_RAN_OUTBOX: set[UUID] = set()  # outbox rows run already (a worker runs each once)


async def deliver_invitation(org_id: UUID | str, invitation_id: UUID | str, *, again: bool = False) -> SentEmail | None:
    """Run the invitation's waiting `messaging.deliver` jobs as a worker would; the last email
    sent (None when nothing was: e.g. the invitation is no longer open, or already delivered)."""
    sent = await deliver_pending(
        "d.org_id = :org AND d.recipient_kind = 'invitee' AND d.recipient_id = :inv",
        {"org": UUID(str(org_id)), "inv": UUID(str(invitation_id))},
        again=again,
    )
    return sent[-1] if sent else None


async def deliver_password_reset(user_id: UUID | str, *, again: bool = False) -> list[SentEmail]:
    """Run the waiting password-reset delivery jobs of this account; the emails sent."""
    return await deliver_pending(
        "d.kind = 'identity.password_reset' AND d.recipient_kind = 'user' AND d.recipient_id = :user",
        {"user": UUID(str(user_id))},
        again=again,
    )


def temp_password_in(body: str) -> str:
    found = re.search(r"temporary password:\s+(\S+)", body)
    assert found, body
    return found.group(1)


def token_in(body: str) -> str:
    link = re.search(r"https?://\S+", body)
    assert link, body
    return parse_qs(urlsplit(link.group(0)).query)["token"][0]


async def invite(client: Any, owner: Member, email: str, role: str = "viewer", full_name: str = "") -> dict[str, Any]:
    response = await client.post(
        "/v1/iam/users", json={"email": email, "role": role, "full_name": full_name}, headers=owner.headers
    )
    return _expect(response, 202, "invite")


async def add_member(
    client: Any,
    owner: Member,
    role: str,
    *,
    email: str | None = None,
    password: str = DEFAULT_PASSWORD,
    full_name: str = "Team Member",
) -> Member:
    """Admin-issued onboarding end to end for a new email: the invitation, its email (with the
    temporary password the job mints), the first sign-in (which accepts it), then the required
    password change. The returned member is signed in and unrestricted."""
    email = email or unique_email(role)
    invitation = await invite(client, owner, email, role, full_name)
    message = await deliver_invitation(owner.org_id, invitation["id"])
    assert message is not None and message.to == email
    temp = temp_password_in(message.body)
    data = _expect(await login(client, email, temp, owner.org_slug), 200, "first login")
    member = _member(data, email, password)
    _expect(
        await client.post(
            "/v1/auth/change-password",
            json={"current_password": temp, "new_password": password},
            headers=member.headers,
        ),
        204,
        "change temporary password",
    )
    return member


async def join_existing(client: Any, owner: Member, person: Member, role: str = "viewer") -> dict[str, Any]:
    """Invite an existing account and accept it in that person's own session."""
    invitation = await invite(client, owner, person.email, role)
    message = await deliver_invitation(owner.org_id, invitation["id"])
    assert message is not None
    accepted = await client.post(
        "/v1/me/invitations/accept", json={"token": token_in(message.body)}, headers=person.headers
    )
    return _expect(accepted, 200, "accept invitation")
