"""Policies from the environment and the header/429 shapes clients read."""

from __future__ import annotations

import pytest
from litestar import Litestar, get

from spotless.lib.ratelimit import Decision, check_route_classes, policies_from_settings, rate_limited
from spotless.lib.ratelimit.middleware import ratelimit_headers
from spotless.settings import ConfigError, load_settings

BASE = {"DATABASE_URL": "postgresql://u@db/x", "REDIS_URL": "redis://r:6379/0"}


def test_each_route_class_reads_its_variable():
    settings = load_settings(
        {
            **BASE,
            "RATE_LIMIT_PER_MINUTE": "100",
            "RATE_LIMIT_BURST": "20",
            "AUTH_RATE_LIMIT_PER_MINUTE": "7",
            "ADMIN_ACTION_RATE_LIMIT_PER_MINUTE": "11",
            "PUBLIC_RATE_LIMIT_PER_MINUTE": "13",
            "EXPENSIVE_RATE_LIMIT_PER_MINUTE": "3",
        }
    )
    policies = policies_from_settings(settings.rate_limit)
    assert (policies["default"].limit, policies["default"].burst) == (100, 20)
    assert (policies["auth"].limit, policies["auth"].burst, policies["auth"].key_by) == (7, 7, "ip")
    assert policies["auth-account"].limit == 35  # per account from all addresses: 5 x one address's quota
    assert (policies["admin"].limit, policies["admin"].key_by) == (11, "caller")
    assert (policies["public"].limit, policies["public"].key_by) == (13, "ip")
    assert policies["expensive"].limit == 3
    assert "exempt" not in policies
    assert policies["default"].interval_us == 600_000


def test_zero_burst_means_the_whole_minute_at_once_and_zero_limit_switches_off():
    rl = load_settings({**BASE, "RATE_LIMIT_BURST": "0", "EXPENSIVE_RATE_LIMIT_PER_MINUTE": "0"}).rate_limit
    policies = policies_from_settings(rl)
    assert policies["default"].burst == policies["default"].limit == 120
    assert not policies["expensive"].enabled


def test_headers_follow_the_ietf_draft():
    policy = policies_from_settings(load_settings(BASE).rate_limit)["default"]
    allowed = Decision(allowed=True, remaining=57, retry_after=0, reset_after=11.2, backend="redis")
    assert ratelimit_headers(policy, allowed) == [
        (b"ratelimit-policy", b'"default";q=120;w=60'),
        (b"ratelimit", b'"default";r=57;t=12'),
    ]
    refused = Decision(allowed=False, remaining=0, retry_after=0.2, reset_after=15, backend="redis")
    assert ratelimit_headers(policy, refused)[1:] == [(b"ratelimit", b'"default";r=0;t=1'), (b"retry-after", b"1")]


def test_handler_side_429_is_a_problem_with_retry_after():
    policy = policies_from_settings(load_settings(BASE).rate_limit)["auth-account"]
    problem = rate_limited(
        policy, Decision(allowed=False, remaining=0, retry_after=5.5, reset_after=60, backend="redis")
    )
    assert problem.status_code == 429 and problem.type_ == "/problems/rate-limited"
    assert problem.headers["retry-after"] == "6"
    assert problem.extra == {"policy": "auth-account", "retry_after": 6}


def test_a_typo_in_a_route_class_stops_the_start():
    @get("/x", opt={"rate_limit": "defualt"})
    async def handler() -> None:
        return None

    with pytest.raises(ConfigError, match="defualt"):
        check_route_classes(Litestar([handler]))


def test_strict_cors_refuses_a_wildcard_outside_prod_too():
    with pytest.raises(ConfigError, match="CORS_ORIGINS"):
        load_settings({**BASE, "STRICT_CORS": "true", "CORS_ORIGINS": "*"})
    assert load_settings({**BASE, "CORS_ORIGINS": "*"}).http.cors_origins == ("*",)
    with pytest.raises(ConfigError, match="CORS_ORIGINS"):
        load_settings({**BASE, "APP_ENV": "prod", "AUTH_SECRET_KEY": "k" * 48, "CORS_ORIGINS": "https://a.example,*"})
