"""Settings refuse to start wrong: every bound is checked when the environment is read, and in
prod a configuration that would work but be unsafe (emails in the logs, services on localhost,
any Host accepted, public metrics, guessable secrets) is refused. Every error names its variable."""

from __future__ import annotations

import secrets

import pytest

from spotless.settings import ConfigError, load_settings, secret_weakness
from tests.unit.test_settings import BASE, PROD


def _refused(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    return str(caught.value)


# --- ranges -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_STATEMENT_TIMEOUT_MS", "0"),  # 0 switches PostgreSQL's limit off
        ("DATABASE_STATEMENT_TIMEOUT_MS", "-5"),
        ("DATABASE_POOL_SIZE", "0"),
        ("DATABASE_POOL_TIMEOUT_SECONDS", "0"),
        ("REDIS_SOCKET_TIMEOUT_SECONDS", "0"),
        ("AUTH_ACCESS_TOKEN_TTL_MINUTES", "0"),
        ("AUTH_ACCESS_TOKEN_TTL_MINUTES", "100000"),
        ("AUTH_PASSWORD_MIN_LENGTH", "4"),
        ("AUTH_SESSION_CHECK_TIMEOUT_MS", "0"),
        ("AUTH_ARGON2_MEMORY_KIB", "8"),
        ("AUTH_LOGIN_MAX_FAILURES", "0"),
        ("RATE_LIMIT_REDIS_TIMEOUT_MS", "0"),
        ("RATE_LIMIT_PER_MINUTE", "-1"),
        ("JOB_TICK_INTERVAL_SECONDS", "0"),
        ("OUTBOX_RELAY_INTERVAL_SECONDS", "0"),
        ("SMTP_PORT", "70000"),
        ("PORT", "0"),
        ("MAX_REQUEST_BODY_BYTES", "0"),
        ("SCHEDULING_HORIZON_DAYS", "0"),
        ("SCHEDULING_MAX_AVAILABILITY_DAYS", "10000"),
        ("SCHEDULING_OVERRUN_PERCENT", "-1"),
        ("JOB_NAMESPACE", "has spaces"),
        ("DATABASE_APP_ROLE", "app; DROP ROLE x"),
        ("AUTH_PASSWORD_RESET_URL", "javascript:alert(1)"),
    ],
)
def test_a_value_out_of_range_is_refused_naming_the_variable(name, value):
    message = _refused({**BASE, name: value})
    assert message.startswith(f"{name}: "), message
    assert repr(value) in message or value in message or "got" in message


def test_values_inside_the_ranges_are_accepted():
    settings = load_settings(
        {**BASE, "DATABASE_STATEMENT_TIMEOUT_MS": "100", "RATE_LIMIT_BURST": "0", "SCHEDULING_OVERRUN_PERCENT": "0"}
    )
    assert settings.database.statement_timeout_ms == 100
    assert settings.rate_limit.burst == 0


def test_the_defaults_are_inside_the_ranges():
    load_settings(BASE)


# --- production ---------------------------------------------------------------------------------


