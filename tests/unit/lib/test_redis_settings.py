"""Redis TLS settings: read from the environment, turned into client options, refused when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from spotless.lib.redis import endpoint, ssl_context, tls_options
from spotless.settings import ConfigError, load_settings

BASE = {"DATABASE_URL": "postgresql://app@db.internal/spotless"}


def test_rediss_url_with_ca_and_client_certificate(tmp_path: Path):
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "client.pem", "client.key"))
    for path in (ca, cert, key):
        path.write_text("x")
    settings = load_settings(
        {
            **BASE,
            "REDIS_URL": "rediss://app:s%40cret@redis.internal:6380/2",
            "REDIS_TLS_CA_FILE": str(ca),
            "REDIS_TLS_CERT_FILE": str(cert),
            "REDIS_TLS_KEY_FILE": str(key),
        }
    )
    assert tls_options(settings.redis) == {
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
        "ssl_ca_certs": str(ca),
        "ssl_certfile": str(cert),
        "ssl_keyfile": str(key),
    }
    assert endpoint(settings.redis.url) == "redis.internal:6380"  # no credentials in metric labels


def test_plain_urls_get_no_tls_options():
    settings = load_settings({**BASE, "REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert tls_options(settings.redis) == {}
    assert ssl_context(settings.redis) is None


def test_tls_files_without_a_tls_url_are_refused(tmp_path: Path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    with pytest.raises(ConfigError, match="REDIS_TLS_CA_FILE"):
        load_settings({**BASE, "REDIS_URL": "redis://redis.internal:6379/0", "REDIS_TLS_CA_FILE": str(ca)})


def test_a_missing_tls_file_is_named():
    with pytest.raises(ConfigError, match="REDIS_TLS_CERT_FILE"):
        load_settings(
            {
                **BASE,
                "REDIS_URL": "rediss://redis.internal:6380/0",
                "REDIS_TLS_CERT_FILE": "/nonexistent/client.pem",
                "REDIS_TLS_KEY_FILE": "/nonexistent/client.key",
            }
        )


def test_every_client_of_one_server_shares_one_breaker_configured_from_settings():
    from spotless.lib.redis import breaker_of, create_redis, forget_breakers, redis_breaker

    settings = load_settings(
        {**BASE, "REDIS_URL": "redis://cache.internal:6390/3", "REDIS_BREAKER_COOLDOWN_SECONDS": "2.5"}
    )
    forget_breakers(settings.redis.url)
    session_client = create_redis(settings.redis, socket_timeout=0.25)  # no I/O until used
    other_db = create_redis(settings.redis, url="redis://cache.internal:6390/7")
    breaker = breaker_of(session_client)
    assert breaker is breaker_of(other_db) is redis_breaker(settings.redis)
    assert breaker.cooldown == 2.5 and breaker.name == "redis:cache.internal:6390"
    forget_breakers(settings.redis.url)
