"""What the templates of visit messages know, loaded at send time through the other contexts'
public modules (never stored with the request: the request carries ids only)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.clients.public import billing_contact
from spotless.domain.identity.public import org_profile
from spotless.domain.scheduling.public import VisitNotice, visit_notice
from spotless.domain.workforce.public import get_active_workers
from spotless.lib.errors import Problem

TEMPLATES = Path(__file__).resolve().parent / "templates"
# A visit in these states is still going to happen.
UPCOMING = ("pending", "confirmed")


def uuid_param(params: Mapping[str, Any], name: str) -> UUID:
    value = params[name]
    return value if isinstance(value, UUID) else UUID(str(value))


async def zone_of(session: AsyncSession, org_id: UUID) -> ZoneInfo:
    return ZoneInfo((await org_profile(session, org_id)).timezone)


def local_when(moment: datetime, zone: ZoneInfo) -> dict[str, str]:
    """The moment as the organisation's clock shows it, in words and parts."""
    local = moment.astimezone(zone)
    return {
        "date": f"{local:%A} {local.day} {local:%B %Y}",
        "time": f"{local:%H:%M}",
        "iso": local.isoformat(),
    }


def money(cents: int, currency: str) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100:,}.{abs(cents) % 100:02d} {currency}"


def address_line(address: Mapping[str, Any] | None) -> str:
    if not address:
        return ""
    parts = [address.get("line1"), address.get("line2"), address.get("city"), address.get("region")]
    return ", ".join(str(p) for p in parts if p)


async def worker_names(session: AsyncSession, worker_ids: Sequence[UUID]) -> list[str]:
    """The names of the active ones among `worker_ids` (an inactive cleaner is not named)."""
    names: list[str] = []
    for worker_id in worker_ids:
        try:
            names.extend(w.name for w in await get_active_workers(session, [worker_id]))
        except Problem:
            continue
    return names


async def visit_context(
    session: AsyncSession, org_id: UUID, visit: VisitNotice, zone: ZoneInfo | None = None
) -> dict[str, Any]:
    zone = zone or await zone_of(session, org_id)
    contact = await billing_contact(session, visit.client_id, visit.address_id)
    ends = visit.ends_at.astimezone(zone)
    return {
        "client_name": contact.name if contact else "",
        "address": address_line(contact.address if contact else None),
        "starts": local_when(visit.starts_at, zone),
        "ends_time": f"{ends:%H:%M}",
        "cleaners": await worker_names(session, visit.worker_ids),
        "price": money(visit.total_cents, visit.currency),
        "booking_id": str(visit.id),
    }


async def load_visit(session: AsyncSession, params: Mapping[str, Any]) -> VisitNotice | None:
    return await visit_notice(session, uuid_param(params, "booking_id"))


def sample_visit() -> dict[str, Any]:
    return {
        "client_name": "Alex Martin",
        "address": "12 Queen St W, Toronto, ON",
        "starts": {"date": "Monday 9 March 2026", "time": "09:00", "iso": "2026-03-09T09:00:00-04:00"},
        "ends_time": "12:00",
        "cleaners": ["Sam Lee"],
        "price": "150.00 CAD",
        "booking_id": "0190c8a4-0000-7000-8000-000000000001",
    }


def with_recipient(sample: Callable[[], dict[str, Any]], name: str = "Alex Martin") -> Callable[[], dict[str, Any]]:
    """A sample context as the delivery job completes it (it adds the recipient's name), so an
    organisation's override may use `recipient.name` and still validate."""

    def complete() -> dict[str, Any]:
        return {**sample(), "recipient": {"name": name}}

    complete.__name__ = getattr(sample, "__name__", "sample")
    return complete
