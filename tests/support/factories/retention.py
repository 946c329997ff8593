"""Retention routes' request bodies for the route matrices (the client erasure reuses `client_id`)."""

from __future__ import annotations

from tests.support.tenancy import REQUEST_BODIES

REQUEST_BODIES[("PUT", "/v1/admin/retention")] = {"export_days": 30}
