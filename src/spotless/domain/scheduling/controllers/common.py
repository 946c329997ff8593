"""What the scheduling controllers share: permissions, the `ctx` dependency, the idempotency header."""

from __future__ import annotations

from typing import Annotated, Any

from litestar.di import Provide
from litestar.params import Parameter

from spotless.domain.scheduling.context import provide_scheduling_context

VIEW = {"permission": "bookings.view"}
EDIT = {"permission": "bookings.edit"}
ASSIGN = {"permission": "bookings.assign"}
STATUS = {"permission": "bookings.status"}

# `ctx: OrgContext` for a controller's handlers: the organisation (app-level `org`) with its
# scheduling settings, read once per request and only by the handlers that declare it.
CONTEXT: dict[str, Any] = {"ctx": Provide(provide_scheduling_context)}

# Read by spotless.lib.idempotency; declared so the API docs show it.
IdempotencyKey = Annotated[
    str | None,
    Parameter(header="Idempotency-Key", required=False, description="Retry-safe creation: same key + body replays"),
]
