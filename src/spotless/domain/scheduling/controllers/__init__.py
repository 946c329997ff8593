"""/v1/bookings, /v1/availability, /v1/series, /v1/worker/jobs and /v1/scheduling/settings: one
module per resource. Thin: parse, call the service, shape the answer. Instants are answered in
the organisation's zone."""

from spotless.domain.scheduling.controllers.availability import AvailabilityController
from spotless.domain.scheduling.controllers.bookings import BookingController
from spotless.domain.scheduling.controllers.series import SeriesController
from spotless.domain.scheduling.controllers.settings import SchedulingSettingsController
from spotless.domain.scheduling.controllers.worker_jobs import WorkerJobsController

__all__ = [
    "AvailabilityController",
    "BookingController",
    "SchedulingSettingsController",
    "SeriesController",
    "WorkerJobsController",
]
