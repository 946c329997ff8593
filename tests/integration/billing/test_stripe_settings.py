"""Stripe settings: explicit retries and a time budget by default, secrets required in prod."""

from __future__ import annotations

import pytest

from spotless.settings import ConfigError, load_settings
from tests.unit.test_settings import BASE, PROD


def test_defaults_retry_twice_within_a_time_budget():
    stripe = load_settings(BASE).stripe
    assert stripe.max_network_retries == 2  # the library's own default is no retry at all
    assert 0 < stripe.timeout_seconds <= 30 and stripe.circuit_failure_threshold >= 1
    assert stripe.api_base == "https://api.stripe.com"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"STRIPE_SECRET_KEY": ""}, "STRIPE_SECRET_KEY"),
        ({"STRIPE_SECRET_KEY": "sk_test_spotless_placeholder"}, "STRIPE_SECRET_KEY"),
        ({"STRIPE_WEBHOOK_SECRET": ""}, "STRIPE_WEBHOOK_SECRET"),
        ({"STRIPE_WEBHOOK_SECRET": "whsec_short"}, "STRIPE_WEBHOOK_SECRET"),
        ({"STRIPE_API_BASE": "http://stripe.internal"}, "STRIPE_API_BASE"),
        ({"STRIPE_CHECKOUT_SUCCESS_URL": "http://localhost:3000/pay/success"}, "STRIPE_CHECKOUT_SUCCESS_URL"),
        ({"STRIPE_CONNECT_RETURN_URL": "http://127.0.0.1/settings"}, "STRIPE_CONNECT_RETURN_URL"),
    ],
)
def test_prod_refuses_missing_secrets_and_local_pages_by_name(env, name):
    with pytest.raises(ConfigError) as refused:
        load_settings({**PROD, **env})
    assert name in str(refused.value)
    assert str(refused.value).count("\n- ") == 1  # only that one


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STRIPE_TIMEOUT_SECONDS", "0"),
        ("STRIPE_MAX_NETWORK_RETRIES", "-1"),
        ("STRIPE_CIRCUIT_FAILURE_THRESHOLD", "0"),
        ("STRIPE_CHECKOUT_EXPIRES_MINUTES", "10"),
        ("STRIPE_API_BASE", "ftp://x"),
    ],
)
def test_a_value_out_of_range_is_refused_naming_the_variable(name, value):
    with pytest.raises(ConfigError) as refused:
        load_settings({**BASE, name: value})
    assert str(refused.value).startswith(f"{name}: ")
