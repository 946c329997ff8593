"""What other contexts may use of the catalogue: pricing a visit (scheduling snapshots the quote
on the booking) and the pricing value types."""

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.catalog.models import Service
from spotless.domain.catalog.pricing import PricingParams, Quote, QuoteParams
from spotless.domain.catalog.services import quote_for
from spotless.lib.query import get_or_404


async def require_service(session: AsyncSession, service_id: UUID, *, for_update: bool = False) -> None:
    """404 unless the service is the organisation's; `for_update` locks its row (orders writers of
    what hangs off it, such as its checklist template)."""
    await get_or_404(session, Service, service_id, "service", with_for_update=for_update)


__all__ = ["PricingParams", "Quote", "QuoteParams", "quote_for", "require_service"]
