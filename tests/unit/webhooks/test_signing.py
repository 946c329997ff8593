"""Signatures as Standard Webhooks defines them, checked against the specification's own example
and against a verifier written from the specification (not from our signer)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

import pytest

from spotless.domain.webhooks import signing
from spotless.domain.webhooks.secret_store import new_secret, seal, secret_bytes, unseal


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The receiver's side, per the specification: any `v1,` signature of the list matching."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    for item in headers["webhook-signature"].split(" "):
        version, _, value = item.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


def test_the_specifications_example_signs_the_same() -> None:
    # The example of the Standard Webhooks specification (and its reference libraries' tests).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    got = signing.signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_during_a_rotation_either_secret_verifies() -> None:
    old, new = new_secret(), new_secret()
    body = b'{"type":"booking.created"}'
    headers = signing.headers([new, old], "msg_1", 1700000000, body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verify(old, headers, body) and verify(new, headers, body)
    assert not verify(new_secret(), headers, body)
    assert not verify(new, headers, body + b" ")


def test_secrets_have_the_standard_form() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and 24 <= len(secret_bytes(secret)) <= 64


def test_a_sealed_secret_opens_only_for_its_endpoint_and_key() -> None:
    org, endpoint = uuid.uuid4(), uuid.uuid4()
    secret = new_secret()
    sealed = seal("k" * 40, org, endpoint, secret)
    assert secret.encode() not in sealed
    assert unseal("k" * 40, org, endpoint, sealed) == secret
    with pytest.raises(Exception):  # noqa: B017 (cryptography's InvalidTag)
        unseal("k" * 40, org, uuid.uuid4(), sealed)
    with pytest.raises(Exception):  # noqa: B017
        unseal("x" * 40, org, endpoint, sealed)
