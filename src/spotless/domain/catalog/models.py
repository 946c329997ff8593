"""The organisation's catalogue: services, their add-ons, and discounts for recurring work.
Money is integer minor units of the organisation's currency; durations are whole minutes."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from spotless.db.base import TenantMixin, UUIDv7AuditBase, tenant_fk, tenant_key

PRICING_MODES = ("rooms", "square_feet")
FREQUENCIES = ("weekly", "biweekly", "monthly")


class Service(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "service"
    __table_args__ = (
        tenant_key("service"),
        UniqueConstraint("org_id", "name", name="uq_service_org_id_name"),
        CheckConstraint("pricing_mode IN ('rooms', 'square_feet')", name="pricing_mode_known"),
        CheckConstraint(
            "base_price_cents >= 0 AND price_per_bedroom_cents >= 0 AND price_per_bathroom_cents >= 0"
            " AND price_per_100_sqft_cents >= 0",
            name="prices_not_negative",
        ),
        CheckConstraint(
            "base_minutes >= 0 AND minutes_per_bedroom >= 0 AND minutes_per_bathroom >= 0"
            " AND minutes_per_100_sqft >= 0",
            name="minutes_not_negative",
        ),
    )

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    pricing_mode: Mapped[str] = mapped_column(String(16), default="rooms", server_default=text("'rooms'"))
    base_price_cents: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    base_minutes: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    price_per_bedroom_cents: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    minutes_per_bedroom: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    price_per_bathroom_cents: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    minutes_per_bathroom: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    price_per_100_sqft_cents: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    minutes_per_100_sqft: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class ServiceAddon(UUIDv7AuditBase, TenantMixin):
    """An extra (inside the oven, windows ...); `service_id` NULL means offered with every service."""

    __tablename__ = "service_addon"
    __table_args__ = (
        tenant_fk("service_id", "service", ondelete="CASCADE"),
        CheckConstraint("price_cents >= 0", name="price_not_negative"),
        CheckConstraint("minutes >= 0", name="minutes_not_negative"),
    )

    service_id: Mapped[UUID | None] = mapped_column(default=None, index=True)
    name: Mapped[str] = mapped_column(String(200))
    price_cents: Mapped[int] = mapped_column(Integer, default=0)
    minutes: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class FrequencyDiscount(UUIDv7AuditBase, TenantMixin):
    """Organisation-wide discount for recurring work, in basis points of the subtotal."""

    __tablename__ = "frequency_discount"
    __table_args__ = (
        UniqueConstraint("org_id", "frequency", name="uq_frequency_discount_org_id_frequency"),
        CheckConstraint("frequency IN ('weekly', 'biweekly', 'monthly')", name="frequency_known"),
        CheckConstraint("discount_bps BETWEEN 0 AND 10000", name="discount_range"),
    )

    frequency: Mapped[str] = mapped_column(String(16))
    discount_bps: Mapped[int] = mapped_column(Integer)
