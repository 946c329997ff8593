"""Messaging's part of the settings (email, texts, unsubscribe links); spotless.settings
reads it with the rest and keeps it apart for size, as it does Stripe's."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta


def _var(name: str, **bounds: Any) -> Meta:
    """As spotless.settings._var: the bounds, and the variable named in errors."""
    return Meta(extra={"env": name}, **bounds)


class EmailSettings(msgspec.Struct, frozen=True, kw_only=True):
    # `sendgrid` is SendGrid's SMTP relay: user "apikey", SENDGRID_API_KEY as the password.
    mode: Literal["smtp", "sendgrid", "log", "off"] = "log"
    from_address: str = "no-reply@spotless.local"
    from_name: str = "Spotless"
    smtp_host: str = "127.0.0.1"
    smtp_port: Annotated[int, _var("SMTP_PORT", ge=1, le=65_535)] = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: Annotated[float, _var("SMTP_TIMEOUT_SECONDS", gt=0, le=300)] = 10.0
    # Put temporary passwords in the onboarding/reset emails (else the email only notifies).
    temp_passwords: bool = False
    sendgrid_api_key: str | None = None
    sendgrid_host: str = "smtp.sendgrid.net"
    # Temporary refusals: retried with a doubling backoff, dead-lettered after max_attempts.
    max_attempts: Annotated[int, _var("EMAIL_MAX_ATTEMPTS", ge=1, le=100)] = 8
    retry_backoff_seconds: Annotated[float, _var("EMAIL_RETRY_BACKOFF_SECONDS", ge=0, le=86_400)] = 30.0
    retry_backoff_max_seconds: Annotated[float, _var("EMAIL_RETRY_BACKOFF_MAX_SECONDS", ge=0, le=86_400)] = 3_600.0


class SmsSettings(msgspec.Struct, frozen=True, kw_only=True):
    mode: Literal["twilio", "log", "off"] = "log"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    # The platform's one sending number (E.164); STOP sent to it opts a number out everywhere.
    twilio_from_number: str | None = None
    # Tests point this at the local fake (tests/support/fake_twilio.py).
    twilio_api_base: Annotated[str, _var("TWILIO_API_BASE", pattern=r"^https?://[^\s/]+(:\d+)?/?$")] = (
        "https://api.twilio.com"
    )
    # The inbound webhook's public URL as Twilio calls it (its signature covers the URL); when
    # unset, the request's own URL is used (right unless a proxy rewrites it).
    twilio_webhook_url: str | None = None
    timeout_seconds: Annotated[float, _var("TWILIO_TIMEOUT_SECONDS", gt=0, le=120)] = 10.0


class MessagingConfig(msgspec.Struct, frozen=True, kw_only=True):
    sms: SmsSettings = msgspec.field(default_factory=SmsSettings)
    # Where one-click unsubscribe links point: this API's public origin (https in prod).
    public_base_url: Annotated[str, _var("MESSAGING_PUBLIC_BASE_URL", pattern=r"^https?://[^\s]+$")] = (
        "http://localhost:8000"
    )
    # Signs unsubscribe tokens; derived from AUTH_SECRET_KEY when unset.
    unsubscribe_secret: str | None = None
    # SendGrid's Signed Event Webhook verification key (base64 DER or PEM): bounces and deliveries
    # reported after SendGrid took an email (messaging/sendgrid_events.py). Unset: webhook refuses.
    sendgrid_webhook_public_key: str | None = None


def load_messaging_settings(env: Any, is_prod: bool) -> MessagingConfig:
    defaults = SmsSettings()
    # Texts are off in prod until Twilio is configured (log would put them in the logs).
    sms_default = "off" if is_prod else "log"
    return MessagingConfig(
        sms=SmsSettings(
            mode=_sms_mode(env.str("SMS_MODE", sms_default) or sms_default),
            twilio_account_sid=env.str("TWILIO_ACCOUNT_SID"),
            twilio_auth_token=env.str("TWILIO_AUTH_TOKEN"),
            twilio_from_number=env.str("TWILIO_FROM_NUMBER"),
            twilio_api_base=(env.str("TWILIO_API_BASE", defaults.twilio_api_base) or defaults.twilio_api_base).rstrip(
                "/"
            ),
            twilio_webhook_url=env.str("TWILIO_WEBHOOK_URL"),
            timeout_seconds=env.float("TWILIO_TIMEOUT_SECONDS", defaults.timeout_seconds),
        ),
        public_base_url=(env.str("MESSAGING_PUBLIC_BASE_URL", "http://localhost:8000") or "").rstrip("/"),
        unsubscribe_secret=env.str("MESSAGING_UNSUBSCRIBE_SECRET"),
        sendgrid_webhook_public_key=env.str("SENDGRID_WEBHOOK_PUBLIC_KEY"),
    )


def messaging_prod_problems(config: MessagingConfig, *, sendgrid_key_missing: bool) -> list[str]:
    problems = ["SENDGRID_API_KEY is required with EMAIL_MODE=sendgrid"] if sendgrid_key_missing else []
    # The default (a local origin) is left alone: only an explicitly set origin must be https.
    explicit_base_url = config.public_base_url != MessagingConfig().public_base_url
    if config.sms.mode == "log":
        problems.append("SMS_MODE=log writes texts to the logs; use twilio (or off) in prod")
    if config.sms.mode == "twilio":
        for name, value in (
            ("TWILIO_ACCOUNT_SID", config.sms.twilio_account_sid),
            ("TWILIO_AUTH_TOKEN", config.sms.twilio_auth_token),
            ("TWILIO_FROM_NUMBER", config.sms.twilio_from_number),
        ):
            if not value:
                problems.append(f"{name} is required with SMS_MODE=twilio")
        if not config.sms.twilio_api_base.startswith("https://"):
            problems.append("TWILIO_API_BASE must be https in prod")
    if explicit_base_url and not config.public_base_url.startswith("https://"):
        problems.append("MESSAGING_PUBLIC_BASE_URL must be https in prod (unsubscribe links, RFC 8058)")
    return problems


def _sms_mode(value: str) -> Literal["twilio", "log", "off"]:
    if value not in ("twilio", "log", "off"):
        from spotless.settings import ConfigError

        raise ConfigError(f"SMS_MODE must be one of twilio, log, off, got {value!r}")
    return value  # type: ignore[return-value]
