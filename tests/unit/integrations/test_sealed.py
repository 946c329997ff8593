"""The key ring that seals integration tokens: AES-256-GCM, bound to its row, rotation (the first
key seals, every key opens), and errors that never carry key material or the value."""

from __future__ import annotations

import pytest

from spotless.lib.sealed import KeyRing, SealedError, generate_key


def test_a_sealed_value_opens_only_for_its_row_and_untouched() -> None:
    ring = KeyRing.parse(generate_key("k1"))
    sealed = ring.seal("rt-secret-value", aad="org:conn:refresh")
    assert "rt-secret-value" not in sealed and sealed.startswith("v1.k1.")
    assert ring.unseal(sealed, aad="org:conn:refresh") == "rt-secret-value"
    assert ring.seal("rt-secret-value", aad="org:conn:refresh") != sealed  # a fresh nonce each time
    with pytest.raises(SealedError):
        ring.unseal(sealed, aad="org:other-conn:refresh")  # copied onto another row
    with pytest.raises(SealedError):
        ring.unseal(sealed, aad="org:conn:access")  # or onto another purpose
    version, kid, payload = sealed.split(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    with pytest.raises(SealedError):
        ring.unseal(f"{version}.{kid}.{flipped}", aad="org:conn:refresh")


def test_rotation_old_key_reads_new_key_writes() -> None:
    old, new = generate_key("old"), generate_key("new")
    before = KeyRing.parse(old)
    sealed_before = before.seal("token", aad="a")
    during = KeyRing.parse(f"{new},{old}")
    assert during.unseal(sealed_before, aad="a") == "token" and during.needs_reseal(sealed_before)
    sealed_during = during.seal("token", aad="a")
    assert sealed_during.startswith("v1.new.") and not during.needs_reseal(sealed_during)
    assert KeyRing.parse(new).unseal(sealed_during, aad="a") == "token"
    with pytest.raises(SealedError, match="no longer lists"):
        KeyRing.parse(new).unseal(sealed_before, aad="a")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no key"),
        ("nokid", "kid:base64url"),
        ("k1:c2hvcnQ", "32 bytes"),
        ("k 1:" + generate_key("x").split(":")[1], "kid:base64url"),
        ("k1:!!!notbase64!!!", "base64url"),
    ],
)
def test_a_bad_ring_is_refused_without_showing_the_key(spec: str, message: str) -> None:
    with pytest.raises(SealedError, match=message) as refused:
        KeyRing.parse(spec)
    secret = spec.partition(":")[2]
    assert not secret or secret not in str(refused.value)


def test_the_same_kid_twice_is_refused_and_repr_hides_keys() -> None:
    key = generate_key("k1")
    with pytest.raises(SealedError, match="twice"):
        KeyRing.parse(f"{key},{generate_key('k1')}")
    assert key.split(":")[1] not in repr(KeyRing.parse(key))
