"""Catalogue rules and the bridge from stored prices to the pure pricing engine.
Sessions are scoped to one organisation by RLS: another organisation's service is not found."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import msgspec
from advanced_alchemy.service.pagination import OffsetPagination
from sqlalchemy import Select, any_, bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.db.org_cache import OrgCache, on_request_path
from spotless.domain.catalog.models import FREQUENCIES, FrequencyDiscount, Service, ServiceAddon
from spotless.domain.catalog.pricing import Quote, QuoteParams, quote
from spotless.domain.catalog.schemas import (
    AddonCreate,
    AddonUpdate,
    FrequencyDiscountsRead,
    FrequencyDiscountsUpdate,
    ServiceCreate,
    ServiceRead,
    ServiceUpdate,
)
from spotless.domain.identity.public import OrgProfile, org_config_changed, org_profile
from spotless.lib.errors import FieldError, Problem, conflict, not_found
from spotless.lib.query import flush_or_conflict, get_or_404, offset_page
from spotless.lib.sql import Shapes

# Two concurrent writers can both pass the name pre-check; the unique key then decides, as a 409.
_DUPLICATE_SERVICE = "A service with this name already exists."

# --- services ----------------------------------------------------------------------------------


async def _service_name_free(session: AsyncSession, name: str, service_id: UUID | None) -> None:
    stmt = select(Service.id).where(func.lower(Service.name) == name.lower())
    if service_id is not None:
        stmt = stmt.where(Service.id != service_id)
    if await session.scalar(stmt) is not None:
        raise conflict("duplicate", f"A service named {name!r} already exists.")


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise FieldError("name", "name cannot be blank")
    return cleaned


async def create_service(session: AsyncSession, org_id: UUID, data: ServiceCreate) -> Service:
    fields = msgspec.structs.asdict(data)
    fields["name"] = _clean_name(data.name)
    await _service_name_free(session, fields["name"], None)
    service = Service(org_id=org_id, **fields)
    session.add(service)
    await flush_or_conflict(session, "duplicate", _DUPLICATE_SERVICE)
    org_config_changed(session, org_id)  # cached quotes: this node at commit, the others by version
    return service


async def list_services(
    session: AsyncSession, org: OrgProfile, *, limit: int, offset: int, include_inactive: bool = False
) -> OffsetPagination[ServiceRead]:
    stmt: Select[Any] = select(Service)
    if not include_inactive:
        stmt = stmt.where(Service.active.is_(True))
    return await offset_page(
        session,
        stmt,
        limit=limit,
        offset=offset,
        to=lambda service: ServiceRead.from_model(service, org.currency),
        order_by=(Service.name, Service.id),
    )


async def get_service(session: AsyncSession, service_id: UUID) -> Service:
    return await get_or_404(session, Service, service_id, "service")


async def update_service(session: AsyncSession, service_id: UUID, patch: ServiceUpdate) -> Service:
    service = await get_service(session, service_id)
    for field, value in msgspec.structs.asdict(patch).items():
        if value is msgspec.UNSET:
            continue
        if field == "name":
            value = _clean_name(value)
            await _service_name_free(session, value, service.id)
        setattr(service, field, value)
    await flush_or_conflict(session, "duplicate", _DUPLICATE_SERVICE)
    org_config_changed(session, service.org_id)
    return service


async def deactivate_service(session: AsyncSession, service_id: UUID) -> None:
    """Soft: existing bookings keep their service; it is no longer offered or quotable."""
    service = await get_service(session, service_id)
    if service.active:
        service.active = False
        await session.flush()
        org_config_changed(session, service.org_id)


# --- add-ons -----------------------------------------------------------------------------------


async def list_addons(
    session: AsyncSession, service_id: UUID | None, *, include_inactive: bool = False, include_global: bool = True
) -> list[ServiceAddon]:
    """A service's add-ons (plus, by default, the organisation-wide ones offered with every
    service); with `service_id=None`, only the organisation-wide ones."""
    if service_id is not None:
        await get_service(session, service_id)
        scope = ServiceAddon.service_id == service_id
        if include_global:
            scope = or_(scope, ServiceAddon.service_id.is_(None))
    else:
        scope = ServiceAddon.service_id.is_(None)
    stmt = select(ServiceAddon).where(scope)
    if not include_inactive:
        stmt = stmt.where(ServiceAddon.active.is_(True))
    return list(await session.scalars(stmt.order_by(ServiceAddon.name, ServiceAddon.id)))


async def create_addon(session: AsyncSession, org_id: UUID, service_id: UUID | None, data: AddonCreate) -> ServiceAddon:
    if service_id is not None:
        await get_service(session, service_id)
    fields = msgspec.structs.asdict(data)
    fields["name"] = _clean_name(data.name)
    addon = ServiceAddon(org_id=org_id, service_id=service_id, **fields)
    session.add(addon)
    await session.flush()
    org_config_changed(session, org_id)
    return addon


async def get_addon(session: AsyncSession, addon_id: UUID, service_id: UUID | None) -> ServiceAddon:
    """`service_id=None` addresses an organisation-wide add-on; otherwise one of that service's."""
    addon = await get_or_404(session, ServiceAddon, addon_id, "add-on")
    if addon.service_id != service_id:
        raise not_found("add-on")
    return addon


