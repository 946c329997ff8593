from __future__ import annotations

import pytest

from spotless.settings import ConfigError, load_settings

BASE = {"DATABASE_URL": "postgresql://u:p@db:5432/spotless", "REDIS_URL": "redis://r:6379/0"}


def test_plain_postgres_url_is_accepted_and_made_async():
    settings = load_settings(BASE)
    assert settings.database.url == "postgresql+asyncpg://u:p@db:5432/spotless"
    assert load_settings({**BASE, "DATABASE_URL": "postgresql+asyncpg://x@y/z"}).database.url.startswith(
        "postgresql+asyncpg://"
    )


# What a production environment sets (tests/unit/test_settings_prod.py takes it apart).
PROD = {
    "APP_ENV": "prod",
    "DATABASE_URL": "postgresql://spotless:pw@db.internal:5432/spotless",
    "DATABASE_MIGRATION_URL": "postgresql://owner:pw@db.internal:5432/spotless",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "AUTH_SECRET_KEY": "Vb7q2mK9xR4tZp8wLc3nHs6yDf1gJk5a",
    "METRICS_TOKEN": "m3tr1cs-T0ken-9fQx",
    "EMAIL_MODE": "smtp",
    "SMTP_HOST": "smtp.mail.example",
    "ALLOWED_HOSTS": "api.spotless.example",
    "AUTH_PASSWORD_RESET_URL": "https://app.spotless.example/reset-password",
    "AUTH_INVITATION_URL": "https://app.spotless.example/invitations",
    "STRIPE_SECRET_KEY": "sk_live_51Hx9qT2eZvKYlo2C8mN4pR7sW3uV6bF",
    "STRIPE_WEBHOOK_SECRET": "whsec_Qx7mK2pL9vR4tN8wZc3bHs6yDf1gJk5a",
    "WEBHOOK_SECRET_KEY": "Vq3nR8tY2mK7pL4wZ9cB6hD1fG5jS0aX",
    "STRIPE_CHECKOUT_SUCCESS_URL": "https://app.spotless.example/pay/success",
    "STRIPE_CHECKOUT_CANCEL_URL": "https://app.spotless.example/pay/cancel",
    "STRIPE_CONNECT_RETURN_URL": "https://app.spotless.example/settings/payments",
    "STRIPE_CONNECT_REFRESH_URL": "https://app.spotless.example/settings/payments/refresh",
    "BILLING_PAY_LINK_URL": "https://app.spotless.example/pay",
}


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"AUTH_SECRET_KEY": ""}, "AUTH_SECRET_KEY"),
        ({"AUTH_SECRET_KEY": "change-me"}, "AUTH_SECRET_KEY"),
        ({"AUTH_SECRET_KEY": "short-but-not-placeholder"}, "AUTH_SECRET_KEY"),
        ({"METRICS_TOKEN": "abc"}, "METRICS_TOKEN"),
        ({"CORS_ORIGINS": "*"}, "CORS_ORIGINS"),
    ],
)
def test_prod_refuses_missing_or_weak_secrets_by_name(env, names):
    with pytest.raises(ConfigError, match=names):
        load_settings({**BASE, **PROD, **env})


def test_prod_starts_with_strong_secrets():
    settings = load_settings(PROD)
    assert settings.is_prod


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_POOL_SIZE", "ten"),
        ("JOB_HEARTBEAT_REQUIRED", "maybe"),
        ("APP_ENV", "staging"),
        ("DATABASE_URL", "mysql://x"),
    ],
)
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        load_settings({**BASE, name: value})


def test_missing_database_url_is_named():
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_settings({"REDIS_URL": "redis://r"})
