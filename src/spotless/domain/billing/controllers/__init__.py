"""/v1/invoices and /v1/billing/settings (the other billing resources have their own modules)."""

from spotless.domain.billing.controllers.invoices import InvoiceController
from spotless.domain.billing.controllers.settings import BillingSettingsController

__all__ = ["BillingSettingsController", "InvoiceController"]
