"""Access tokens are verified once per process; what is accepted does not change."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from spotless.domain.identity import authn, tokens
from spotless.domain.identity.authn import VerifiedTokens
from tests.conftest import make_settings

SETTINGS = make_settings(AUTH_ACCESS_TOKEN_TTL_MINUTES="15")


def _issue(minutes: float = 15) -> tuple[uuid.UUID, str]:
    user_id = uuid.uuid4()
    token, _ = tokens.issue_access_token(
        SETTINGS,
        user_id=user_id,
        org_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        email="a@example.com",
        session_expires_at=datetime.now(UTC) + timedelta(minutes=minutes),
    )
    return user_id, token


def test_a_token_is_decoded_once_and_shared_with_the_rate_limiter(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = authn.decode_access_token
    monkeypatch.setattr(authn, "decode_access_token", lambda s, t: calls.append(t) or real(s, t))
    cache = VerifiedTokens(SETTINGS)
    user_id, token = _issue()
    assert cache.peek_subject(SETTINGS, token) == f"user:{user_id}"
    claims = cache.claims(token)
    assert claims is not None and claims.user_id == user_id
    assert calls == [token]


def test_bad_tokens_are_refused_every_time_and_never_kept() -> None:
    cache = VerifiedTokens(SETTINGS)
    _, token = _issue()
    forged = token[:-2] + ("xx" if not token.endswith("xx") else "yy")
    assert cache.claims(forged) is None and cache.claims(forged) is None
    assert cache.peek_subject(SETTINGS, forged) is None
    assert len(cache._claims) == 0


def test_a_kept_token_past_its_expiry_is_verified_again(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [datetime.now(UTC).timestamp()]
    cache = VerifiedTokens(SETTINGS, clock=lambda: now[0])
    _, token = _issue(minutes=1)
    assert cache.claims(token) is not None
    now[0] += 120
    monkeypatch.setattr(authn, "decode_access_token", lambda s, t: None)  # PyJWT: expired
    assert cache.claims(token) is None
    assert token not in cache._claims


def test_the_cache_is_bounded() -> None:
    cache = VerifiedTokens(SETTINGS, size=2)
    first, second, third = (_issue()[1] for _ in range(3))
    for token in (first, second, third):
        assert cache.claims(token) is not None
    assert list(cache._claims) == [second, third]
