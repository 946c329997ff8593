"""Messaging's routes: template overrides (validated and rendered in the sandbox), preview,
settings, preferences, one-click unsubscribe, the message log; who may use them; and that no
organisation sees or changes another's."""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlsplit

import pytest

from spotless.domain.messaging.public import Recipient, request_message
from tests.support.factories.db import AppSessions
from tests.support.factories.scheduling import api_booking_id
from tests.support.identity import Member, add_member, signup
from tests.support.messaging import DIGEST, NOTICE, OFFICE_DIGEST, deliveries, job_runtime, run_deliveries
from tests.support.smtp_refusing import RefusingSmtpServer

pytestmark = pytest.mark.usefixtures("app_sessions")
T = "/v1/messaging/templates"


async def _client_id(client, owner: Member, **extra: object) -> str:
    body = {"name": "Ada Client", "email": "ada@example.com", **extra}
    response = await client.post("/v1/clients", json=body, headers=owner.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def _request(app_sessions: AppSessions, owner: Member, client_id: str, kind: str, *, subject_id=None, key="k1"):
    async with app_sessions.scoped(owner.org_id) as session:
        return await request_message(
            session,
            org_id=owner.org_id,
            kind=kind,
            recipient=Recipient(kind="client", id=uuid.UUID(client_id)),
            subject_type="booking",
            subject_id=uuid.UUID(str(subject_id)) if subject_id else uuid.UUID(int=9),
            send_key=key,
            params={"when": "Friday 9:00", "month": "March"},
        )


async def test_kinds_templates_override_preview_and_delete(client):
    owner = await signup(client, name="Sparkle Cleaning")
    kinds = (await client.get("/v1/messaging/kinds", headers=owner.headers)).json()
    notice = next(k for k in kinds if k["name"] == NOTICE.name)
    assert notice == {
        "name": "test.notice",
        "audience": "client",
        "transactional": True,
        "channels": ["email", "sms"],
        "overridden": False,
    }
    read = (await client.get(f"{T}/test.notice", headers=owner.headers)).json()
    assert read["override"] is None
    assert read["defaults"]["subject"].startswith("Visit confirmed for {{ visit.when }}")
    assert {"visit", "org", "recipient"} <= set(read["variables"])

    body = {"subject": "See you {{ visit.when }}!", "html": "<p>Dear {{ recipient.name }} — {{ org.name }}</p>"}
    saved = await client.put(f"{T}/test.notice", json=body, headers=owner.headers)
    assert saved.status_code == 200, saved.text
    assert saved.json()["override"]["subject"] == body["subject"]
    preview = (await client.get("/v1/messaging/kinds/test.notice/preview", headers=owner.headers)).json()
    assert preview["overridden"] is True
    assert preview["subject"] == "See you Tuesday 10:00!"
    assert "Dear Ada Client — Sparkle Cleaning" in preview["html"]
    assert "Your visit on Tuesday 10:00 is confirmed." in preview["text"]  # the part not overridden
    assert preview["sms"] == "Sparkle Cleaning: your visit on Tuesday 10:00 is confirmed."
    assert next(
        k for k in (await client.get("/v1/messaging/kinds", headers=owner.headers)).json() if k["name"] == NOTICE.name
    )["overridden"]

    assert (await client.delete(f"{T}/test.notice", headers=owner.headers)).status_code == 204
    assert (await client.get(f"{T}/test.notice", headers=owner.headers)).json()["override"] is None
    assert (await client.get("/v1/messaging/kinds/test.notice/preview", headers=owner.headers)).json()["subject"] == (
        "Visit confirmed for Tuesday 10:00"
    )
    digest = (await client.get("/v1/messaging/kinds/test.digest/preview", headers=owner.headers)).json()
    assert "Unsubscribe" in digest["text"]
    assert (await client.get(f"{T}/no.such.kind", headers=owner.headers)).status_code == 404
    assert (await client.get("/v1/messaging/kinds/no.such/preview", headers=owner.headers)).status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"text": "Hello {{ visit.price }}"}, "text", "price"),
        ({"subject": "{{ secret_key }}"}, "subject", "secret_key"),
        ({"html": "{% if %}broken"}, "html", "line 1"),
        ({"text": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}, "text", "not allowed"),
        ({"text": "{{ cycler.__init__.__globals__ }}"}, "text", "not allowed"),
        ({"text": "{{ visit.update({'when': 'x'}) }}"}, "text", "not allowed"),
        ({"subject": "{{ range.__self__ }}"}, "subject", ""),
    ],
)
async def test_an_override_that_does_not_compile_or_reaches_outside_is_a_422(client, body, field, says):
    owner = await signup(client)
    response = await client.put(f"{T}/test.notice", json=body, headers=owner.headers)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "/problems/invalid-template"
    [error] = problem["errors"]
    assert error["field"] == field and says in error["message"]
    assert (await client.get(f"{T}/test.notice", headers=owner.headers)).json()["override"] is None


