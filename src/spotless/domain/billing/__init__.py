"""Money: invoices, payments, refunds, disputes, follow-ups."""