async def update_addon(
    session: AsyncSession, addon_id: UUID, service_id: UUID | None, patch: AddonUpdate
) -> ServiceAddon:
    addon = await get_addon(session, addon_id, service_id)
    for field, value in msgspec.structs.asdict(patch).items():
        if value is not msgspec.UNSET:
            setattr(addon, field, _clean_name(value) if field == "name" else value)
    await session.flush()
    org_config_changed(session, addon.org_id)
    return addon


async def deactivate_addon(session: AsyncSession, addon_id: UUID, service_id: UUID | None) -> None:
    addon = await get_addon(session, addon_id, service_id)
    if addon.active:
        addon.active = False
        await session.flush()
        org_config_changed(session, addon.org_id)


# --- frequency discounts -----------------------------------------------------------------------


async def get_frequency_discounts(session: AsyncSession) -> FrequencyDiscountsRead:
    rows = await session.execute(select(FrequencyDiscount.frequency, FrequencyDiscount.discount_bps))
    return FrequencyDiscountsRead.from_values({frequency: bps for frequency, bps in rows})


async def set_frequency_discounts(
    session: AsyncSession, org_id: UUID, values: FrequencyDiscountsUpdate
) -> FrequencyDiscountsRead:
    # An upsert, so two first-time PUTs racing each other cannot trip the unique key.
    rows = [{"org_id": org_id, "frequency": f, "discount_bps": getattr(values, f)} for f in FREQUENCIES]
    stmt = pg_insert(FrequencyDiscount).values(rows)
    await session.execute(
        stmt.on_conflict_do_update(
            constraint="uq_frequency_discount_org_id_frequency",
            set_={"discount_bps": stmt.excluded.discount_bps, "updated_at": func.now()},
        )
    )
    org_config_changed(session, org_id)
    return FrequencyDiscountsRead.from_values(msgspec.structs.asdict(values))


async def discount_for(session: AsyncSession, frequency: str) -> int:
    if frequency not in FREQUENCIES:
        return 0
    bps = await session.scalar(select(FrequencyDiscount.discount_bps).where(FrequencyDiscount.frequency == frequency))
    return int(bps or 0)


# --- quotes (also used by scheduling to price bookings) ----------------------------------------


class PricingOrg(Protocol):
    """What pricing reads of an organisation: an `OrgProfile` (or any row with these facts)."""

    @property
    def id(self) -> UUID: ...

    @property
    def currency(self) -> str: ...

    @property
    def tax_rate_bps(self) -> int: ...


@dataclass(slots=True)
class _Addon:
    """An add-on as the pricing engine reads it (`pricing.PricedAddon`), from the quote's row."""

    id: UUID
    name: str
    price_cents: int
    minutes: int


# The service as the pricing engine reads it (`pricing.PricedService`), plus whether it is offered.
_SERVICE_COLUMNS: tuple[Any, ...] = (
    Service.id,
    Service.name,
    Service.pricing_mode,
    Service.base_price_cents,
    Service.base_minutes,
    Service.price_per_bedroom_cents,
    Service.minutes_per_bedroom,
    Service.price_per_bathroom_cents,
    Service.minutes_per_bathroom,
    Service.price_per_100_sqft_cents,
    Service.minutes_per_100_sqft,
    Service.active,
)
_ADDON_COLUMNS: tuple[Any, ...] = (
    ServiceAddon.id.label("addon_id"),
    ServiceAddon.service_id.label("addon_service_id"),
    ServiceAddon.name.label("addon_name"),
    ServiceAddon.price_cents.label("addon_price_cents"),
    ServiceAddon.minutes.label("addon_minutes"),
    ServiceAddon.active.label("addon_active"),
)


