"""What other contexts (and billing's other modules) may use of billing.

- the ledger rule: `Entry`, `post_entry` (the one writer of an invoice's paid/refunded amounts
  and payment status), `derive_status`, `open_cents`, `client_credit_cents`;
- numbering: `take_number`, `display_number`, `CREDIT_NOTE_SERIES`;
- taxes: `rates_for`, `line_tax`, `tax_lines`, `normalise_region`;
- settings: `get_settings` (defaults when none saved);
- follow-ups: `payment_hold_wanted` (does an active follow-up still hold the client's visits?);
- the app's pay page for a link's token: `page_urls` (pay, card update; `BILLING_PAY_LINK_URL`);
- what messaging tells of money (`notices`): `invoice_notice`, `mint_message_link` (a pay link minted
  at send time), `invoice_pdf`, `dispute_notice`, `money_totals` (digests).
- cards: `remove_client_cards` (a client's erasure: every saved card deactivated and detached).
- accounting (QuickBooks): `invoices_changed_since`, `invoices_by_id`, `movements_since`,
  `movements_by_id` (issued invoices and their payments/refunds as plain data; read only).
Events are in `billing.events`."""

from typing import Any
from uuid import UUID

from spotless.domain.billing.accounting import (
    InvoiceFacts,
    LineFacts,
    MovementFacts,
    invoices_by_id,
    invoices_changed_since,
    movements_by_id,
    movements_since,
)
from spotless.domain.billing.followup import payment_hold_wanted
from spotless.domain.billing.ledger import Entry, client_credit_cents, derive_status, open_cents
from spotless.domain.billing.ledger import post as post_entry
from spotless.domain.billing.links import page_urls
from spotless.domain.billing.notices import (
    DisputeNotice,
    InvoiceNotice,
    MoneyTotals,
    dispute_notice,
    invoice_notice,
    invoice_pdf,
    mint_message_link,
    money_totals,
)
from spotless.domain.billing.numbering import CREDIT_NOTE_SERIES, display_number, take_number
from spotless.domain.billing.settings import get_settings
from spotless.domain.billing.taxes import Rate, TaxLine, line_tax, normalise_region, rates_for, tax_lines

__all__ = [
    "CREDIT_NOTE_SERIES",
    "DisputeNotice",
    "Entry",
    "InvoiceFacts",
    "InvoiceNotice",
    "LineFacts",
    "MoneyTotals",
    "MovementFacts",
    "Rate",
    "TaxLine",
    "client_credit_cents",
    "derive_status",
    "display_number",
    "dispute_notice",
    "get_settings",
    "invoice_notice",
    "invoice_pdf",
    "invoices_by_id",
    "invoices_changed_since",
    "line_tax",
    "mint_message_link",
    "money_totals",
    "movements_by_id",
    "movements_since",
    "normalise_region",
    "open_cents",
    "page_urls",
    "payment_hold_wanted",
    "post_entry",
    "rates_for",
    "remove_client_cards",
    "take_number",
    "tax_lines",
]


async def remove_client_cards(session: Any, principal: Any, client_id: UUID, stripe: Any) -> int:
    """Every active card of the client removed as `DELETE .../payment-methods/{id}` does; how many.
    (cards imports this module: imported here, when called.)"""
    from spotless.domain.billing.cards import list_payment_methods, remove_payment_method

    methods = await list_payment_methods(session, client_id)
    for method in methods:
        await remove_payment_method(session, principal, client_id, method.id, stripe)
    return len(methods)
