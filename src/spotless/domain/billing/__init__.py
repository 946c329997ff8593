"""Money: invoices, payments (manual and Stripe), refunds, disputes and failed-payment follow-up."""
