"""/v1/integrations/google: the watch-channel notification endpoint Google calls, and the
conflicts list for dispatch. (Connecting and disconnecting are the integrations core's routes.)"""

from __future__ import annotations

from typing import Any

from advanced_alchemy.service.pagination import OffsetPagination
from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.domain.integrations.google import conflicts
from spotless.domain.integrations.google.channels import verify_notification
from spotless.domain.integrations.google.schemas import CalendarConflictRead, NotificationAck
from spotless.lib.errors import Problem, problems
from spotless.lib.inbox import receive
from spotless.lib.schema import Limit, Offset

INBOX_SOURCE = "google_calendar"
# Google posts from its own addresses, in bursts; what protects the route is the channel token
# (a forged notification costs one indexed look-up and a 401 and stores nothing).
PUBLIC_WEBHOOK = {"public": True, "rate_limit": "exempt"}
RESOURCE_STATES = frozenset({"sync", "exists", "not_exists"})


class GoogleCalendarController(Controller):
    path = "/v1/integrations/google"
    tags = ["integrations"]

    @post(
        "/notifications",
        operation_id="receiveGoogleCalendarNotification",
        summary="Google Calendar watch-channel notification (empty body; X-Goog-Channel-* headers): the channel "
        "token is verified, the notification stored once and that calendar's incremental sync queued",
        opt=PUBLIC_WEBHOOK,
        status_code=200,
        responses={
            200: ResponseSpec(
                data_container=NotificationAck, description="Stored, a duplicate, or a channel we no longer keep"
            ),
            **problems(401),
        },
    )
    async def receive_notification(
        self, request: Request[Any, Any, Any], db_session: AsyncSession
    ) -> Response[NotificationAck]:
        headers = request.headers
        channel_id = headers.get("x-goog-channel-id", "")
        state = headers.get("x-goog-resource-state", "")
        owner = await verify_notification(db_session, channel_id, headers.get("x-goog-channel-token"))
        if owner is True:
            raise Problem(
                401, "invalid-channel-token", "Not a notification of ours", "The channel token does not match."
            )
        if owner is False:
            # A channel we no longer keep (replaced, or from before a disconnect): 200, so Google
            # stops retrying it; it expires by itself.
            return Response(NotificationAck(received=False), status_code=200)
        if state not in RESOURCE_STATES:
            return Response(NotificationAck(received=False), status_code=200)
        if state == "sync":
            return Response(NotificationAck(received=True), status_code=200)  # the handshake of a new channel
        number = headers.get("x-goog-message-number", "")[:32]
        result = await receive(
            db_session,
            INBOX_SOURCE,
            f"{channel_id}:{number}",
            {
                "channel_id": channel_id,
                "resource_state": state,
                "message_number": number,
                "org_id": str(owner.org_id),
                "calendar_row_id": str(owner.calendar_row_id),
            },
            event_type=state,
        )
        return Response(NotificationAck(received=True, duplicate=result.duplicate), status_code=200)

    @get(
        "/conflicts",
        operation_id="listGoogleCalendarConflicts",
        summary="Visits that busy time synced from their cleaner's own calendar now overlaps (times only), for dispatch",
        opt={"permission": "bookings.assign"},
    )
    async def list_conflicts(
        self, db_session: AsyncSession, limit: Limit = 50, offset: Offset = 0
    ) -> OffsetPagination[CalendarConflictRead]:
        return await conflicts.list_conflicts(db_session, limit=limit, offset=offset)
