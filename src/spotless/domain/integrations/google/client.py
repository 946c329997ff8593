"""The Google Calendar API v3 calls Spotless makes (httpx, async), typed with msgspec.

Every call has a timeout. Rate answers (429, or 403 with reason rateLimitExceeded /
userRateLimitExceeded / quotaExceeded) are retried here a few times, waiting Retry-After or an
exponential backoff with jitter; past `max_rate_retries` they raise `RateLimited` carrying the wait,
so the job gives up for now without losing anything (the sync cursor only moves after a complete
pass). 410 on a list raises `SyncTokenGone` (the caller wipes and runs a full sync). Only rate
answers and connection errors are retried: an insert is safe to retry because we choose the event
id (a replay answers 409 duplicate, which the caller treats as "already there")."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import msgspec

logger = logging.getLogger("spotless.integrations.google")

RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})
MAX_BACKOFF_SECONDS = 32.0


class GoogleApiError(Exception):
    def __init__(self, status: int, reason: str | None, message: str) -> None:
        super().__init__(f"Google Calendar answered {status} {reason or ''}: {message}".strip())
        self.status = status
        self.reason = reason


class NotFound(GoogleApiError):
    pass


class Duplicate(GoogleApiError):
    """An insert with an id that exists already (a replay of ours)."""


class Gone(GoogleApiError):
    """410: a sync token Google no longer accepts, or an event already deleted."""


class SyncTokenGone(Gone):
    pass


class Unauthorized(GoogleApiError):
    pass


class RateLimited(GoogleApiError):
    def __init__(self, status: int, reason: str | None, message: str, retry_after: float) -> None:
        super().__init__(status, reason, message)
        self.retry_after = retry_after


class EventTime(msgspec.Struct, omit_defaults=True):
    dateTime: str | None = None
    date: str | None = None
    timeZone: str | None = None


class ExtendedProperties(msgspec.Struct, omit_defaults=True):
    private: dict[str, str] = {}
    shared: dict[str, str] = {}


class GoogleEvent(msgspec.Struct, omit_defaults=True):
    """What we read of an event. Titles and descriptions are deliberately not decoded: private
    events' contents never enter our process beyond the HTTP buffer."""

    id: str
    status: str = "confirmed"
    etag: str | None = None
    start: EventTime | None = None
    end: EventTime | None = None
    transparency: str | None = None
    extendedProperties: ExtendedProperties | None = None

    @property
    def private(self) -> dict[str, str]:
        return self.extendedProperties.private if self.extendedProperties else {}


class EventsPage(msgspec.Struct):
    items: list[GoogleEvent] = []
    nextPageToken: str | None = None
    nextSyncToken: str | None = None


class Channel(msgspec.Struct):
    id: str
    resourceId: str
    expiration: str | None = None


class BusyRange(msgspec.Struct):
    start: str
    end: str


class _FreeBusyCalendar(msgspec.Struct):
    busy: list[BusyRange] = []


class _FreeBusy(msgspec.Struct):
    calendars: dict[str, _FreeBusyCalendar] = {}


class _ErrorItem(msgspec.Struct):
    reason: str | None = None


class _ErrorBody(msgspec.Struct):
    code: int = 0
    message: str = ""
    errors: list[_ErrorItem] = []


class _Error(msgspec.Struct):
    error: _ErrorBody | None = None


