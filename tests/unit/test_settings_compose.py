"""compose.yaml runs the app with APP_ENV=prod: its environment must pass the production rules
of spotless.settings, or `docker compose up` stops at start-up."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import yaml

from spotless.settings import load_settings

COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"
_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?::(?P<op>[-?])(?P<arg>[^}]*))?\}")


def compose_environment(given: dict[str, str]) -> dict[str, str]:
    """The app containers' environment as compose would build it: `${X:-default}` takes the
    default unless `given` sets X; `${X:?message}` is a variable the operator must set, here
    to a strong random value (or `given`'s)."""
    app = yaml.safe_load(COMPOSE.read_text())["x-app"]
    env: dict[str, str] = {}
    for key, raw in app["environment"].items():

        def substitute(match: re.Match[str]) -> str:
            name, op, arg = match.group("name"), match.group("op"), match.group("arg")
            if name in given:
                return given[name]
            if op == "?":
                return secrets.token_urlsafe(32)
            return arg if op == "-" else ""

        env[key] = _INTERPOLATION.sub(substitute, str(raw))
    return env


def test_the_compose_file_is_read():
    env = compose_environment({})
    assert env["APP_ENV"] == "prod"
    assert env["DATABASE_URL"].startswith("postgresql://")


def test_compose_environment_starts_in_prod():
    # What an operator must name (compose stops with a message otherwise); secrets are generated.
    operator = {
        "AUTH_PASSWORD_RESET_URL": "https://app.cleaning.example/reset-password",
        "AUTH_INVITATION_URL": "https://app.cleaning.example/invitations",
        "STRIPE_CHECKOUT_SUCCESS_URL": "https://app.cleaning.example/pay/success",
        "STRIPE_CHECKOUT_CANCEL_URL": "https://app.cleaning.example/pay/cancel",
        "STRIPE_CONNECT_RETURN_URL": "https://app.cleaning.example/settings/payments",
        "STRIPE_CONNECT_REFRESH_URL": "https://app.cleaning.example/settings/payments/refresh",
        "BILLING_PAY_LINK_URL": "https://app.cleaning.example/pay",
        "SMTP_HOST": "smtp.mail.example",
    }
    settings = load_settings(compose_environment(operator))
    assert settings.email.mode == "smtp" and settings.metrics.token
