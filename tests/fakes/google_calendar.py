"""A small in-memory fake of the Google Calendar API v3 endpoints Spotless calls, served on loopback
by uvicorn in a thread of the test process (the mechanism of tests/support/fake_stripe.py), so tests
reach into its state directly and workers started as child processes call it over TCP.

    fake = FakeGoogleCalendar().start()      # or the `fake_gcal` fixture below
    env = {"GOOGLE_API_BASE_URL": fake.base_url}

What it honours, as Google does (external-services.md section 6):
- events.insert (a client-chosen `id` is kept; a second insert of it answers 409 duplicate),
  events.get, events.patch (a new `etag` per change), events.delete (the event stays, `status:
  cancelled`; deleting it again answers 410 deleted);
- events.list: pages of `maxResults` with `nextPageToken`, `nextSyncToken` ONLY on the last page;
  with `syncToken` only what changed since (cancelled ones included) and no other filter allowed
  (400); an invalidated token answers 410 Gone (`invalidate_sync_tokens`);
- events.watch (channel id <= 64 chars, type web_hook, an address, a token, an expiration) and
  channels.stop (404 for an unknown channel); freeBusy.query (opaque, not-cancelled events);
- `Authorization: Bearer ...` is required (401 otherwise); with `accepted_tokens` set, only those;
  the calendar id `primary` is the token's account's own calendar (`primary[token]`, else the token).

Controls: `rate_limit(times, status=429|403, retry_after=)`, `add_event()` / `edit_event()` /
`remove_event()` as the calendar's owner would in Google, `invalidate_sync_tokens()`,
`notification_headers()` (what Google sends to a watch channel's address); every request is in
`requests`.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

import pytest
import uvicorn

from tests.support.processes import free_port

Json = dict[str, Any]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

PREFIX = "/calendar/v3"
_BASE32HEX = set("0123456789abcdefghijklmnopqrstuv")


class GoogleFailure(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"domain": "global" if status != 403 else "usageLimits", "reason": reason}],
            }
        }


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 0


@dataclass
class Fault:
    status: int
    times: int
    retry_after: int | None
    path: str | None


@dataclass
class Channel:
    id: str
    resource_id: str
    calendar_id: str
    address: str
    token: str | None
    expiration: int
    stopped: bool = False


@dataclass
class Calendar:
    id: str
    events: dict[str, Json] = field(default_factory=dict)
    seq: int = 0
    # sync token -> the sequence number it was issued at; removed tokens answer 410
    tokens: dict[str, int] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _instant(when: Json) -> datetime:
    if "dateTime" in when:
        return datetime.fromisoformat(when["dateTime"].replace("Z", "+00:00"))
    return datetime.fromisoformat(when["date"]).replace(tzinfo=UTC)


class FakeGoogleCalendar:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeGoogleCalendar:
        self.port = free_port()
        config = uvicorn.Config(
            self,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-google-calendar", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake Google Calendar server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)

    def reset(self) -> None:
        with self.lock:
            self.calendars: dict[str, Calendar] = {}
            self.channels: dict[str, Channel] = {}
            self.requests: list[Recorded] = []
            self.faults: list[Fault] = []
            self.accepted_tokens: set[str] | None = None
            # "primary" is the signed-in account's own calendar: access token -> calendar id
            # (a token not listed has a calendar named after it).
            self.primary: dict[str, str] = {}
            self.page_size_cap = 250

    # --- controls --------------------------------------------------------------------------------

    def calendar(self, calendar_id: str) -> Calendar:
        with self.lock:
            return self.calendars.setdefault(calendar_id, Calendar(calendar_id))

    def rate_limit(
        self, times: int = 1, *, status: int = 429, retry_after: int | None = None, path: str | None = None
    ) -> None:
        """The next `times` requests (to paths containing `path`) answer 429, or 403 rateLimitExceeded."""
        with self.lock:
            self.faults.append(Fault(status=status, times=times, retry_after=retry_after, path=path))

    def add_event(
        self,
        calendar_id: str,
        start: datetime | str,
        end: datetime | str,
        *,
        summary: str = "Dentist",
        description: str | None = "Private: root canal",
        transparency: str | None = None,
        visibility: str = "private",
        private_properties: dict[str, str] | None = None,
    ) -> Json:
        """An event the calendar's owner made in Google (times, or all-day dates as 'YYYY-MM-DD')."""
        body: Json = {
            "summary": summary,
            "description": description,
            "visibility": visibility,
            "start": {"date": start} if isinstance(start, str) else {"dateTime": start.isoformat()},
            "end": {"date": end} if isinstance(end, str) else {"dateTime": end.isoformat()},
        }
        if transparency:
            body["transparency"] = transparency
        if private_properties:
            body["extendedProperties"] = {"private": private_properties}
        with self.lock:
            return self._insert(self.calendar(calendar_id), body)

    def edit_event(self, calendar_id: str, event_id: str, **fields: Any) -> Json:
        """A change made in Google (by the owner) to any event, ours included."""
        with self.lock:
            return self._patch(self.calendar(calendar_id), event_id, fields)

    def remove_event(self, calendar_id: str, event_id: str) -> None:
        with self.lock:
            self._delete(self.calendar(calendar_id), event_id)

    def invalidate_sync_tokens(self, calendar_id: str) -> None:
        """Google's way of forcing a full sync: every token issued so far answers 410 Gone."""
        with self.lock:
            self.calendar(calendar_id).tokens.clear()

    def live_events(self, calendar_id: str) -> list[Json]:
        with self.lock:
            return [dict(e) for e in self.calendar(calendar_id).events.values() if e["status"] != "cancelled"]

    def event(self, calendar_id: str, event_id: str) -> Json:
        with self.lock:
            return dict(self.calendar(calendar_id).events[event_id])

    def count(self, method: str | None = None, path_contains: str | None = None) -> int:
        with self.lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method) and (path_contains is None or path_contains in r.path)
            )

    def active_channels(self, calendar_id: str | None = None) -> list[Channel]:
        with self.lock:
            return [
                c
                for c in self.channels.values()
                if not c.stopped and (calendar_id is None or c.calendar_id == calendar_id)
            ]

    def notification_headers(self, channel_id: str, state: str = "exists", token: str | None = None) -> dict[str, str]:
        """The headers Google sends (with an empty body) to a watch channel's address."""
        with self.lock:
            channel = self.channels[channel_id]
            return {
                "x-goog-channel-id": channel.id,
                "x-goog-channel-token": channel.token if token is None else token,
                "x-goog-resource-id": channel.resource_id,
                "x-goog-resource-state": state,
                "x-goog-resource-uri": f"{self.base_url}{PREFIX}/calendars/{channel.calendar_id}/events",
                "x-goog-message-number": str(secrets.randbelow(10**6)),
                "x-goog-channel-expiration": datetime.fromtimestamp(channel.expiration / 1000, UTC).strftime(
                    "%a, %d %b %Y %H:%M:%S GMT"
                ),
            }

    # --- the API ---------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        query = dict(parse_qsl(scope.get("query_string", b"").decode(), keep_blank_values=True))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = Recorded(method, path, query, body)
        extra: dict[str, str] = {}
        with self.lock:
            self.requests.append(record)
            try:
                status, payload = self._route(method, path, query, body, headers, extra)
            except GoogleFailure as failure:
                status, payload = failure.status, failure.body
            record.status = status
        out = b"" if payload is None else json.dumps(payload).encode()
        response_headers = [(b"content-type", b"application/json; charset=UTF-8")]
        response_headers += [(k.encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": out})

    def _route(
        self, method: str, path: str, query: dict[str, str], body: Any, headers: dict[str, str], extra: dict[str, str]
    ) -> tuple[int, Json | None]:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or (
            self.accepted_tokens is not None and auth.removeprefix("Bearer ") not in self.accepted_tokens
        ):
            raise GoogleFailure(401, "authError", "Invalid Credentials")
        fault = next((f for f in self.faults if f.path is None or f.path in path), None)
        if fault is not None:
            fault.times -= 1
            if fault.times <= 0:
                self.faults.remove(fault)
            if fault.retry_after is not None:
                extra["retry-after"] = str(fault.retry_after)
            if fault.status == 403:
                raise GoogleFailure(403, "rateLimitExceeded", "Rate Limit Exceeded")
            raise GoogleFailure(fault.status, "rateLimitExceeded", "Too Many Requests")
        if not path.startswith(PREFIX):
            raise GoogleFailure(404, "notFound", "Not Found")
        parts = [unquote(p) for p in path[len(PREFIX) :].strip("/").split("/")]
        if parts == ["channels", "stop"] and method == "POST":
            return self._stop(body or {})
        if parts == ["freeBusy"] and method == "POST":
            return 200, self._freebusy(body or {})
        if len(parts) >= 3 and parts[0] == "calendars" and parts[2] == "events":
            token = auth.removeprefix("Bearer ")
            calendar = self.calendar(self.primary.get(token, token) if parts[1] == "primary" else parts[1])
            rest = parts[3:]
            if not rest and method == "GET":
                return 200, self._list(calendar, query)
            if not rest and method == "POST":
                return 200, self._insert(calendar, body or {})
            if rest == ["watch"] and method == "POST":
                return 200, self._watch(calendar, body or {})
            if len(rest) == 1:
                if method == "GET":
                    return 200, self._get(calendar, rest[0])
                if method in ("PATCH", "PUT"):
                    if_match = headers.get("if-match")
                    if if_match and self._get(calendar, rest[0])["etag"] != if_match:
                        raise GoogleFailure(412, "conditionNotMet", "Precondition Failed")
                    return 200, self._patch(calendar, rest[0], body or {})
                if method == "DELETE":
                    self._delete(calendar, rest[0])
                    return 204, None
        raise GoogleFailure(404, "notFound", "Not Found")

    def _touch(self, calendar: Calendar, event: Json) -> Json:
        calendar.seq += 1
        event["_seq"] = calendar.seq
        event["etag"] = f'"{calendar.seq}{secrets.token_hex(4)}"'
        event["updated"] = _now()
        return event

    def _public(self, event: Json) -> Json:
        return {k: v for k, v in event.items() if not k.startswith("_")}

    def _insert(self, calendar: Calendar, body: Json) -> Json:
        event_id = body.get("id") or secrets.token_hex(13)
        if not 5 <= len(event_id) <= 1024 or not set(event_id) <= _BASE32HEX:
            raise GoogleFailure(400, "invalid", "Invalid resource id value.")
        if event_id in calendar.events:
            raise GoogleFailure(409, "duplicate", "The requested identifier already exists.")
        for when in ("start", "end"):
            if not isinstance(body.get(when), dict) or not ({"date", "dateTime"} & set(body[when])):
                raise GoogleFailure(400, "required", f"Missing {when} time.")
        event = {**body, "id": event_id, "kind": "calendar#event", "status": body.get("status", "confirmed")}
        event["created"] = _now()
        calendar.events[event_id] = self._touch(calendar, event)
        return self._public(event)

    def _get(self, calendar: Calendar, event_id: str) -> Json:
        event = calendar.events.get(event_id)
        if event is None:
            raise GoogleFailure(404, "notFound", "Not Found")
        return self._public(event)

    def _patch(self, calendar: Calendar, event_id: str, fields: Json) -> Json:
        event = calendar.events.get(event_id)
        if event is None:
            raise GoogleFailure(404, "notFound", "Not Found")
        for key, value in fields.items():
            if key in ("id", "etag", "kind"):
                continue
            if key == "extendedProperties" and isinstance(value, dict):
                merged = dict(event.get("extendedProperties") or {})
                for scope_name, props in value.items():
                    merged[scope_name] = {**merged.get(scope_name, {}), **props}
                event[key] = merged
            else:
                event[key] = value
        return self._public(self._touch(calendar, event))

    def _delete(self, calendar: Calendar, event_id: str) -> None:
        event = calendar.events.get(event_id)
        if event is None:
            raise GoogleFailure(404, "notFound", "Not Found")
        if event["status"] == "cancelled":
            raise GoogleFailure(410, "deleted", "Resource has been deleted")
        event["status"] = "cancelled"
        self._touch(calendar, event)

    def _list(self, calendar: Calendar, query: dict[str, str]) -> Json:
        size = min(int(query.get("maxResults", "250")), self.page_size_cap)
        sync_token = query.get("syncToken")
        page_token = query.get("pageToken")
        if page_token:
            since, until, offset = (int(p) for p in page_token.split("-"))
        elif sync_token:
            forbidden = {"timeMin", "timeMax", "q", "orderBy", "updatedMin", "iCalUID", "privateExtendedProperty"}
            if forbidden & set(query):
                raise GoogleFailure(400, "invalid", "Sync token cannot be used with other filters.")
            if sync_token not in calendar.tokens:
                raise GoogleFailure(410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required.")
            since, until, offset = calendar.tokens[sync_token], calendar.seq, 0
        else:
            since, until, offset = 0, calendar.seq, 0
        if sync_token or since:
            chosen = [e for e in calendar.events.values() if since < e["_seq"] <= until]
        else:
            chosen = [e for e in calendar.events.values() if e["_seq"] <= until]
            if query.get("showDeleted") != "true":
                chosen = [e for e in chosen if e["status"] != "cancelled"]
            low = query.get("timeMin")
            high = query.get("timeMax")
            if low:
                t = datetime.fromisoformat(low.replace("Z", "+00:00"))
                chosen = [e for e in chosen if "end" not in e or _instant(e["end"]) > t]
            if high:
                t = datetime.fromisoformat(high.replace("Z", "+00:00"))
                chosen = [e for e in chosen if "start" not in e or _instant(e["start"]) < t]
        chosen.sort(key=lambda e: e["_seq"])
        page = chosen[offset : offset + size]
        out: Json = {"kind": "calendar#events", "items": [self._public(e) for e in page]}
        if offset + size < len(chosen):
            # The page token pins the snapshot: changes made while paging come with the next sync.
            out["nextPageToken"] = f"{since}-{until}-{offset + size}"
        else:
            token = "sync" + secrets.token_hex(8)
            calendar.tokens[token] = until
            out["nextSyncToken"] = token
        return out

    def _watch(self, calendar: Calendar, body: Json) -> Json:
        channel_id = str(body.get("id") or "")
        if not channel_id or len(channel_id) > 64 or body.get("type") != "web_hook" or not body.get("address"):
            raise GoogleFailure(400, "invalid", "Invalid channel.")
        if channel_id in self.channels:
            raise GoogleFailure(400, "channelIdNotUnique", "Channel id not unique")
        week = int(time.time() * 1000) + 7 * 86_400_000
        expiration = min(int(body.get("expiration") or week), week)
        channel = Channel(
            id=channel_id,
            resource_id="res" + secrets.token_hex(8),
            calendar_id=calendar.id,
            address=body["address"],
            token=body.get("token"),
            expiration=expiration,
        )
        self.channels[channel_id] = channel
        return {
            "kind": "api#channel",
            "id": channel.id,
            "resourceId": channel.resource_id,
            "resourceUri": f"{self.base_url}{PREFIX}/calendars/{calendar.id}/events",
            "token": channel.token,
            "expiration": str(channel.expiration),
        }

    def _stop(self, body: Json) -> tuple[int, None]:
        channel = self.channels.get(str(body.get("id")))
        if channel is None or channel.resource_id != body.get("resourceId") or channel.stopped:
            raise GoogleFailure(404, "notFound", "Channel not found")
        channel.stopped = True
        return 204, None

    def _freebusy(self, body: Json) -> Json:
        low = datetime.fromisoformat(str(body["timeMin"]).replace("Z", "+00:00"))
        high = datetime.fromisoformat(str(body["timeMax"]).replace("Z", "+00:00"))
        out: Json = {}
        for item in body.get("items", [])[:50]:
            calendar = self.calendar(item["id"])
            busy = []
            for e in calendar.events.values():
                if e["status"] == "cancelled" or e.get("transparency") == "transparent":
                    continue
                start, end = _instant(e["start"]), _instant(e["end"])
                if start < high and end > low:
                    busy.append((start, end))
            out[item["id"]] = {"busy": [{"start": s.isoformat(), "end": e.isoformat()} for s, e in sorted(busy)]}
        return {"kind": "calendar#freeBusy", "timeMin": body["timeMin"], "timeMax": body["timeMax"], "calendars": out}


@pytest.fixture
def fake_gcal() -> Iterator[FakeGoogleCalendar]:
    fake = FakeGoogleCalendar().start()
    try:
        yield fake
    finally:
        fake.stop()
