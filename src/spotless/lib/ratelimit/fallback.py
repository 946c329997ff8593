"""Node-local GCRA, used while Redis is unavailable. Same arithmetic as gcra.lua, on this process'
monotonic clock; quotas are per process while it is in use (documented in the package docstring)."""

from __future__ import annotations

import time
from collections.abc import Callable

# (allowed, remaining, retry_after_us, reset_after_us): the shape gcra.lua returns.
Outcome = tuple[bool, int, int, int]


def gcra(tat: int | None, now: int, interval: int, burst: int, cost: int = 1) -> tuple[Outcome, int | None]:
    """One GCRA step in microseconds. Returns the outcome and the new TAT (None when refused)."""
    current = now if tat is None or tat < now else tat
    new_tat = current + interval * cost
    allow_at = new_tat - interval * burst
    if now < allow_at:
        return (False, 0, allow_at - now, current - now), None
    return (True, (now - allow_at) // interval, 0, new_tat - now), new_tat


class MemoryGCRA:
    """TATs in a dict. An entry whose TAT has passed holds a full quota, exactly like no entry, so
    cleaning it out (every RATE_LIMIT_CLEANUP_MINUTES, or early when the dict grows past
    `max_keys`) changes no decision."""

    def __init__(
        self,
        cleanup_seconds: float,
        *,
        max_keys: int = 200_000,
        clock_us: Callable[[], int] = lambda: time.monotonic_ns() // 1000,
    ) -> None:
        self._tat: dict[str, int] = {}
        self._cleanup_us = max(1, int(cleanup_seconds * 1_000_000))
        self._max_keys = max_keys
        self._clock_us = clock_us
        self._next_cleanup = clock_us() + self._cleanup_us

    def __len__(self) -> int:
        return len(self._tat)

    def hit(self, key: str, interval: int, burst: int, cost: int = 1) -> Outcome:
        now = self._clock_us()
        if now >= self._next_cleanup or len(self._tat) > self._max_keys:
            self.cleanup(now)
        outcome, new_tat = gcra(self._tat.get(key), now, interval, burst, cost)
        if new_tat is not None:
            self._tat[key] = new_tat
        return outcome

    def cleanup(self, now: int | None = None) -> int:
        """Drop entries that no longer limit anyone; returns how many were dropped."""
        now = self._clock_us() if now is None else now
        before = len(self._tat)
        self._tat = {key: tat for key, tat in self._tat.items() if tat > now}
        if len(self._tat) > self._max_keys:
            # A flood of distinct callers: forgetting the oldest half errs towards admitting.
            keep = list(self._tat.items())[len(self._tat) // 2 :]
            self._tat = dict(keep)
        self._next_cleanup = now + self._cleanup_us
        return before - len(self._tat)