def test_a_production_environment_starts():
    settings = load_settings(PROD)
    assert settings.is_prod and settings.email.mode == "smtp"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"EMAIL_MODE": "log"}, "EMAIL_MODE"),
        ({"DATABASE_URL": "postgresql://spotless:pw@localhost:5432/spotless"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://spotless:pw@127.0.0.1/spotless"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://spotless:pw@[::1]:5432/spotless"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://spotless:pw@db.internal:5432,127.0.0.2:5432/spotless"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://spotless:pw@/spotless?host=/var/run/postgresql"}, "DATABASE_URL"),
        ({"DATABASE_MIGRATION_URL": "postgresql://owner:pw@localhost/spotless"}, "DATABASE_MIGRATION_URL"),
        ({"REDIS_URL": "redis://localhost:6379/0"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://0.0.0.0:6379/0"}, "REDIS_URL"),
        ({"RATE_LIMIT_REDIS_URL": "redis://127.0.0.1:6380/0"}, "RATE_LIMIT_REDIS_URL"),
        ({"AUTH_PASSWORD_RESET_URL": "http://localhost:3000/reset-password"}, "AUTH_PASSWORD_RESET_URL"),
        ({"AUTH_INVITATION_URL": "http://localhost:3000/invitations"}, "AUTH_INVITATION_URL"),
        ({"SMTP_HOST": "127.0.0.1"}, "SMTP_HOST"),
        ({"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS"),
        ({"ALLOWED_HOSTS": "api.spotless.example,*"}, "ALLOWED_HOSTS"),
        ({"METRICS_TOKEN": ""}, "METRICS_TOKEN"),
        ({"METRICS_TOKEN": "tttttttttttttttttttttttt"}, "METRICS_TOKEN"),
        ({"AUTH_SECRET_KEY": "k" * 48}, "AUTH_SECRET_KEY"),
        ({"AUTH_SECRET_KEY": "abcdefghijklmnopqrstuvwxyzabcdefgh"}, "AUTH_SECRET_KEY"),
        ({"AUTH_SECRET_KEY": "Spotless2024!Spotless2024!Spotless"}, "AUTH_SECRET_KEY"),
        ({"AUTH_SECRET_KEY": "dev-insecure-secret-change-me-0123456789"}, "AUTH_SECRET_KEY"),
        ({"SMTP_USERNAME": "mailer"}, "SMTP_PASSWORD"),
        ({"SMTP_USERNAME": "mailer", "SMTP_PASSWORD": "changeme"}, "SMTP_PASSWORD"),
    ],
)
def test_prod_refuses_an_unsafe_setting_naming_it(env, name):
    message = _refused({**PROD, **env})
    assert name in message, message
    # Only that setting is refused: the rest of PROD is fine.
    assert message.count("\n- ") == 1, message


def test_every_problem_is_listed_at_once():
    message = _refused(
        {**PROD, "EMAIL_MODE": "log", "ALLOWED_HOSTS": "*", "REDIS_URL": "redis://localhost/0", "METRICS_TOKEN": ""}
    )
    for name in ("EMAIL_MODE", "ALLOWED_HOSTS", "REDIS_URL", "METRICS_TOKEN"):
        assert name in message


def test_metrics_may_be_switched_off_instead_of_protected():
    settings = load_settings({**PROD, "METRICS_TOKEN": "", "METRICS_ENABLED": "false"})
    assert not settings.metrics.enabled


def test_email_may_be_off_in_prod_but_not_logged():
    assert load_settings({**PROD, "EMAIL_MODE": "off"}).email.mode == "off"


def test_a_deliberate_local_sidecar_is_allowed_by_name():
    env = {**PROD, "DATABASE_URL": "postgresql://spotless:pw@127.0.0.1:5432/spotless"}
    del env["DATABASE_MIGRATION_URL"]  # defaults to DATABASE_URL
    assert "DATABASE_URL" in _refused(env)
    settings = load_settings({**env, "ALLOW_LOOPBACK_URLS": "DATABASE_URL,DATABASE_MIGRATION_URL"})
    assert "127.0.0.1" in settings.database.url
    # Naming one variable allows that one only.
    assert "REDIS_URL" in _refused(
        {**env, "ALLOW_LOOPBACK_URLS": "DATABASE_URL,DATABASE_MIGRATION_URL", "REDIS_URL": "redis://localhost/0"}
    )


def test_outside_prod_local_services_and_log_email_are_fine():
    settings = load_settings({**BASE, "DATABASE_URL": "postgresql://u@localhost/x", "EMAIL_MODE": "log"})
    assert settings.email.mode == "log"


@pytest.mark.parametrize("make", [lambda: secrets.token_hex(16), lambda: secrets.token_urlsafe(32)])
def test_generated_secrets_pass_the_entropy_check(make):
    for _ in range(2_000):
        value = make()
        assert secret_weakness(value) is None, value
    for _ in range(2_000):
        token = secrets.token_urlsafe(12)
        assert secret_weakness(token, 16) is None, token
