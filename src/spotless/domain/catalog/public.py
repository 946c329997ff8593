"""What other contexts may use of the catalogue: pricing a visit (scheduling snapshots the quote
on the booking) and the pricing value types."""

from spotless.domain.catalog.pricing import PricingParams, Quote, QuoteParams
from spotless.domain.catalog.services import quote_for

__all__ = ["PricingParams", "Quote", "QuoteParams", "quote_for"]
