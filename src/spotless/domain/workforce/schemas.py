"""Request and response bodies for workers, their hours and time off, and teams."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

from spotless.lib.bounds import Instant

# Postgres text cannot hold NUL: refuse it as a 400 here rather than fail in the driver.
TEXT = r"^[^\x00]*$"
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=TEXT)]
Email = Annotated[str, Meta(max_length=254, pattern=r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$")]
Phone = Annotated[str, Meta(min_length=3, max_length=40, pattern=r"^\+?[0-9 ().\-]{3,40}$")]
Skill = Annotated[str, Meta(min_length=1, max_length=50, pattern=TEXT)]
Skills = Annotated[list[Skill], Meta(max_length=30)]
RateCents = Annotated[int, Meta(ge=0, le=10_000_000, description="per hour, minor units of the org currency")]
Clock = Annotated[str, Meta(pattern=r"^\d{2}:\d{2}(:\d{2})?$", description="HH:MM, organisation local time")]
Aware = Instant


class WorkerCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name
    # The worker's login: a member of this organisation with the `worker` role.
    user_id: UUID | None = None
    phone: Phone | None = None
    email: Email | None = None
    skills: Skills = msgspec.field(default_factory=list)
    hourly_rate_cents: RateCents | None = None
    active: bool = True


class WorkerUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name | UnsetType = UNSET
    user_id: UUID | UnsetType | None = UNSET
    phone: Phone | UnsetType | None = UNSET
    email: Email | UnsetType | None = UNSET
    skills: Skills | UnsetType = UNSET
    hourly_rate_cents: RateCents | UnsetType | None = UNSET
    active: bool | UnsetType = UNSET


_CONTACT = "Present for the worker themselves and holders of workers.contact.view, absent otherwise; null: not set."
_PAY = "Present for the worker themselves and holders of workers.pay.view, absent otherwise; null: not set."
_REASON = "Present for the worker themselves and holders of workers.contact.view, absent otherwise; null: none given."


class WorkerRead(msgspec.Struct, kw_only=True):
    """A worker profile. `phone` and `email` are present only for the worker themselves and holders
    of `workers.contact.view`, `hourly_rate_cents` only for the worker and holders of
    `workers.pay.view`; absent means "not yours to see", null means "not set"."""

    id: UUID
    user_id: UUID | None
    name: str
    phone: Annotated[str | UnsetType | None, Meta(description=_CONTACT)] = UNSET
    email: Annotated[str | UnsetType | None, Meta(description=_CONTACT)] = UNSET
    skills: list[str]
    hourly_rate_cents: Annotated[int | UnsetType | None, Meta(description=_PAY)] = UNSET
    currency: str
    active: bool
    created_at: datetime
    updated_at: datetime


class HoursItem(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    weekday: Annotated[int, Meta(description="0 = Monday .. 6 = Sunday")]
    start: Clock
    end: Clock


class WeeklyHoursIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    hours: Annotated[list[HoursItem], Meta(max_length=70)]


class WeeklyHoursRead(msgspec.Struct, kw_only=True):
    worker_id: UUID
    timezone: str
    hours: list[HoursItem]


class TimeOffCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    starts_at: Aware
    ends_at: Aware
    reason: Annotated[str, Meta(max_length=500, pattern=TEXT)] | None = None


class TimeOffRead(msgspec.Struct, kw_only=True):
    """A period of time off. `reason` is present only for the worker themselves and holders of
    `workers.contact.view` (absent: not yours to see; null: none given)."""

    id: UUID
    worker_id: UUID
    starts_at: datetime
    ends_at: datetime
    reason: Annotated[str | UnsetType | None, Meta(description=_REASON)] = UNSET
    created_at: datetime


class TeamCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=100, pattern=TEXT)]
    worker_ids: Annotated[list[UUID], Meta(max_length=100)] = msgspec.field(default_factory=list)


class TeamUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=100, pattern=TEXT)] | UnsetType = UNSET
    # Replaces the membership when present.
    worker_ids: Annotated[list[UUID], Meta(max_length=100)] | UnsetType = UNSET


class TeamMemberAdd(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    worker_id: UUID


class TeamRead(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    worker_ids: list[UUID]
    created_at: datetime
    updated_at: datetime