async def test_an_sms_wording_for_an_email_only_kind_is_refused(client):
    owner = await signup(client)
    response = await client.put(f"{T}/test.digest", json={"sms": "hi"}, headers=owner.headers)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "sms"


async def test_overrides_stay_in_their_organisation(client):
    a, b = await signup(client), await signup(client)
    assert (await client.put(f"{T}/test.notice", json={"subject": "B only"}, headers=b.headers)).status_code == 200
    assert (await client.get("/v1/messaging/kinds/test.notice/preview", headers=a.headers)).json()["subject"] == (
        "Visit confirmed for Tuesday 10:00"
    )
    assert (await client.get(f"{T}/test.notice", headers=a.headers)).json()["override"] is None
    assert (await client.delete(f"{T}/test.notice", headers=a.headers)).status_code == 204
    assert (await client.get(f"{T}/test.notice", headers=b.headers)).json()["override"]["subject"] == "B only"


async def test_only_settings_managers_touch_templates_and_settings(client):
    owner = await signup(client)
    admin = await add_member(client, owner, "admin")
    for role in ("dispatcher", "finance", "viewer", "worker"):
        member = await add_member(client, owner, role)
        for method, url in (
            ("GET", "/v1/messaging/kinds"),
            ("GET", f"{T}/test.notice"),
            ("PUT", f"{T}/test.notice"),
            ("DELETE", f"{T}/test.notice"),
            ("GET", "/v1/messaging/kinds/test.notice/preview"),
            ("GET", "/v1/messaging/settings"),
            ("PUT", "/v1/messaging/settings"),
        ):
            response = await client.request(method, url, json={} if method == "PUT" else None, headers=member.headers)
            assert response.status_code == 403, (role, method, url)
    assert (await client.get("/v1/messaging/settings", headers=admin.headers)).status_code == 200


async def test_settings_reply_to_logo_and_quiet_hours(client):
    owner = await signup(client)
    assert (await client.get("/v1/messaging/settings", headers=owner.headers)).json() == {
        "reply_to": None,
        "logo_url": None,
        "quiet_start": "21:00",
        "quiet_end": "08:00",
    }
    body = {"reply_to": "office@sparkle.example", "logo_url": "https://cdn.example/logo.png", "quiet_start": "22:30"}
    saved = await client.put("/v1/messaging/settings", json=body, headers=owner.headers)
    assert saved.status_code == 200, saved.text
    assert saved.json()["quiet_start"] == "22:30" and saved.json()["quiet_end"] == "08:00"
    again = (await client.get("/v1/messaging/settings", headers=owner.headers)).json()
    assert again["quiet_start"] == "22:30"
    late = await client.put("/v1/messaging/settings", json={"quiet_start": "24:00"}, headers=owner.headers)
    assert late.status_code == 400 and late.json()["errors"][0]["field"] == "quiet_start"
    half = await client.put("/v1/messaging/settings", json={"quiet_end": None}, headers=owner.headers)
    assert half.status_code == 400 and half.json()["errors"][0]["field"] == "quiet_end"
    bad = await client.put("/v1/messaging/settings", json={"logo_url": "javascript:alert(1)"}, headers=owner.headers)
    assert bad.status_code == 400
    preview = (await client.get("/v1/messaging/kinds/test.notice/preview", headers=owner.headers)).json()
    assert 'src="https://cdn.example/logo.png"' in preview["html"] and "office@sparkle.example" in preview["text"]