def _rfc3339(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


class GoogleCalendarClient:
    """One connection's view of the API: `access_token` is the caller's (refreshed by the core)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        access_token: str,
        *,
        max_rate_retries: int = 3,
        backoff_base_seconds: float = 1.0,
    ) -> None:
        self.http = http
        self.base = base_url.rstrip("/") + "/calendar/v3"
        self.access_token = access_token
        self.max_rate_retries = max_rate_retries
        self.backoff_base = backoff_base_seconds

    async def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None) -> bytes:
        attempt = 0
        while True:
            try:
                response = await self.http.request(
                    method,
                    self.base + path,
                    params=params,
                    content=msgspec.json.encode(json) if json is not None else None,
                    headers={
                        "authorization": f"Bearer {self.access_token}",
                        **({"content-type": "application/json"} if json is not None else {}),
                    },
                )
            except httpx.TransportError as exc:
                if attempt >= self.max_rate_retries:
                    raise
                attempt += 1
                await asyncio.sleep(self._backoff(attempt, None))
                logger.warning("gcal transport error (%s), retry %d", type(exc).__name__, attempt)
                continue
            if response.status_code < 400:
                return response.content
            error = self._error(response)
            if isinstance(error, RateLimited):
                if attempt >= self.max_rate_retries:
                    raise error
                attempt += 1
                wait = self._backoff(attempt, error.retry_after)
                logger.info("gcal rate limited (%s), waiting %.1fs (retry %d)", error.status, wait, attempt)
                await asyncio.sleep(wait)
                continue
            raise error

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after:
            return min(retry_after, MAX_BACKOFF_SECONDS)
        exp = min(self.backoff_base * (2 ** (attempt - 1)), MAX_BACKOFF_SECONDS)
        return exp * (0.5 + random.random() / 2)

    def _error(self, response: httpx.Response) -> GoogleApiError:
        try:
            body = msgspec.json.decode(response.content, type=_Error).error or _ErrorBody()
        except msgspec.DecodeError:
            body = _ErrorBody(message=response.text[:200])
        reason = body.errors[0].reason if body.errors else None
        status = response.status_code
        if status == 429 or (status == 403 and reason in RATE_REASONS):
            header = response.headers.get("retry-after")
            retry_after = float(header) if header and header.isdigit() else 0.0
            return RateLimited(status, reason, body.message, retry_after)
        kind: type[GoogleApiError] = {404: NotFound, 409: Duplicate, 410: Gone, 401: Unauthorized}.get(
            status, GoogleApiError
        )
        return kind(status, reason, body.message)

    @staticmethod
    def _cal(calendar_id: str) -> str:
        return "/calendars/" + quote(calendar_id, safe="")

    # --- events ----------------------------------------------------------------------------------

    async def list_events(
        self,
        calendar_id: str,
        *,
        sync_token: str | None = None,
        page_token: str | None = None,
        time_min: datetime | None = None,
        time_max: datetime | None = None,
        max_results: int = 250,
    ) -> EventsPage:
        params: dict[str, Any] = {"maxResults": max_results, "singleEvents": "true"}
        if page_token:
            params["pageToken"] = page_token
        if sync_token:
            # Google refuses any other filter with a sync token.
            params["syncToken"] = sync_token
        else:
            if time_min:
                params["timeMin"] = _rfc3339(time_min)
            if time_max:
                params["timeMax"] = _rfc3339(time_max)
        try:
            raw = await self._call("GET", self._cal(calendar_id) + "/events", params=params)
        except Gone as exc:
            raise SyncTokenGone(exc.status, exc.reason, str(exc)) from None
        return msgspec.json.decode(raw, type=EventsPage)

    async def get_event(self, calendar_id: str, event_id: str) -> GoogleEvent:
        raw = await self._call("GET", f"{self._cal(calendar_id)}/events/{quote(event_id, safe='')}")
        return msgspec.json.decode(raw, type=GoogleEvent)

    async def insert_event(self, calendar_id: str, body: dict[str, Any]) -> GoogleEvent:
        raw = await self._call("POST", self._cal(calendar_id) + "/events", json=body)
        return msgspec.json.decode(raw, type=GoogleEvent)

    async def patch_event(self, calendar_id: str, event_id: str, body: dict[str, Any]) -> GoogleEvent:
        raw = await self._call("PATCH", f"{self._cal(calendar_id)}/events/{quote(event_id, safe='')}", json=body)
        return msgspec.json.decode(raw, type=GoogleEvent)

    async def delete_event(self, calendar_id: str, event_id: str) -> None:
        """Deletes; an event already gone (404, 410) counts as deleted."""
        try:
            await self._call("DELETE", f"{self._cal(calendar_id)}/events/{quote(event_id, safe='')}")
        except (NotFound, Gone):
            return

    # --- push notifications ----------------------------------------------------------------------

    async def watch(
        self, calendar_id: str, *, channel_id: str, address: str, token: str, expiration: datetime
    ) -> Channel:
        body = {
            "id": channel_id,
            "type": "web_hook",
            "address": address,
            "token": token,
            "expiration": int(expiration.timestamp() * 1000),
        }
        raw = await self._call("POST", self._cal(calendar_id) + "/events/watch", json=body)
        return msgspec.json.decode(raw, type=Channel)

    async def stop_channel(self, channel_id: str, resource_id: str) -> None:
        """Stops a channel; one Google no longer knows (expired, stopped) counts as stopped."""
        try:
            await self._call("POST", "/channels/stop", json={"id": channel_id, "resourceId": resource_id})
        except NotFound:
            return

    # --- free/busy -------------------------------------------------------------------------------

    async def freebusy(
        self, calendar_ids: list[str], time_min: datetime, time_max: datetime, time_zone: str = "UTC"
    ) -> dict[str, list[tuple[datetime, datetime]]]:
        body = {
            "timeMin": _rfc3339(time_min),
            "timeMax": _rfc3339(time_max),
            "timeZone": time_zone,
            "items": [{"id": c} for c in calendar_ids[:50]],
            "calendarExpansionMax": min(len(calendar_ids), 50),
        }
        raw = await self._call("POST", "/freeBusy", json=body)
        found = msgspec.json.decode(raw, type=_FreeBusy)
        return {cid: [(_parse(b.start), _parse(b.end)) for b in cal.busy] for cid, cal in found.calendars.items()}


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@asynccontextmanager
async def http_client(timeout_seconds: float = 10.0) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client for one job run: a timeout on connect, read and write."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout_seconds), follow_redirects=False) as http:
        yield http
