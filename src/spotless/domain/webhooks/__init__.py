"""Outgoing webhooks: organisations' endpoints, signed deliveries (Standard Webhooks), retries and
the delivery log. Not billing/webhooks.py, which is Stripe's incoming webhook."""
