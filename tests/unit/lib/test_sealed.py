"""Integration tokens at rest: the first key seals, every key of the ring opens, a ciphertext only
opens for the row (aad) it was sealed for, and tampering or an unknown key is refused."""

from __future__ import annotations

import pytest

from spotless.lib.sealed import KeyRing, KeyRingError, SealError, generate_key_entry, parse_key_ring

OLD = generate_key_entry("k1")
NEW = generate_key_entry("k2")


def test_a_sealed_token_opens_for_its_row_and_does_not_show_the_plain_text():
    ring = KeyRing.from_spec(OLD)
    sealed = ring.seal("ya29.secret-access-token", aad="org:conn:access")
    assert "secret" not in sealed
    assert sealed.startswith("v1.k1.")
    assert ring.unseal(sealed, aad="org:conn:access") == "ya29.secret-access-token"
    # Same plain text twice seals differently (random nonce).
    assert ring.seal("x", aad="a") != ring.seal("x", aad="a")


def test_a_token_copied_to_another_row_does_not_open():
    ring = KeyRing.from_spec(OLD)
    sealed = ring.seal("refresh-1", aad="orgA:conn1:refresh")
    with pytest.raises(SealError):
        ring.unseal(sealed, aad="orgB:conn1:refresh")
    with pytest.raises(SealError):
        ring.unseal(sealed, aad="orgA:conn1:access")


def test_rotation_new_key_seals_old_key_still_opens():
    old_ring = KeyRing.from_spec(OLD)
    before = old_ring.seal("refresh-old", aad="r")
    rotated = KeyRing.from_spec(f"{NEW},{OLD}")
    assert rotated.unseal(before, aad="r") == "refresh-old"
    assert rotated.needs_reseal(before)
    after = rotated.seal("refresh-new", aad="r")
    assert after.startswith("v1.k2.")
    assert not rotated.needs_reseal(after)
    # Once the old key is dropped, its ciphertexts no longer open: rows must be resealed first.
    with pytest.raises(SealError, match="k1"):
        KeyRing.from_spec(NEW).unseal(before, aad="r")


def test_tampered_or_malformed_tokens_are_refused():
    ring = KeyRing.from_spec(OLD)
    sealed = ring.seal("token", aad="r")
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    for bad in (flipped, "v1.k1", "v2" + sealed[2:], "v1.k1.!!!"):
        with pytest.raises(SealError):
            ring.unseal(bad, aad="r")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nokid", "kid:base64url"),
        ("k1:" + "QUFB", "32 bytes"),
        (f"{OLD},{OLD}", "twice"),
        ("bad kid:" + OLD.split(":")[1], "kid:base64url"),
    ],
)
def test_a_malformed_ring_is_refused_without_showing_the_key(spec, message):
    with pytest.raises(KeyRingError, match=message) as caught:
        parse_key_ring(spec)
    assert OLD.split(":")[1] not in str(caught.value)


def test_an_empty_ring_cannot_seal():
    with pytest.raises(KeyRingError):
        KeyRing.from_spec("")
