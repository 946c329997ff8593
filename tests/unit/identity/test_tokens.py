import uuid
from datetime import UTC, datetime, timedelta

import jwt

from spotless.domain.identity import tokens
from tests.conftest import make_settings

SETTINGS = make_settings(AUTH_ACCESS_TOKEN_TTL_MINUTES="15")


def _issue(**overrides):
    values = dict(
        user_id=uuid.uuid4(),
        org_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        email="a@example.com",
        session_expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    values.update(overrides)
    return values, tokens.issue_access_token(SETTINGS, **values)


def test_access_tokens_round_trip_and_expire_with_the_ttl():
    values, (token, expires) = _issue()
    claims = tokens.decode_access_token(SETTINGS, token)
    assert claims is not None
    assert (claims.user_id, claims.org_id, claims.session_id) == (
        values["user_id"],
        values["org_id"],
        values["session_id"],
    )
    assert timedelta(minutes=14) < expires - datetime.now(UTC) <= timedelta(minutes=15)
    assert tokens.peek_subject(SETTINGS, token) == f"user:{values['user_id']}"


def test_an_access_token_never_outlives_its_session():
    _, (_, expires) = _issue(session_expires_at=datetime.now(UTC) + timedelta(minutes=2))
    assert expires - datetime.now(UTC) <= timedelta(minutes=2)


def test_tampered_expired_and_foreign_tokens_are_rejected():
    _, (token, _) = _issue()
    head, payload, signature = token.split(".")
    assert tokens.decode_access_token(SETTINGS, f"{head}.{payload}.{signature[:-2]}xx") is None
    _, (old, _) = _issue()
    expired = jwt.encode(
        {**jwt.decode(old, options={"verify_signature": False}), "exp": int(datetime.now(UTC).timestamp()) - 60},
        SETTINGS.auth.secret_key,
        algorithm="HS256",
    )
    assert tokens.decode_access_token(SETTINGS, expired) is None
    other = make_settings(AUTH_SECRET_KEY="another-secret-that-is-long-enough-1234")
    assert tokens.decode_access_token(other, token) is None
    none_alg = jwt.encode(jwt.decode(token, options={"verify_signature": False}), key=None, algorithm="none")
    assert tokens.decode_access_token(SETTINGS, none_alg) is None
    assert tokens.peek_subject(SETTINGS, "") is None


def test_bearer_parsing():
    assert tokens.bearer_token("Bearer abc") == "abc"
    assert tokens.bearer_token("bearer  abc ") == "abc"
    assert tokens.bearer_token("Basic abc") is None
    assert tokens.bearer_token("Bearer") is None
    assert tokens.bearer_token(None) is None


def test_opaque_tokens_carry_their_scope():
    scope = uuid.uuid4()
    secret = tokens.new_secret()
    assert tokens.split(tokens.compose(scope, secret)) == (scope, secret)
    assert tokens.split("not-a-uuid.secret") is None
    assert tokens.split(f"{scope.hex}.") is None
    assert tokens.hash_secret(secret) != secret and len(tokens.hash_secret(secret)) == 64
