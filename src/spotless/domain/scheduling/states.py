"""The booking life cycle. Pure: which moves are legal, and which states hold a worker's time."""

from __future__ import annotations

from typing import Literal

BookingStatus = Literal["pending", "confirmed", "in_progress", "completed", "cancelled", "no_show"]
STATUSES: tuple[BookingStatus, ...] = ("pending", "confirmed", "in_progress", "completed", "cancelled", "no_show")

# Bookings in these states hold their workers' time: their assignment rows are `active` and the
# exclusion constraint compares them. Finished, cancelled and no-show bookings release the time
# (so a cleaner who finishes early can take another job, and history does not bloat the index).
HOLDS_TIME: frozenset[str] = frozenset({"pending", "confirmed", "in_progress"})

TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"confirmed", "cancelled"}),
    # A manager may close a confirmed job the cleaner did not track in the app.
    "confirmed": frozenset({"in_progress", "cancelled", "no_show", "completed"}),
    "in_progress": frozenset({"completed"}),
    "completed": frozenset(),
    "cancelled": frozenset(),
    "no_show": frozenset(),
}

# Moving a booking in time or changing who does it only makes sense before work starts.
EDITABLE: frozenset[str] = frozenset({"pending", "confirmed"})


def can_move(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


def holds_time(status: str) -> bool:
    return status in HOLDS_TIME
