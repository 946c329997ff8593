"""Watch channels: a notification with the channel's token queues that calendar's sync (stored
once); a wrong token is refused; channels are replaced before they expire and the old one stopped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.domain.integrations.google.actors import poll, sync_connection
from spotless.domain.integrations.google.client import http_client
from spotless.domain.integrations.google.config import gcal_config
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.integration.integrations.google.conftest import (
    SYNC_NOW,
    WEBHOOK_URL,
    connect_google,
    gcal_runtime,
    run_jobs,
    sql,
)
from tests.support.factories import arrange_world, make_member, next_weekday
from tests.support.identity import signup

NOTIFY = "/v1/integrations/google/notifications"


async def test_a_notification_triggers_that_calendars_sync(
    client, owner_engine: AsyncEngine, fake_gcal: FakeGoogleCalendar
) -> None:
    owner = await signup(client)
    cleaner = await make_member(owner_engine, owner.org_id, "worker")
    world = await arrange_world(owner_engine, owner.org_id, workers=1, worker_user_ids=[cleaner])
    await connect_google(owner_engine, owner.org_id, cleaner, "cal-watch")
    day = next_weekday(2)
    async with gcal_runtime(fake_gcal, GCAL_WEBHOOK_URL=WEBHOOK_URL) as rt:
        assert await poll(rt) == {"synced": 1}
        (channel,) = fake_gcal.active_channels("cal-watch")
        assert channel.address == WEBHOOK_URL and channel.token
        (stored,) = await sql(owner_engine, "SELECT channel_id, channel_token_hash FROM gcal_calendars")
        assert stored.channel_id == channel.id and channel.token not in stored.channel_token_hash

        # Google's handshake stores nothing; a forged token is refused.
        sync_state = await client.post(NOTIFY, headers=fake_gcal.notification_headers(channel.id, state="sync"))
        assert sync_state.status_code == 200
        forged = await client.post(NOTIFY, headers=fake_gcal.notification_headers(channel.id, token="guess"))
        assert forged.status_code == 401
        assert await sql(owner_engine, "SELECT id FROM inbox_events WHERE source = 'google_calendar'") == []

        start = datetime.fromisoformat(world.at(day, 9))
        fake_gcal.add_event("cal-watch", start, start + timedelta(hours=3))
        headers = fake_gcal.notification_headers(channel.id)
        first = await client.post(NOTIFY, headers=headers)
        again = await client.post(NOTIFY, headers=headers)  # Google delivers twice
        assert first.status_code == 200 and first.json() == {"received": True, "duplicate": False}
        assert again.json() == {"received": True, "duplicate": True}
        assert await run_jobs(owner_engine, "system.process_inbox_event") == 1
        assert await run_jobs(owner_engine, SYNC_NOW) == 1
    blocks = await sql(owner_engine, "SELECT starts_at, ends_at FROM external_busy WHERE org_id = :o", o=owner.org_id)
    assert [(b.starts_at, b.ends_at) for b in blocks] == [(start, start + timedelta(hours=3))]


async def test_channels_are_replaced_before_they_expire_and_the_old_one_stopped(
    client, owner_engine: AsyncEngine, fake_gcal: FakeGoogleCalendar
) -> None:
    owner = await signup(client)
    cleaner = await make_member(owner_engine, owner.org_id, "worker")
    await arrange_world(owner_engine, owner.org_id, workers=1, worker_user_ids=[cleaner])
    connection_id = await connect_google(owner_engine, owner.org_id, cleaner, "cal-renew")
    async with gcal_runtime(fake_gcal, GCAL_WEBHOOK_URL=WEBHOOK_URL) as rt:
        cfg = gcal_config(rt.settings)
        async with http_client() as http:
            await sync_connection(rt, cfg, http, owner.org_id, connection_id)
            (old,) = fake_gcal.active_channels("cal-renew")
            await sync_connection(rt, cfg, http, owner.org_id, connection_id)
            assert fake_gcal.active_channels("cal-renew") == [old]  # far from expiry: kept
            near_expiry = datetime.fromtimestamp(old.expiration / 1000, UTC) - timedelta(hours=12)
            await sync_connection(rt, cfg, http, owner.org_id, connection_id, now=near_expiry)
    (new,) = fake_gcal.active_channels("cal-renew")
    assert new.id != old.id and fake_gcal.channels[old.id].stopped
    (stored,) = await sql(owner_engine, "SELECT channel_id, old_channel_id FROM gcal_calendars")
    assert stored.channel_id == new.id and stored.old_channel_id is None
    # The replaced channel's late notification is answered (so Google stops) and changes nothing.
    late = await client.post(NOTIFY, headers=fake_gcal.notification_headers(old.id))
    assert late.status_code == 200 and late.json()["received"] is False