def _quote_statement(with_addons: bool) -> Select[Any]:
    """One statement for everything a quote reads: the service's columns, the frequency's discount
    (a scalar subquery) and, one row each, the chosen add-ons (left-joined: none found is still
    the service's row). RLS scopes all three tables to the caller's organisation. Values are bound
    by name: the two shapes (with add-ons or without) compile once (lib.sql)."""
    discount = (
        select(FrequencyDiscount.discount_bps)
        .where(FrequencyDiscount.frequency == bindparam("frequency"))
        .scalar_subquery()
    )
    stmt: Select[Any] = select(*_SERVICE_COLUMNS, discount.label("discount_bps"))
    if with_addons:
        chosen = any_(bindparam("addon_ids", type_=ARRAY(PG_UUID(as_uuid=True))))
        stmt = stmt.add_columns(*_ADDON_COLUMNS).outerjoin(ServiceAddon, ServiceAddon.id == chosen)
    return stmt.where(Service.id == bindparam("service_id"))


_QUOTE = Shapes(_quote_statement)

# What a quote read, per organisation: (service, frequency, add-ons) -> the statement's rows.
# A catalogue change calls `org_config_changed`, so (db/org_cache.py) this node drops them at
# commit and the others on their next request's version; a quote then costs no round trip at all.
_QUOTE_ROWS: OrgCache[dict[tuple[Any, ...], Sequence[Any]]] = OrgCache()
_QUOTES_PER_ORG = 256


async def _quote_rows(session: AsyncSession, org_id: UUID, values: dict[str, Any], with_addons: bool) -> Sequence[Any]:
    if not on_request_path(org_id):  # a job: read the rows, never a copy only trusted for its age
        return await _QUOTE(with_addons).rows(session, values)
    key = (values["service_id"], values["frequency"], tuple(values["addon_ids"]))
    cached = _QUOTE_ROWS.get(org_id)
    if cached is not None and key in cached:
        return cached[key]
    token = _QUOTE_ROWS.token()
    rows = await _QUOTE(with_addons).rows(session, values)
    if rows:  # an unknown service stays a read: nothing to invalidate when it is created
        if cached is None:
            cached = {}
            _QUOTE_ROWS.put(org_id, cached, token)
        if len(cached) >= _QUOTES_PER_ORG:
            cached.pop(next(iter(cached)))
        cached[key] = rows
    return rows


def _chosen_addons(rows: Sequence[Any], service_id: UUID, addon_ids: tuple[UUID, ...]) -> list[_Addon]:
    """The chosen add-ons in the order given. Each must be active and offered with this service
    (its own or organisation-wide); anything else is a 400 naming the offending index."""
    if len(set(addon_ids)) != len(addon_ids):
        raise FieldError("addon_ids", "an add-on can be chosen only once")
    if not addon_ids:
        return []
    found = {row.addon_id: row for row in rows if row.addon_id is not None}
    chosen: list[_Addon] = []
    for index, addon_id in enumerate(addon_ids):
        row = found.get(addon_id)
        if row is None:
            raise FieldError(f"addon_ids[{index}]", f"unknown add-on {addon_id}")
        if row.addon_service_id not in (None, service_id):
            raise FieldError(f"addon_ids[{index}]", f"add-on {addon_id} is not offered with this service")
        if not row.addon_active:
            raise FieldError(f"addon_ids[{index}]", f"add-on {addon_id} is no longer offered")
        chosen.append(
            _Addon(id=row.addon_id, name=row.addon_name, price_cents=row.addon_price_cents, minutes=row.addon_minutes)
        )
    return chosen


async def quote_for(session: AsyncSession, org: PricingOrg | UUID, service_id: UUID, params: QuoteParams) -> Quote:
    """Price one visit of `service_id` with the organisation's currency, tax rate and frequency
    discount; `org` is its profile, or its id (then read here). 404 unknown service (or
    organisation); 409 /problems/service-inactive; 400 bad add-ons or parameters.
    One statement (`_quote_statement`), read as columns."""
    organization = await org_profile(session, org) if isinstance(org, UUID) else org
    values = {
        "service_id": service_id,
        "frequency": params.frequency,
        "addon_ids": list(dict.fromkeys(params.addon_ids)),
    }
    rows = await _quote_rows(session, organization.id, values, bool(params.addon_ids))
    if not rows:
        raise not_found("service")
    service = rows[0]
    if not service.active:
        raise Problem(
            409,
            "service-inactive",
            "The service is not offered",
            "This service has been deactivated and cannot be quoted or booked.",
            service_id=str(service_id),
        )
    addons = _chosen_addons(rows, service_id, params.addon_ids)
    discount_bps = int(service.discount_bps or 0) if params.frequency in FREQUENCIES else 0
    return quote(
        service,
        addons,
        params,
        params.frequency,
        tax_rate_bps=organization.tax_rate_bps,
        currency=organization.currency,
        discount_bps=discount_bps,
    )
