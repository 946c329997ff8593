"""Money messages: the invoice issued (its pay link and PDF attached), the payment receipt, each
follow-up step of an unpaid invoice (to the client, and to the office), and a dispute opened (to
the office).

A pay link is a bearer secret: it is minted when the message is built (`build_context`, in the
delivery job's transaction), so only its hash rests in `invoice_links`; the request's params hold
ids and plain facts only. A delivery retried after a failed send mints another link (harmless:
each expires, and the invoice's links page lists and revokes them)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.billing.events import InvoiceIssued, PaymentRecorded
from spotless.domain.billing.public import dispute_notice, invoice_notice, invoice_pdf, mint_message_link, page_urls
from spotless.domain.clients.public import billing_contact
from spotless.domain.messaging.notifications.context import (
    TEMPLATES,
    local_when,
    money,
    uuid_param,
    with_recipient,
    zone_of,
)
from spotless.domain.messaging.public import MessageKind, Recipient, register_kind, request_message
from spotless.lib.events import subscriber
from spotless.lib.jobs.runtime import get_runtime

INVOICE_ISSUED = "invoice.issued"
RECEIPT = "payment.receipt"
FOLLOWUP = "payment.followup"
OFFICE_FOLLOWUP = "office.followup_step"
OFFICE_DISPUTE = "office.dispute_opened"
OWED = ("issued", "partially_paid")


def link_urls(token: str) -> tuple[str, str]:
    """The pay link and the card-update link of a token, on the app's pay page."""
    return page_urls(get_runtime().settings.stripe.pay_link_url, token)


async def _invoice_facts(session: AsyncSession, org_id: UUID, invoice_id: UUID) -> dict[str, Any] | None:
    invoice = await invoice_notice(session, invoice_id)
    if invoice is None:
        return None
    contact = await billing_contact(session, invoice.client_id)
    return {
        "client_name": contact.name if contact else "",
        "invoice_number": invoice.display_number or "",
        "total": money(invoice.total_cents, invoice.currency),
        "open": money(invoice.open_cents, invoice.currency),
        "due_on": invoice.due_on.isoformat() if invoice.due_on else "",
        "status": invoice.status,
        "_kind": invoice.kind,
    }


async def _with_link(session: AsyncSession, org_id: UUID, invoice_id: UUID, facts: dict[str, Any]) -> dict[str, Any]:
    token, expires_at = await mint_message_link(session, org_id, invoice_id, datetime.now(UTC))
    zone = await zone_of(session, org_id)
    pay_url, card_update_url = link_urls(token)
    return {
        **facts,
        "pay_url": pay_url,
        "card_update_url": card_update_url,
        "link_expires": local_when(expires_at, zone)["date"],
    }


async def _issued_context(session: AsyncSession, org_id: UUID, params: Mapping[str, Any]) -> dict[str, Any] | None:
    invoice_id = uuid_param(params, "invoice_id")
    facts = await _invoice_facts(session, org_id, invoice_id)
    # A credit note, or an invoice voided before this went out, is not announced.
    if facts is None or facts.pop("_kind") != "invoice" or facts["status"] in ("draft", "void"):
        return None
    return await _with_link(session, org_id, invoice_id, facts)


async def _issued_attachments(
    session: AsyncSession, org_id: UUID, params: Mapping[str, Any]
) -> list[tuple[str, str, bytes]]:
    data, filename = await invoice_pdf(session, uuid_param(params, "invoice_id"))
    return [(filename, "application/pdf", data)]


async def _receipt_context(session: AsyncSession, org_id: UUID, params: Mapping[str, Any]) -> dict[str, Any] | None:
    facts = await _invoice_facts(session, org_id, uuid_param(params, "invoice_id"))
    if facts is None:
        return None
    facts.pop("_kind")
    currency = facts["total"].rsplit(" ", 1)[-1]
    return {**facts, "amount": money(int(params["amount_cents"]), currency), "method": params.get("method") or ""}


async def _followup_context(session: AsyncSession, org_id: UUID, params: Mapping[str, Any]) -> dict[str, Any] | None:
    invoice_id = uuid_param(params, "invoice_id")
    facts = await _invoice_facts(session, org_id, invoice_id)
    # Paid (or voided) since the step came due: no chase.
    if facts is None or facts["status"] not in OWED:
        return None
    facts.pop("_kind")
    facts.update(step=int(params["step"]), steps=int(params["steps"]), hold_applied=bool(params["hold_applied"]))
    return await _with_link(session, org_id, invoice_id, facts)


