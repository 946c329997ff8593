"""Our real Google Calendar client against the loopback fake (no database needed): paging, sync tokens,
410, rate answers, watch/stop, free/busy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from spotless.domain.integrations.google.client import (
    GoogleCalendarClient,
    RateLimited,
    SyncTokenGone,
)
from tests.fakes.google_calendar import FakeGoogleCalendar

pytestmark = pytest.mark.asyncio(loop_scope="session")
CAL = "cleaner@example.com"
T0 = datetime(2030, 1, 7, 9, tzinfo=UTC)


async def _all(client: GoogleCalendarClient, **kwargs: object) -> tuple[list[str], str | None, int]:
    ids: list[str] = []
    page_token = None
    pages = 0
    while True:
        page = await client.list_events(CAL, page_token=page_token, max_results=2, **kwargs)  # type: ignore[arg-type]
        pages += 1
        ids += [e.id for e in page.items]
        if page.nextPageToken is None:
            return ids, page.nextSyncToken, pages
        assert page.nextSyncToken is None  # only the last page carries the sync token
        page_token = page.nextPageToken


async def test_paging_sync_tokens_and_410(fake_gcal: FakeGoogleCalendar) -> None:
    made = [
        fake_gcal.add_event(CAL, T0 + timedelta(hours=i), T0 + timedelta(hours=i, minutes=30))["id"] for i in range(5)
    ]
    async with httpx.AsyncClient(timeout=5) as http:
        client = GoogleCalendarClient(http, fake_gcal.base_url, "tok")
        ids, token, pages = await _all(client)
        assert ids == made and pages == 3 and token
        fake_gcal.remove_event(CAL, made[0])
        fresh = fake_gcal.add_event(CAL, T0, T0 + timedelta(hours=1))["id"]
        changed = await client.list_events(CAL, sync_token=token)
        assert {(e.id, e.status) for e in changed.items} == {(made[0], "cancelled"), (fresh, "confirmed")}
        assert changed.nextSyncToken
        fake_gcal.invalidate_sync_tokens(CAL)
        with pytest.raises(SyncTokenGone):
            await client.list_events(CAL, sync_token=changed.nextSyncToken)


async def test_rate_answers_back_off_then_give_up(fake_gcal: FakeGoogleCalendar) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        client = GoogleCalendarClient(http, fake_gcal.base_url, "tok", max_rate_retries=2, backoff_base_seconds=0.01)
        fake_gcal.rate_limit(2, status=403)
        page = await client.list_events(CAL)  # two 403 rateLimitExceeded, then the answer
        assert page.nextSyncToken
        fake_gcal.rate_limit(5, status=429, retry_after=0)
        with pytest.raises(RateLimited) as raised:
            await client.list_events(CAL)
        assert raised.value.status == 429
        assert fake_gcal.count("GET") == 3 + 3


async def test_insert_patch_delete_watch_freebusy(fake_gcal: FakeGoogleCalendar) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        client = GoogleCalendarClient(http, fake_gcal.base_url, "tok")
        body = {
            "id": "spotless0123456789",
            "start": {"dateTime": T0.isoformat()},
            "end": {"dateTime": (T0 + timedelta(hours=2)).isoformat()},
            "extendedProperties": {"private": {"spotless_booking_id": "b1"}},
        }
        made = await client.insert_event(CAL, body)
        assert made.private == {"spotless_booking_id": "b1"}
        moved = await client.patch_event(CAL, made.id, {"start": {"dateTime": (T0 + timedelta(hours=1)).isoformat()}})
        assert moved.etag != made.etag
        busy = await client.freebusy([CAL], T0 - timedelta(days=1), T0 + timedelta(days=1))
        assert busy[CAL] == [(T0 + timedelta(hours=1), T0 + timedelta(hours=2))]
        await client.delete_event(CAL, made.id)
        await client.delete_event(CAL, made.id)  # already deleted: fine
        assert fake_gcal.event(CAL, made.id)["status"] == "cancelled"
        channel = await client.watch(
            CAL, channel_id="ch1", address="https://example.com/hook", token="secret", expiration=T0
        )
        assert fake_gcal.active_channels(CAL)[0].token == "secret"
        await client.stop_channel(channel.id, channel.resourceId)
        assert fake_gcal.active_channels(CAL) == []