async def test_preferences_and_sms_consent(client):
    owner = await signup(client)
    client_id = await _client_id(client, owner, phone="416-555-0100")
    url = f"/v1/clients/{client_id}/message-preferences"
    read = (await client.get(url, headers=owner.headers)).json()
    assert read["sms_consent"] is False and read["sms_opted_out"] is False
    notice = next(p for p in read["preferences"] if p["kind"] == NOTICE.name)
    assert notice == {"kind": "test.notice", "channels": ["email", "sms"], "channel": "email", "default": True}
    changed = await client.put(f"{url}/test.notice", json={"channel": "sms"}, headers=owner.headers)
    assert changed.status_code == 200
    assert next(p for p in changed.json()["preferences"] if p["kind"] == NOTICE.name)["default"] is False
    refused = await client.put(f"{url}/test.digest", json={"channel": "sms"}, headers=owner.headers)
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "channel"
    consent = await client.put(f"/v1/clients/{client_id}/sms-consent", json={"consented": True}, headers=owner.headers)
    assert consent.status_code == 200 and consent.json()["sms_consent"] is True
    assert (await client.put(f"{url}/no.such", json={"channel": "none"}, headers=owner.headers)).status_code == 404

    no_phone = await _client_id(client, owner)
    response = await client.put(f"/v1/clients/{no_phone}/sms-consent", json={"consented": True}, headers=owner.headers)
    assert response.status_code == 400

    worker = await add_member(client, owner, "worker")
    assert (await client.get(url, headers=worker.headers)).status_code == 403
    viewer = await add_member(client, owner, "viewer")
    assert (await client.get(url, headers=viewer.headers)).status_code == 200
    assert (await client.put(f"{url}/test.notice", json={"channel": "none"}, headers=viewer.headers)).status_code == 403

    other = await signup(client)
    assert (await client.get(url, headers=other.headers)).status_code == 404
    assert (await client.put(f"{url}/test.notice", json={"channel": "none"}, headers=other.headers)).status_code == 404


