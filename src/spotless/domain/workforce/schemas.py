"""Request and response bodies for workers, their hours and time off, and teams, and the one
mapping of each model (or privacy-aware row) to its `XRead`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from msgspec import Meta

from spotless.domain.workforce.hours import format_clock
from spotless.domain.workforce.models import Team, TimeOff, WorkingHours
from spotless.lib.schema import (
    NO_NUL,
    UNSET,
    Clock,
    Email,
    HourlyRate,
    Input,
    Instant,
    Labels,
    Name,
    Output,
    Phone,
    UnsetType,
)

# Shapes only this context has (NUL refused, like the shared types).
TeamName = Annotated[str, Meta(min_length=1, max_length=100, pattern=NO_NUL)]
TeamWorkerIds = Annotated[list[UUID], Meta(max_length=100)]
# Shorter than the shared `Reason` and may be empty: time off needs no explanation.
TimeOffReason = Annotated[str, Meta(max_length=500, pattern=NO_NUL)]
Weekday = Annotated[int, Meta(description="0 = Monday .. 6 = Sunday")]


class WorkerCreate(Input):
    name: Name
    # The worker's login: a member of this organisation with the `worker` role.
    user_id: UUID | None = None
    phone: Phone | None = None
    email: Email | None = None
    skills: Labels = msgspec.field(default_factory=list)
    hourly_rate_cents: HourlyRate | None = None
    active: bool = True


class WorkerUpdate(Input):
    name: Name | UnsetType = UNSET
    user_id: UUID | UnsetType | None = UNSET
    phone: Phone | UnsetType | None = UNSET
    email: Email | UnsetType | None = UNSET
    skills: Labels | UnsetType = UNSET
    hourly_rate_cents: HourlyRate | UnsetType | None = UNSET
    active: bool | UnsetType = UNSET


_CONTACT = "Present for the worker themselves and holders of workers.contact.view, absent otherwise; null: not set."
_PAY = "Present for the worker themselves and holders of workers.pay.view, absent otherwise; null: not set."
_REASON = "Present for the worker themselves and holders of workers.contact.view, absent otherwise; null: none given."


class WorkerRead(Output, kw_only=True):  # kw_only again: mypy reads it per class
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

    @classmethod
    def from_view(cls, row: Any, currency: str) -> WorkerRead:
        """From a row of the privacy-aware worker view (`services.read_worker`/`list_worker_views`):
        groups the query did not select (`contact_shown`, `pay_shown` false) are left out."""
        return cls(
            id=row.id,
            user_id=row.user_id,
            name=row.name,
            phone=row.phone if row.contact_shown else UNSET,
            email=row.email if row.contact_shown else UNSET,
            skills=list(row.skills),
            hourly_rate_cents=row.hourly_rate_cents if row.pay_shown else UNSET,
            currency=currency,
            active=row.active,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class HoursItem(Input):
    """One interval of the weekly template, as sent."""

    weekday: Weekday
    start: Clock
    end: Clock


class WeeklyHoursUpdate(Input):
    hours: Annotated[list[HoursItem], Meta(max_length=70)]


class HoursItemRead(Output):
    weekday: Weekday
    start: Clock
    end: Clock


class WeeklyHoursRead(Output):
    worker_id: UUID
    timezone: str
    hours: list[HoursItemRead]

    @classmethod
    def from_model(cls, worker_id: UUID, timezone: str, rows: Sequence[WorkingHours]) -> WeeklyHoursRead:
        return cls(
            worker_id=worker_id,
            timezone=timezone,
            hours=[
                HoursItemRead(weekday=r.weekday, start=format_clock(r.start_time), end=format_clock(r.end_time))
                for r in rows
            ],
        )


class TimeOffCreate(Input):
    starts_at: Instant
    ends_at: Instant
    reason: TimeOffReason | None = None


class TimeOffRead(Output, kw_only=True):
    """A period of time off. `reason` is present only for the worker themselves and holders of
    `workers.contact.view` (absent: not yours to see; null: none given)."""

    id: UUID
    worker_id: UUID
    starts_at: datetime
    ends_at: datetime
    reason: Annotated[str | UnsetType | None, Meta(description=_REASON)] = UNSET
    created_at: datetime

    @classmethod
    def from_model(cls, entry: TimeOff | Any, reason_shown: bool = True) -> TimeOffRead:
        """From a `TimeOff` or a row of `services.list_time_off` (whose reason is NULL unless shown)."""
        return cls(
            id=entry.id,
            worker_id=entry.worker_id,
            starts_at=entry.starts_at,
            ends_at=entry.ends_at,
            reason=entry.reason if reason_shown else UNSET,
            created_at=entry.created_at,
        )


class TeamCreate(Input):
    name: TeamName
    worker_ids: TeamWorkerIds = msgspec.field(default_factory=list)


class TeamUpdate(Input):
    name: TeamName | UnsetType = UNSET
    # Replaces the membership when present.
    worker_ids: TeamWorkerIds | UnsetType = UNSET


class TeamMemberAdd(Input):
    worker_id: UUID


class TeamRead(Output):
    id: UUID
    name: str
    worker_ids: list[UUID]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, team: Team, worker_ids: list[UUID]) -> TeamRead:
        return cls(
            id=team.id, name=team.name, worker_ids=worker_ids, created_at=team.created_at, updated_at=team.updated_at
        )
