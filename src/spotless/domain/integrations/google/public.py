"""What other contexts may use of the Google Calendar integration."""

from spotless.domain.integrations.google.models import GcalCalendar, GcalConflict, GcalEvent

__all__ = ["GcalCalendar", "GcalConflict", "GcalEvent"]