async def _office_followup_context(
    session: AsyncSession, org_id: UUID, params: Mapping[str, Any]
) -> dict[str, Any] | None:
    facts = await _invoice_facts(session, org_id, uuid_param(params, "invoice_id"))
    if facts is None:
        return None
    facts.pop("_kind")
    facts.update(step=int(params["step"]), steps=int(params["steps"]), hold_applied=bool(params["hold_applied"]))
    return facts


async def _dispute_context(session: AsyncSession, org_id: UUID, params: Mapping[str, Any]) -> dict[str, Any] | None:
    dispute = await dispute_notice(session, uuid_param(params, "dispute_id"))
    if dispute is None:
        return None
    zone = await zone_of(session, org_id)
    return {
        "amount": money(dispute.amount_cents, dispute.currency),
        "reason": dispute.reason or "no reason given",
        "invoice_number": dispute.display_number or str(dispute.invoice_id),
        "evidence_due": local_when(dispute.evidence_due_by, zone)["date"] if dispute.evidence_due_by else "unknown",
    }


def _sample_invoice() -> dict[str, Any]:
    return {
        "client_name": "Alex Martin",
        "invoice_number": "INV-0042",
        "total": "169.50 CAD",
        "open": "169.50 CAD",
        "due_on": "2026-03-23",
        "status": "issued",
        "pay_url": "https://app.example/pay/sample-token",
        "card_update_url": "https://app.example/pay/sample-token/card",
        "link_expires": "Wednesday 8 April 2026",
    }


def _sample_receipt() -> dict[str, Any]:
    return {**_sample_invoice(), "status": "paid", "open": "0.00 CAD", "amount": "169.50 CAD", "method": "card"}


def _sample_followup() -> dict[str, Any]:
    return {**_sample_invoice(), "step": 2, "steps": 4, "hold_applied": False}


def _sample_dispute() -> dict[str, Any]:
    return {
        "amount": "169.50 CAD",
        "reason": "fraudulent",
        "invoice_number": "INV-0042",
        "evidence_due": "Monday 23 March 2026",
    }


for _name, _audience, _template, _build, _sample, _channels, _attach in (
    (INVOICE_ISSUED, "client", "invoice_issued", _issued_context, _sample_invoice, ("email",), _issued_attachments),
    (RECEIPT, "client", "payment_receipt", _receipt_context, _sample_receipt, ("email",), None),
    (FOLLOWUP, "client", "payment_followup", _followup_context, _sample_followup, ("email", "sms"), None),
    (OFFICE_FOLLOWUP, "office", "office_followup_step", _office_followup_context, _sample_followup, ("email",), None),
    (OFFICE_DISPUTE, "office", "office_dispute_opened", _dispute_context, _sample_dispute, ("email",), None),
):
    register_kind(
        MessageKind(
            name=_name,
            audience=_audience,  # type: ignore[arg-type]
            transactional=True,
            channels=_channels,  # type: ignore[arg-type]
            template=_template,
            template_dir=TEMPLATES,
            build_context=_build,
            sample_context=with_recipient(_sample),
            attachments=_attach,
        )
    )


async def _to_client(session: AsyncSession, org_id: UUID, kind: str, client_id: UUID, invoice_id: UUID,
                     send_key: str, params: dict[str, Any]) -> bool:  # fmt: skip
    return await request_message(
        session,
        org_id=org_id,
        kind=kind,
        recipient=Recipient(kind="client", id=client_id),
        subject_type="invoice",
        subject_id=invoice_id,
        send_key=send_key,
        params={"invoice_id": str(invoice_id), **params},
    )


@subscriber(InvoiceIssued, name="messaging.invoice_issued", max_retries=10, time_limit_ms=60_000)
async def invoice_issued(event: InvoiceIssued, event_id: str) -> None:
    async with get_runtime().session(event.org_id) as session:
        await _to_client(session, event.org_id, INVOICE_ISSUED, event.client_id, event.invoice_id, "issued", {})


@subscriber(PaymentRecorded, name="messaging.payment_receipt", max_retries=10, time_limit_ms=60_000)
async def payment_receipt(event: PaymentRecorded, event_id: str) -> None:
    # One receipt per payment: the event id is the payment's (a redelivery carries the same).
    params = {"amount_cents": event.amount_cents, "method": event.method}
    async with get_runtime().session(event.org_id) as session:
        await _to_client(session, event.org_id, RECEIPT, event.client_id, event.invoice_id, event_id, params)
