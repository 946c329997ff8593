"""/v1/pay/{token}: what a client opens from an invoice's public link, without an account.

The token is the only credential: it resolves to one invoice of one organisation (see
`billing.links`), and the answer shows that invoice alone (no client or invoice ids, nothing of
another invoice). Unknown, expired and revoked tokens answer the same 404. The token never
reaches a log line (the access log names the route template, `/v1/pay/{token:str}`, never the
path) nor the audit trail, and answers are marked not to be cached, indexed or referred from.
Paying goes through `billing.checkout.open_checkout`, as the office's own checkout route does;
putting a new card on file (the card-update link a follow-up step sends) through
`billing.cards.start_card_setup_by_link`, a setup-mode Checkout for the invoice's client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from litestar import Controller, Response, get, post
from litestar.exceptions import HTTPException
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.billing import cards, checkout, documents, links
from spotless.domain.billing.controllers.documents import PAY_PATH, pdf_response
from spotless.domain.billing.documents import PayInvoice
from spotless.domain.billing.models import Invoice
from spotless.domain.billing.stripe_schemas import CardSetupRead, CheckoutRead
from spotless.lib.errors import problems
from spotless.lib.query import get_or_404
from spotless.settings import Settings

PUBLIC_PAY = {"public": True, "rate_limit": "public"}
# A bearer URL's answers: not stored by any cache, not indexed, and the URL not sent onwards as
# a Referer by a page built on them.
PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}


@contextmanager
def _token_kept_out() -> Iterator[None]:
    """A problem answered here names the route template as its `instance`, not the path (which
    holds the token): problem bodies get pasted into tickets and chats."""
    try:
        yield
    except HTTPException as exc:
        if getattr(exc, "instance", None) is None:
            exc.instance = f"{PAY_PATH}/{{token}}"  # type: ignore[attr-defined]
        raise


class PayLinkController(Controller):
    path = PAY_PATH
    tags = ["pay"]

    @get(
        "/{token:str}",
        operation_id="getInvoiceByLink",
        opt=PUBLIC_PAY,
        responses=problems(404),
        summary="The invoice a public link opens: number, organisation, lines, taxes, totals, open amount, "
        "status. 404 for a link that is unknown, expired or revoked (the same answer for each).",
    )
    async def show(self, db_session: AsyncSession, token: str) -> Response[PayInvoice]:
        with _token_kept_out():
            invoice_id = await links.resolve(db_session, token)
            return Response(await documents.pay_view(db_session, invoice_id), headers=PRIVATE_HEADERS)

    @get(
        "/{token:str}/pdf",
        operation_id="getInvoicePdfByLink",
        opt=PUBLIC_PAY,
        media_type="application/pdf",
        responses=problems(404),
        summary="The PDF of the invoice a public link opens (404 as for the link itself)",
    )
    async def pdf(self, db_session: AsyncSession, token: str) -> Response[bytes]:
        with _token_kept_out():
            invoice_id = await links.resolve(db_session, token)
            data, filename = await documents.invoice_pdf(db_session, invoice_id)
        response = pdf_response(data, filename)
        response.headers.update(PRIVATE_HEADERS)
        return response

    @post(
        "/{token:str}/checkout",
        operation_id="openCheckoutByLink",
        opt=PUBLIC_PAY,
        status_code=200,
        responses=problems(404, 409, 503),
        summary="Pay the invoice a public link opens: a Stripe Checkout page for its open amount (a second "
        "click reuses the open one). 409 when nothing is left to pay or card payments are not set up.",
    )
    async def checkout(self, db_session: AsyncSession, settings: Settings, token: str) -> Response[CheckoutRead]:
        with _token_kept_out():
            invoice_id = await links.resolve(db_session, token)
            invoice = await get_or_404(db_session, Invoice, invoice_id, "invoice")
            opened = await checkout.open_checkout(db_session, invoice, settings.stripe)
        read = CheckoutRead(
            url=opened.url,
            amount_cents=opened.amount_cents,
            currency=opened.currency,
            expires_at=opened.expires_at,
            reused=opened.reused,
        )
        return Response(read, headers=PRIVATE_HEADERS)

    @post(
        "/{token:str}/card-setup",
        operation_id="startCardSetupByLink",
        opt=PUBLIC_PAY,
        status_code=200,
        responses=problems(404, 409, 503),
        summary="Put a new card on file from the link a follow-up step sent: a Stripe Checkout page (setup mode) "
        "where the invoice's client saves a card and consents to automatic charges. 404 as for the link; 409 when "
        "card payments are not set up.",
    )
    async def card_setup(self, db_session: AsyncSession, settings: Settings, token: str) -> Response[CardSetupRead]:
        with _token_kept_out():
            invoice_id = await links.resolve(db_session, token)
            invoice = await get_or_404(db_session, Invoice, invoice_id, "invoice")
            link = await cards.start_card_setup_by_link(db_session, invoice, settings.stripe)
        return Response(CardSetupRead(url=link.url, expires_at=link.expires_at), headers=PRIVATE_HEADERS)
