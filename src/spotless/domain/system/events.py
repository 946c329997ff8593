"""A probe event for smoke checks and tests: proves emit -> outbox -> broker -> every subscriber,
and that one subscriber failing (listed in `failing`) dead-letters alone."""

from __future__ import annotations

from spotless.lib.events import Event


class Probed(Event, frozen=True, kw_only=True):
    marker: str
    failing: frozenset[str] = frozenset()
