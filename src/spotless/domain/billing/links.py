"""Public links to one invoice: view it, download its PDF, pay it, without an account.

A link is a bearer secret: 32 random bytes (urlsafe base64, 43 characters) shown once, in the
answer that makes it; only its SHA-256 is stored (`invoice_links.token_hash`), so a database
dump or the audit trail holds nothing that opens an invoice. Links expire (30 days by default,
at most 90) and can be revoked; the public routes resolve them through the SECURITY DEFINER
function `billing_invoice_link(hash)` (migration 0013) (no organisation is known before it answers), which returns
the invoice's organisation and id only for a live link, then scope the session to that
organisation like any authenticated request.

An unknown, expired or revoked token, and one that is not even well formed, all take the same
path (one hash, one indexed look-up) and answer the same 404: nothing tells them apart."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.db.engine import apply_org_now
from spotless.domain.audit.public import record_audit
from spotless.domain.billing.models import Invoice, InvoiceLink
from spotless.domain.identity.public import Principal
from spotless.lib.errors import Problem, conflict, not_found
from spotless.lib.schema import Input, Output

TOKEN_BYTES = 32
DEFAULT_DAYS = 30
MAX_DAYS = 90
MAX_LINKS_LISTED = 100
# Longer than any token we mint (43): still hashed and looked up, so the answer takes as long.
_MAX_TOKEN_CHARS = 128
# Invoices a link may be made for: issued ones (a draft has no number and may still change).
LINKABLE = ("issued", "partially_paid", "paid", "uncollectible", "partially_refunded", "refunded")


class InvoiceLinkCreate(Input):
    expires_in_days: Annotated[int, Meta(ge=1, le=MAX_DAYS, description="1 to 90 days")] = DEFAULT_DAYS


class InvoiceLinkRead(Output):
    id: UUID
    invoice_id: UUID
    state: Literal["active", "expired", "revoked"]
    expires_at: datetime
    revoked_at: datetime | None
    created_at: datetime
    created_by: UUID | None


class InvoiceLinkCreated(InvoiceLinkRead):
    """The only answer that carries the link: its token is not stored and cannot be shown again."""

    url: Annotated[
        str | None,
        Meta(description="Shown once. Null when an Idempotency-Key replay answers (header Idempotent-Withheld)."),
    ]
    token: Annotated[
        str | None,
        Meta(description="The secret part of `url` (for /v1/pay/{token}); shown once, null on a replay."),
    ]


def page_urls(pay_link_url: str, token: str) -> tuple[str, str]:
    """(pay link, card-update link) of a token on the app's pay page (`BILLING_PAY_LINK_URL`): the
    page pays through GET/POST /v1/pay/{token}... and updates the card through .../card-setup."""
    base = pay_link_url.rstrip("/")
    return f"{base}/{token}", f"{base}/{token}/card"


def mint() -> tuple[str, bytes]:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, token_hash(token)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token[:_MAX_TOKEN_CHARS].encode("utf-8", "replace")).digest()


def _state(row: InvoiceLink, now: datetime) -> Literal["active", "expired", "revoked"]:
    if row.revoked_at is not None:
        return "revoked"
    return "active" if row.expires_at > now else "expired"


def _read(row: InvoiceLink, now: datetime) -> InvoiceLinkRead:
    return InvoiceLinkRead(
        id=row.id,
        invoice_id=row.invoice_id,
        state=_state(row, now),
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        created_at=row.created_at,
        created_by=row.created_by,
    )


async def _invoice_status(session: AsyncSession, invoice_id: UUID) -> str:
    status = (await session.execute(select(Invoice.status).where(Invoice.id == invoice_id))).scalar_one_or_none()
    if status is None:
        raise not_found("invoice")
    return str(status)


async def create_link(
    session: AsyncSession, principal: Principal, invoice_id: UUID, data: InvoiceLinkCreate, url_base: str
) -> InvoiceLinkCreated:
    status = await _invoice_status(session, invoice_id)
    if status not in LINKABLE:
        raise conflict(
            "invoice-not-linkable",
            "A link can be made only for an issued invoice (not a draft, not a void one).",
            invoice_status=status,
        )
    token, digest = mint()
    now = datetime.now(UTC)
    row = InvoiceLink(
        org_id=principal.org_id,
        invoice_id=invoice_id,
        token_hash=digest,
        expires_at=now + timedelta(days=data.expires_in_days),
        created_by=principal.user_id,
    )
    session.add(row)
    await session.flush()
    # The audit row names the link and its expiry, never the token or its hash.
    record_audit(
        session,
        principal,
        "invoice_link.create",
        "invoice_link",
        row.id,
        after={"invoice_id": str(invoice_id), "expires_at": row.expires_at.isoformat()},
    )
    read = _read(row, now)
    return InvoiceLinkCreated(
        **{field: getattr(read, field) for field in read.__struct_fields__},
        url=f"{url_base.rstrip('/')}/{token}",
        token=token,
    )


async def list_links(session: AsyncSession, invoice_id: UUID) -> list[InvoiceLinkRead]:
    await _invoice_status(session, invoice_id)
    rows = (
        await session.execute(
            select(InvoiceLink)
            .where(InvoiceLink.invoice_id == invoice_id)
            .order_by(InvoiceLink.created_at.desc(), InvoiceLink.id.desc())
            .limit(MAX_LINKS_LISTED)
        )
    ).scalars()
    now = datetime.now(UTC)
    return [_read(row, now) for row in rows]


async def revoke_link(session: AsyncSession, principal: Principal, invoice_id: UUID, link_id: UUID) -> InvoiceLinkRead:
    """Revoke at once (a second revoke answers the link as it is: already revoked)."""
    row = (
        await session.execute(
            select(InvoiceLink).where(InvoiceLink.id == link_id, InvoiceLink.invoice_id == invoice_id).with_for_update()
        )
    ).scalar_one_or_none()
    if row is None:
        raise not_found("invoice link")
    if row.revoked_at is None:
        revoked_at = datetime.now(UTC)
        await session.execute(update(InvoiceLink).where(InvoiceLink.id == row.id).values(revoked_at=revoked_at))
        row.revoked_at = revoked_at
        record_audit(
            session,
            principal,
            "invoice_link.revoke",
            "invoice_link",
            row.id,
            before={"revoked_at": None},
            after={"invoice_id": str(invoice_id), "revoked_at": revoked_at.isoformat()},
        )
    return _read(row, datetime.now(UTC))


_TARGET = text("SELECT org_id, invoice_id FROM billing_invoice_link(:token_hash)")


def link_not_found() -> Problem:
    # One answer for unknown, expired and revoked links; `instance` is set so the problem body
    # never echoes the path (which holds the token).
    problem = not_found("link")
    problem.instance = "/v1/pay/{token}"
    return problem


async def resolve(session: AsyncSession, token: str) -> UUID:
    """The invoice a live link opens, with the session scoped to its organisation; else 404."""
    row = (await session.execute(_TARGET, {"token_hash": token_hash(token)})).first()
    if row is None:
        raise link_not_found()
    await apply_org_now(session, row.org_id)
    return UUID(str(row.invoice_id))
