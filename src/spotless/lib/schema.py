"""One vocabulary for request and response bodies: the Struct bases and the field types.

Naming: a resource's bodies are `XCreate` (POST), `XUpdate` (PATCH: every field `UNSET` by
default, so "not sent" differs from "set to null") and `XRead` (what is answered). Action bodies
name the action (`Login`, `BookingCancel`). Each context maps a model to its `XRead` in one place:
a `from_model` classmethod on the `XRead` (or a `to_read` function in its schemas module when the
mapping needs more than the row, e.g. the organisation's currency).

- `Input`: strict. Unknown fields are refused (a typo is an error, not silently ignored), and
  field errors are reported all at once in words (`lib.validation`).
- `Output`: what we send. Every field without a default is `required` in the OpenAPI document
  (`lib.openapi`), nullable where it can be null, so generated clients need no null checks.

Text types refuse NUL (PostgreSQL `text` cannot hold it): a 400 here rather than a driver error.
The regular expressions are exactly the keys of `lib.validation.FORMATS`, which words them.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

from spotless.lib.bounds import Day, Instant
from spotless.lib.pagination import Cursor, CursorPage, Limit, Offset


class Input(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every request body."""


class Output(msgspec.Struct, kw_only=True):
    """Base of every response body."""


NO_NUL = r"^[^\x00]*$"
EMAIL = r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$"
PHONE = r"^\+?[0-9 ().\-]{3,40}$"
CLOCK = r"^([01]\d|2[0-3]):[0-5]\d(:00)?$"

# --- text -------------------------------------------------------------------------------------
Text = Annotated[str, Meta(max_length=5000, pattern=NO_NUL)]
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=NO_NUL)]
ShortText = Annotated[str, Meta(max_length=100, pattern=NO_NUL)]
Notes = Annotated[str, Meta(max_length=5000, pattern=NO_NUL)]
Reason = Annotated[str, Meta(min_length=1, max_length=1000, pattern=NO_NUL)]
Label = Annotated[str, Meta(min_length=1, max_length=50, pattern=NO_NUL)]
Labels = Annotated[list[Label], Meta(max_length=30)]
Email = Annotated[str, Meta(max_length=254, pattern=EMAIL)]
Phone = Annotated[str, Meta(min_length=3, max_length=40, pattern=PHONE)]
Clock = Annotated[str, Meta(pattern=CLOCK, examples=["09:00"], description="HH:MM, organisation local time")]

# --- numbers ----------------------------------------------------------------------------------
# Caps keep every total (a quote with 100 rooms and 50 add-ons, a month of hours) far inside the
# 32-bit integer columns that store it.
Money = Annotated[int, Meta(ge=0, le=1_000_000, description="minor units of the organisation's currency")]
HourlyRate = Annotated[int, Meta(ge=0, le=10_000_000, description="per hour, minor units of the org currency")]
Minutes = Annotated[int, Meta(ge=0, le=24 * 60)]
Bps = Annotated[int, Meta(ge=0, le=10_000, description="basis points: 1000 = 10 %")]

# --- ids --------------------------------------------------------------------------------------
Ids = Annotated[list[UUID], Meta(max_length=50)]

__all__ = [
    "CLOCK",
    "EMAIL",
    "NO_NUL",
    "PHONE",
    "UNSET",
    "Bps",
    "Clock",
    "Cursor",
    "CursorPage",
    "Day",
    "Email",
    "HourlyRate",
    "Ids",
    "Input",
    "Instant",
    "Label",
    "Labels",
    "Limit",
    "Minutes",
    "Money",
    "Name",
    "Notes",
    "Offset",
    "Output",
    "Phone",
    "Reason",
    "ShortText",
    "Text",
    "UnsetType",
]