async def test_one_click_unsubscribe(client, owner_engine, app_sessions, refusing_smtp: RefusingSmtpServer):
    owner = await signup(client)
    client_id = await _client_id(client, owner)
    await _request(app_sessions, owner, client_id, DIGEST.name)
    async with job_runtime(**refusing_smtp.env(MESSAGING_PUBLIC_BASE_URL="https://api.spotless.test")):
        await run_deliveries(owner_engine)
    [received] = refusing_smtp.messages
    header = received.message["List-Unsubscribe"]
    assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = re.fullmatch(r"<(https://api\.spotless\.test/v1/messaging/unsubscribe/[\w.-]+)>", header)
    assert link, header
    assert link.group(1) in received.body
    path = urlsplit(link.group(1)).path

    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert (await client.post(tampered, content=b"List-Unsubscribe=One-Click")).status_code == 404
    # As a mail provider posts it (RFC 8058): no session, a form body.
    done = await client.post(
        path, content=b"List-Unsubscribe=One-Click", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert done.status_code == 200, done.text
    assert done.json() == {"unsubscribed": True, "kind": "test.digest"}
    assert (await client.post(path, content=b"List-Unsubscribe=One-Click")).status_code == 200  # again: the same
    prefs = (await client.get(f"/v1/clients/{client_id}/message-preferences", headers=owner.headers)).json()
    assert next(p for p in prefs["preferences"] if p["kind"] == DIGEST.name)["channel"] == "none"

    await _request(app_sessions, owner, client_id, DIGEST.name, key="k2")
    async with job_runtime(**refusing_smtp.env()):
        await run_deliveries(owner_engine)
    assert len(refusing_smtp.messages) == 1
    latest = [r for r in await deliveries(owner_engine, owner.org_id) if r.send_key == "k2"]
    assert latest[0].status == "skipped" and latest[0].error == "preference: none"


async def test_an_office_member_unsubscribes_from_a_digest(
    client, owner_engine, app_sessions, refusing_smtp: RefusingSmtpServer
):
    from spotless.domain.messaging.public import office_recipients

    owner = await signup(client, name="Digest Co")
    for key in ("march", "april"):
        async with app_sessions.scoped(owner.org_id) as session:
            [to] = await office_recipients(session, owner.org_id, "settings.manage")
            await request_message(
                session,
                org_id=owner.org_id,
                kind=OFFICE_DIGEST.name,
                recipient=to,
                subject_type="organization",
                subject_id=owner.org_id,
                send_key=key,
            )
        async with job_runtime(**refusing_smtp.env()):
            await run_deliveries(owner_engine)
        if key == "march":
            [received] = refusing_smtp.messages
            assert received.rcpt_tos == [owner.email]
            path = urlsplit(received.message["List-Unsubscribe"].strip("<>")).path
            assert (await client.post(path, content=b"List-Unsubscribe=One-Click")).json()["kind"] == OFFICE_DIGEST.name
    assert len(refusing_smtp.messages) == 1
    april = [r for r in await deliveries(owner_engine, owner.org_id) if r.send_key == "april"]
    assert april[0].status == "skipped" and april[0].error == "preference: none"


async def test_transactional_mail_has_no_unsubscribe(client, owner_engine, app_sessions, refusing_smtp):
    owner = await signup(client)
    client_id = await _client_id(client, owner)
    await _request(app_sessions, owner, client_id, NOTICE.name)
    async with job_runtime(**refusing_smtp.env()):
        await run_deliveries(owner_engine)
    [received] = refusing_smtp.messages
    assert received.message["List-Unsubscribe"] is None and "nsubscribe" not in received.body


async def test_the_message_log_per_booking_and_client(client, owner_engine, app_sessions):
    owner = await signup(client)
    booking_id = await api_booking_id(client, owner)
    client_id = await _client_id(client, owner)
    await _request(app_sessions, owner, client_id, NOTICE.name, subject_id=booking_id)
    async with job_runtime():
        await run_deliveries(owner_engine)
    log = await client.get(f"/v1/bookings/{booking_id}/messages", headers=owner.headers)
    assert log.status_code == 200, log.text
    items = {i["channel"]: i for i in log.json()["items"]}
    assert items["email"]["status"] == "logged" and items["email"]["to"] == "ada@example.com"
    assert items["email"]["summary"] == "Visit confirmed for Friday 9:00" and items["email"]["kind"] == "test.notice"
    assert items["sms"]["status"] == "skipped" and items["sms"]["reason"] == "preference: email"
    assert items["email"]["finished_at"] is not None
    by_client = (await client.get(f"/v1/clients/{client_id}/messages", headers=owner.headers)).json()["items"]
    assert {i["id"] for i in by_client} == {i["id"] for i in items.values()}
    assert (await client.get(f"/v1/clients/{client_id}/messages?limit=1", headers=owner.headers)).json()["items"][0][
        "id"
    ] in {i["id"] for i in items.values()}

    viewer = await add_member(client, owner, "viewer")
    assert (await client.get(f"/v1/bookings/{booking_id}/messages", headers=viewer.headers)).status_code == 200
    worker = await add_member(client, owner, "worker")
    assert (await client.get(f"/v1/bookings/{booking_id}/messages", headers=worker.headers)).status_code == 403
    assert (await client.get(f"/v1/clients/{client_id}/messages", headers=worker.headers)).status_code == 403

    other = await signup(client)
    assert (await client.get(f"/v1/bookings/{booking_id}/messages", headers=other.headers)).status_code == 404
    assert (await client.get(f"/v1/clients/{client_id}/messages", headers=other.headers)).status_code == 404
    assert (
        await client.get("/v1/clients/" + str(uuid.uuid4()) + "/messages", headers=owner.headers)
    ).status_code == 404
