"""Signing up an organisation, and its settings under /v1/org."""

from __future__ import annotations

from sqlalchemy import text

from tests.support.identity import DEFAULT_PASSWORD, add_member, signup, unique_email


def _signup_body(**overrides) -> dict:
    body = {
        "org_name": "Bright Homes",
        "email": unique_email(),
        "password": DEFAULT_PASSWORD,
        "timezone": "America/Toronto",
        "currency": "CAD",
    }
    body.update(overrides)
    return body


async def test_signup_creates_the_organisation_and_its_owner_in_one_go(client, owner_engine):
    response = await client.post("/v1/auth/signup", json=_signup_body(org_name="Bright Homes Ltd.", locale="fr-CA"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["role"] == "owner" and body["access_token"] and body["refresh_token"]
    assert body["organization"]["slug"] == "bright-homes-ltd"
    org = (await client.get("/v1/org", headers={"Authorization": f"Bearer {body['access_token']}"})).json()
    assert org["timezone"] == "America/Toronto" and org["currency"] == "CAD" and org["locale"] == "fr-CA"
    async with owner_engine.connect() as conn:
        owners = (
            await conn.execute(
                text("SELECT count(*) FROM memberships WHERE org_id = :o AND role = 'owner' AND is_active"),
                {"o": org["id"]},
            )
        ).scalar_one()
    assert owners == 1


async def test_signup_validates_timezone_currency_slug_and_password(client):
    cases = {
        "timezone": _signup_body(timezone="Mars/Olympus"),
        "currency": _signup_body(currency="XYZ"),
        "slug": _signup_body(slug="Not A Slug!"),
        "locale": _signup_body(locale="english please"),
    }
    for field, body in cases.items():
        response = await client.post("/v1/auth/signup", json=body)
        assert response.status_code == 400, (field, response.text)
        assert response.json()["errors"][0]["field"] == field
    for weak in ("short1", "password123", "qwertyuiop"):
        response = await client.post("/v1/auth/signup", json=_signup_body(password=weak))
        assert response.status_code == 400, weak
        assert response.json()["type"] == "/problems/weak-password"
    lowercase_currency = await client.post("/v1/auth/signup", json=_signup_body(currency="eur"))
    assert lowercase_currency.status_code == 201
    assert lowercase_currency.json()["organization"]["currency"] == "EUR"


async def test_slugs_are_unique(client):
    first = await client.post("/v1/auth/signup", json=_signup_body(slug="sparkle"))
    assert first.status_code == 201
    taken = await client.post("/v1/auth/signup", json=_signup_body(slug="sparkle"))
    assert taken.status_code == 409 and taken.json()["type"] == "/problems/slug-taken"
    # A derived slug that collides gets a suffix instead of failing.
    derived = await client.post("/v1/auth/signup", json=_signup_body(org_name="Sparkle"))
    assert derived.status_code == 201
    assert derived.json()["organization"]["slug"].startswith("sparkle-")


async def test_an_email_has_one_account(client):
    owner = await signup(client)
    again = await client.post(
        "/v1/auth/signup", json=_signup_body(email=owner.email.upper(), password="another-password-42")
    )
    assert again.status_code == 409 and again.json()["type"] == "/problems/email-taken"
    # With the account's password, the same person may found a second organisation.
    second = await client.post("/v1/auth/signup", json=_signup_body(email=owner.email, password=owner.password))
    assert second.status_code == 201
    assert second.json()["user"]["id"] == str(owner.user_id)


async def test_update_settings_is_validated_and_audited(client):
    owner = await signup(client)
    patch = {
        "name": "Sparkle & Co",
        "timezone": "America/Vancouver",
        "tax_rate_bps": 1300,
        "business_hours": {"mon": [{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}]},
        "contact_email": "hello@sparkle.example",
        "contact_phone": "+1 604 555 0100",
    }
    response = await client.patch("/v1/org", json=patch, headers=owner.headers)
    assert response.status_code == 200, response.text
    org = response.json()
    assert org["timezone"] == "America/Vancouver" and org["tax_rate_bps"] == 1300
    assert org["business_hours"]["mon"][1] == {"start": "13:00", "end": "17:00"}
    assert org["currency"] == "CAD"  # untouched
    entries = (
        await client.get("/v1/admin/audit", params={"action": "organization.update"}, headers=owner.headers)
    ).json()["items"]
    assert len(entries) == 1
    assert entries[0]["before"]["timezone"] == "America/Toronto"
    assert entries[0]["after"]["timezone"] == "America/Vancouver"
    assert "currency" not in entries[0]["after"]  # only what changed
    # An identical patch changes nothing and records nothing.
    await client.patch("/v1/org", json={"tax_rate_bps": 1300}, headers=owner.headers)
    again = (
        await client.get("/v1/admin/audit", params={"action": "organization.update"}, headers=owner.headers)
    ).json()
    assert len(again["items"]) == 1


async def test_invalid_settings_are_400(client):
    owner = await signup(client)
    bad = [
        {"timezone": "Nowhere/Land"},
        {"currency": "DOLLARS"},
        {"tax_rate_bps": 20_000},
        {"business_hours": {"funday": [{"start": "08:00", "end": "09:00"}]}},
        {"business_hours": {"mon": [{"start": "17:00", "end": "08:00"}]}},
        {"business_hours": {"mon": [{"start": "08:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}]}},
        {"business_hours": {"mon": [{"start": "8am", "end": "12:00"}]}},
        {"unknown_field": 1},
    ]
    for body in bad:
        response = await client.patch("/v1/org", json=body, headers=owner.headers)
        assert response.status_code == 400, (body, response.text)


async def test_settings_need_settings_manage_but_any_member_reads_them(client):
    owner = await signup(client)
    worker = await add_member(client, owner, "worker")
    assert (await client.get("/v1/org", headers=worker.headers)).status_code == 200
    refused = await client.patch("/v1/org", json={"name": "Mine now"}, headers=worker.headers)
    assert refused.status_code == 403 and refused.json()["type"] == "/problems/forbidden"
