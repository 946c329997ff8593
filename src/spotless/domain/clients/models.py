"""Clients of a cleaning company and the places they want cleaned."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, CITEXT
from sqlalchemy.orm import Mapped, mapped_column

from spotless.db.base import TenantMixin, UUIDv7AuditBase, tenant_fk, tenant_key


class Client(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "client"
    __table_args__ = (
        tenant_key("client"),
        Index("ix_client_org_id_name_id", "org_id", "name", "id"),  # keyset order of the list
        Index("ix_client_tags", "tags", postgresql_using="gin"),
    )

    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(CITEXT(), default=None)
    phone: Mapped[str | None] = mapped_column(String(40), default=None)
    notes: Mapped[str | None] = mapped_column(Text, default=None)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default=text("'{}'"))
    # A blocked client keeps their history but cannot be booked again (bookings answer 409).
    blocked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    blocked_reason: Mapped[str | None] = mapped_column(Text, default=None)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class ClientAddress(UUIDv7AuditBase, TenantMixin):
    __tablename__ = "client_address"
    __table_args__ = (
        tenant_key("client_address"),
        tenant_fk("client_id", "client", ondelete="CASCADE"),
        CheckConstraint("bedrooms IS NULL OR bedrooms >= 0", name="bedrooms_not_negative"),
        CheckConstraint("bathrooms IS NULL OR bathrooms >= 0", name="bathrooms_not_negative"),
        CheckConstraint("square_feet IS NULL OR square_feet >= 0", name="square_feet_not_negative"),
    )

    client_id: Mapped[UUID] = mapped_column(index=True)
    label: Mapped[str | None] = mapped_column(String(100), default=None)
    line1: Mapped[str] = mapped_column(String(200))
    line2: Mapped[str | None] = mapped_column(String(200), default=None)
    city: Mapped[str] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100), default=None)
    postal_code: Mapped[str | None] = mapped_column(String(20), default=None)
    country: Mapped[str] = mapped_column(String(2))
    notes: Mapped[str | None] = mapped_column(Text, default=None)
    # The home's size: defaults for a booking's pricing parameters at this address.
    bedrooms: Mapped[int | None] = mapped_column(Integer, default=None)
    bathrooms: Mapped[int | None] = mapped_column(Integer, default=None)
    square_feet: Mapped[int | None] = mapped_column(Integer, default=None)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
