"""Money messages over SMTP: the issued invoice carries its PDF and a pay link minted at send time
(the token rests nowhere: not in the outbox, the deliveries' params, nor a log; only its hash in
invoice_links) that opens the invoice; a payment's receipt goes once per payment."""

from __future__ import annotations

import re

from spotless.domain.billing.events import InvoiceIssued, PaymentRecorded
from spotless.lib.events import emit
from tests.integration.messaging.notifications.conftest import run_deliveries, run_subscriber, sql
from tests.support.factories import AppSessions, arrange
from tests.support.factories.billing_documents import new_issued_invoice
from tests.support.factories.clients import new_client
from tests.support.factories.identity import new_org
from tests.support.messaging import deliveries, job_runtime

TOKEN = re.compile(r"/pay/([A-Za-z0-9_-]{40,})")  # on the app's pay page (BILLING_PAY_LINK_URL)


async def _invoice(owner_engine):
    async with arrange(owner_engine) as db:
        org = await new_org(db, name="Sparkle Cleaning")
        client = await new_client(db, org.id, email="ada@example.com")
        invoice = await new_issued_invoice(db, org.id, client.id)
    return org.id, client.id, invoice


async def test_an_issued_invoice_goes_with_its_pdf_and_a_pay_link_minted_at_send_time(
    owner_engine, app_sessions: AppSessions, smtp_server, client
) -> None:
    org_id, client_id, invoice = await _invoice(owner_engine)
    async with app_sessions.scoped(org_id) as session:
        emit(session, InvoiceIssued(org_id=org_id, invoice_id=invoice.id, client_id=client_id, total_cents=22_600))
    async with job_runtime(**smtp_server.env()):
        assert await run_subscriber(owner_engine, "messaging.invoice_issued") == 1
        [requested] = [r for r in await deliveries(owner_engine, org_id) if r.kind == "invoice.issued"]
        assert requested.params == {"invoice_id": str(invoice.id)}
        assert await sql(owner_engine, "SELECT 1 FROM invoice_links WHERE invoice_id = :i", i=invoice.id) == []
        await run_deliveries(owner_engine, twice=True)
    [mail] = await smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["ada@example.com"] and "INV-2026-000001" in str(mail.message["Subject"])
    attachments = list(mail.message.iter_attachments())
    assert [a.get_content_type() for a in attachments] == ["application/pdf"]
    assert attachments[0].get_content().startswith(b"%PDF")
    token = TOKEN.search(mail.body).group(1)  # type: ignore[union-attr]
    assert len(await sql(owner_engine, "SELECT 1 FROM invoice_links WHERE invoice_id = :i", i=invoice.id)) == 1
    opened = await client.get(f"/v1/pay/{token}")
    assert opened.status_code == 200, opened.text
    # The token rests nowhere but in the message sent.
    for statement in ("SELECT args::text AS t FROM job_outbox", "SELECT params::text AS t FROM deliveries"):
        assert not any(token in row.t for row in await sql(owner_engine, statement))


async def test_a_receipt_goes_once_per_payment(owner_engine, app_sessions: AppSessions, smtp_server) -> None:
    org_id, client_id, invoice = await _invoice(owner_engine)
    async with app_sessions.scoped(org_id) as session:
        for amount in (10_000, 12_600):
            emit(
                session,
                PaymentRecorded(
                    org_id=org_id, invoice_id=invoice.id, client_id=client_id, amount_cents=amount, method="etransfer"
                ),
            )
    async with job_runtime(**smtp_server.env()):
        assert await run_subscriber(owner_engine, "messaging.payment_receipt") == 2  # each heard twice
        await run_deliveries(owner_engine, twice=True)
    received = await smtp_server.wait_for(2)
    assert sorted(str(m.message["Subject"]).split(":")[1].split(" received")[0].strip() for m in received) == [
        "100.00 CAD",
        "126.00 CAD",
    ]
