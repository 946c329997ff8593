"""Dates and instants a client may send, bounded in one place.

`Day` (a calendar date) and `Instant` (an ISO 8601 timestamp with an offset) replace `date` and
`datetime` in every request field and parameter. Outside [2000-01-01, 2100-12-31] a value answers
400 naming the field, before any handler does arithmetic on it (`date(9999, 12, 31) + 1 day` raised
OverflowError, a 500). Handlers still receive plain `date` and `datetime` objects.

How: msgspec has no bounds for dates, so `Day` and `Instant` are types msgspec does not know; it
asks Litestar's decoder hook, where `BoundsPlugin` registers the parsing and the bounds check. Their
`isinstance` means "a plain date/aware datetime inside the bounds", which is how msgspec and
Litestar accept the plain value the hook returns. The plugin also documents both in the OpenAPI.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.config.app import AppConfig
from litestar.openapi.spec import OpenAPIFormat, OpenAPIType, Schema
from litestar.plugins import InitPlugin, OpenAPISchemaPlugin

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition

EARLIEST = date(2000, 1, 1)
LATEST = date(2100, 12, 31)
_RANGE = f"between {EARLIEST.isoformat()} and {LATEST.isoformat()}"
_YEARS = r"^(20[0-9]{2}|2100)"  # EARLIEST.year .. LATEST.year


def day_in_bounds(value: object) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime) and EARLIEST <= value <= LATEST


def instant_in_bounds(value: object) -> bool:
    # Compared on the calendar date as written: converting 0001-01-01T00:00+01:00 to UTC overflows.
    return (
        isinstance(value, datetime)
        and value.utcoffset() is not None
        and EARLIEST <= value.replace(tzinfo=None).date() <= LATEST
    )


class _DayType(type):
    def __instancecheck__(cls, value: object) -> bool:
        return day_in_bounds(value)


class _InstantType(type):
    def __instancecheck__(cls, value: object) -> bool:
        return instant_in_bounds(value)


if TYPE_CHECKING:
    Day = date
    Instant = datetime
else:

    class Day(metaclass=_DayType):
        """A calendar date (YYYY-MM-DD) within the bounds; values are plain `date` objects."""

    class Instant(metaclass=_InstantType):
        """An ISO 8601 timestamp with an offset, within the bounds; values are aware `datetime`s."""


def parse_day(value: Any) -> date:
    if isinstance(value, str):
        try:
            value = msgspec.convert(value, date)
        except msgspec.ValidationError:
            raise ValueError("Expected a date as YYYY-MM-DD") from None
    if not isinstance(value, date) or isinstance(value, datetime):
        raise ValueError("Expected a date as YYYY-MM-DD")
    if not day_in_bounds(value):
        raise ValueError(f"The date must be {_RANGE}")
    return value


def parse_instant(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            value = msgspec.convert(value, datetime)
        except msgspec.ValidationError:
            raise ValueError("Expected an ISO 8601 timestamp with an offset, e.g. 2026-03-01T09:00:00-05:00") from None
    if not isinstance(value, datetime):
        raise ValueError("Expected an ISO 8601 timestamp with an offset, e.g. 2026-03-01T09:00:00-05:00")
    if value.utcoffset() is None:
        raise ValueError("The timestamp needs a UTC offset (e.g. Z or -05:00)")
    if not instant_in_bounds(value):
        raise ValueError(f"The timestamp must be {_RANGE}")
    return value


_DECODERS = {Day: parse_day, Instant: parse_instant}


def _is_bounded(target: Any) -> bool:
    return target is Day or target is Instant


def _decode(target: Any, value: Any) -> Any:
    return _DECODERS[target](value)


class BoundsPlugin(InitPlugin, OpenAPISchemaPlugin):
    """Registers the decoding of `Day` and `Instant` and their OpenAPI schema."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.type_decoders = [*(app_config.type_decoders or []), (_is_bounded, _decode)]
        return app_config

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return _is_bounded(value)

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        # JSON Schema cannot bound a date; the pattern says which years, the description says it all.
        if field_definition.annotation is Day:
            return Schema(
                type=OpenAPIType.STRING,
                format=OpenAPIFormat.DATE,
                pattern=_YEARS + r"-\d{2}-\d{2}$",
                description=f"A date {_RANGE}",
            )
        return Schema(
            type=OpenAPIType.STRING,
            format=OpenAPIFormat.DATE_TIME,
            pattern=_YEARS + r"-\d{2}-\d{2}T",
            description=f"ISO 8601 with an offset, {_RANGE}",
        )
