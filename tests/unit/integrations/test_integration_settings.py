"""The integrations' settings: a configured provider in production needs a real, strong key ring;
a malformed ring stops start-up anywhere; the fakes' base URLs are refused in production."""

from __future__ import annotations

import pytest

from spotless.lib.sealed import generate_key
from spotless.settings import ConfigError, load_settings
from tests.unit.test_settings import BASE, PROD

GOOGLE = {
    "GOOGLE_OAUTH_CLIENT_ID": "1234-abc.apps.googleusercontent.com",
    "GOOGLE_OAUTH_CLIENT_SECRET": "GOCSPX-q8Zr2mK7pL4wX9cB6hD1fG5j",
    "GOOGLE_OAUTH_REDIRECT_URI": "https://app.spotless.example/settings/integrations/google",
}


def test_prod_without_integrations_needs_no_key_ring() -> None:
    settings = load_settings(PROD)
    assert not settings.integrations.google_configured and not settings.integrations.quickbooks_configured


def test_prod_with_an_integration_needs_a_strong_key_ring() -> None:
    with pytest.raises(ConfigError, match="INTEGRATION_TOKEN_KEYS is required"):
        load_settings({**PROD, **GOOGLE})
    from spotless.integration_settings import DEV_TOKEN_KEYS

    with pytest.raises(ConfigError, match="development key"):
        load_settings({**PROD, **GOOGLE, "INTEGRATION_TOKEN_KEYS": DEV_TOKEN_KEYS})
    weak = "k1:" + "QUFB" * 10 + "QUE"  # 32 times "A"
    with pytest.raises(ConfigError, match="not random enough"):
        load_settings({**PROD, **GOOGLE, "INTEGRATION_TOKEN_KEYS": weak})
    settings = load_settings({**PROD, **GOOGLE, "INTEGRATION_TOKEN_KEYS": f"{generate_key('k2')},{generate_key('k1')}"})
    assert settings.integrations.google_configured and settings.integrations.key_ring().primary == "k2"


def test_prod_refuses_half_configured_providers_and_the_fakes() -> None:
    keys = {"INTEGRATION_TOKEN_KEYS": generate_key("k1")}
    with pytest.raises(ConfigError, match="QUICKBOOKS_OAUTH_CLIENT_ID and QUICKBOOKS_OAUTH_CLIENT_SECRET"):
        load_settings({**PROD, **keys, "QUICKBOOKS_OAUTH_CLIENT_ID": "abc"})
    with pytest.raises(ConfigError, match="GOOGLE_OAUTH_BASE_URL points at this machine"):
        load_settings({**PROD, **GOOGLE, **keys, "GOOGLE_OAUTH_BASE_URL": "http://127.0.0.1:8999/google"})
    with pytest.raises(ConfigError, match="GOOGLE_OAUTH_REDIRECT_URI must be an https"):
        load_settings({**PROD, **GOOGLE, **keys, "GOOGLE_OAUTH_REDIRECT_URI": "http://app.example/cb"})


def test_a_malformed_ring_stops_start_up_in_any_environment_without_showing_it() -> None:
    with pytest.raises(ConfigError, match="entry 1") as refused:
        load_settings({**BASE, "INTEGRATION_TOKEN_KEYS": "k1:c2hvcnQ"})
    assert "c2hvcnQ" not in str(refused.value)


def test_the_sync_settings_are_bounded_and_named() -> None:
    settings = load_settings({**BASE, "GCAL_SYNC_INTERVAL_SECONDS": "120", "QBO_SYNC_BACKFILL_DAYS": "3"})
    assert settings.integrations.gcal_sync_interval_seconds == 120 and settings.integrations.qbo_sync_backfill_days == 3
    with pytest.raises(ConfigError, match="QBO_SYNC_INITIAL_DAYS"):
        load_settings({**BASE, "QBO_SYNC_INITIAL_DAYS": "45"})  # CDC looks back 30 days at most
    with pytest.raises(ConfigError, match="GCAL_WEBHOOK_URL"):
        load_settings({**BASE, "GCAL_WEBHOOK_URL": "http://api.example/v1/integrations/google/notifications"})
