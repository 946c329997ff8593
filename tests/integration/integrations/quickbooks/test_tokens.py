"""Tokens in the QuickBooks sync: a 401 from the API asks the core for a fresh token once
(force_refresh) and the call goes through; a grant refused at refresh stops that connection's sync
(needs reconnect, no retry); no token is ever stored in what the sync keeps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from spotless.domain.integrations.quickbooks.actors import sync_due
from spotless.lib.jobs.runtime import JobRuntime, build_runtime, set_runtime
from tests.conftest import make_settings
from tests.fakes.oauth_server import FakeOAuth
from tests.fakes.quickbooks import FakeQuickBooks
from tests.integration.integrations.core.conftest import connection_row, row_text
from tests.integration.integrations.quickbooks.conftest import REALM, books, due_again, issued_invoice


class LiveTokens:
    """The fake QuickBooks accepts exactly the access tokens the fake OAuth server says are live."""

    def __init__(self, oauth: FakeOAuth) -> None:
        self.oauth = oauth

    def __bool__(self) -> bool:
        return True

    def __contains__(self, token: object) -> bool:
        return isinstance(token, str) and self.oauth.valid_access(token)


@pytest.fixture
def fake_oauth() -> Any:
    fake = FakeOAuth().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
async def oauth_runtime(fake_oauth: FakeOAuth, fake_qbo: FakeQuickBooks) -> AsyncIterator[JobRuntime]:
    rt = build_runtime(make_settings(**fake_oauth.env(), **fake_qbo.env()), application_name="spotless-tests-qbo")
    set_runtime(rt)
    yield rt
    set_runtime(None)
    await rt.close()


async def test_a_401_refreshes_the_token_once_and_the_call_goes_through(
    owner_engine, oauth_runtime, fake_oauth, fake_qbo
) -> None:
    settings = oauth_runtime.settings
    _, refresh = fake_oauth.issue_grant("quickbooks", realm_id=REALM)
    # The stored access token is unexpired but QuickBooks no longer takes it (revoked early).
    b = await books(owner_engine, settings, access_token="revoked-early", refresh_token=refresh)
    await issued_invoice(owner_engine, b)
    fake_qbo.accepted_tokens = LiveTokens(fake_oauth)  # type: ignore[assignment]
    assert await sync_due(oauth_runtime) == 1
    assert fake_oauth.refreshes == 1
    assert fake_qbo.requests[0].status == 401 and fake_qbo.requests[1].status == 200
    assert len(fake_qbo.all(REALM, "Customer")) == 1 and len(fake_qbo.all(REALM, "Invoice")) == 1
    row = await connection_row(owner_engine, b.connection_id)
    assert row.error_count == 0 and row.last_sync_at is not None
    for table in ("qbo_links", "qbo_sync_cursors", "integration_connections"):
        dump = await row_text(owner_engine, table)
        assert "revoked-early" not in dump and refresh not in dump


async def test_a_refused_grant_stops_the_connection_without_retry(
    owner_engine, oauth_runtime, fake_oauth, fake_qbo
) -> None:
    settings = oauth_runtime.settings
    _, refresh = fake_oauth.issue_grant("quickbooks", realm_id=REALM)
    fake_oauth.revoke_grant(refresh)
    b = await books(owner_engine, settings, refresh_token=refresh, expires_in=0)
    await issued_invoice(owner_engine, b)
    assert await sync_due(oauth_runtime) == 1
    row = await connection_row(owner_engine, b.connection_id)
    assert row.status == "needs_reconnect" and row.error_count == 0
    assert fake_qbo.requests == []
    # It is not claimed again, however often the runner loops.
    await due_again(owner_engine, b.connection_id)
    assert await sync_due(oauth_runtime) == 0
