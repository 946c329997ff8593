"""What other contexts may use of scheduling. Today nothing but its events (`events.py`): other
contexts react to bookings through subscribers, never by calling in."""

__all__: list[str] = []
