"""What the operational endpoints answer (liveness, readiness, server status)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from spotless.lib.schema import Output

# A fixed vocabulary: what went wrong in detail goes to the log, never to the caller.
Status = Literal["ok", "unreachable", "timeout", "mismatch", "stale", "missing", "unknown"]


class Health(Output):
    status: str


class ServerStatus(Output):
    status: str
    server_time: datetime
    api_version: str


class Check(Output):
    name: str
    ok: bool
    status: Status
    gating: bool


class Readiness(Output):
    status: Literal["ready", "unavailable"]
    checks: list[Check]

    @property
    def ready(self) -> bool:
        return self.status == "ready"
