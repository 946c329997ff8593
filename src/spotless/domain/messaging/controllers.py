"""Messaging's routes.

- /v1/messaging/kinds, /templates/{kind}, /kinds/{kind}/preview, /settings: the organisation's
  wording, layout and quiet hours (settings.manage).
- /v1/clients/{id}/message-preferences (contacts.view / contacts.edit) and
  /v1/workers/{id}/message-preferences (workers.contact.view / users.manage): channel per kind and
  consent to texts.
- /v1/bookings/{id}/messages, /v1/clients/{id}/messages: the message log (contacts.view).
- Public: POST /v1/messaging/unsubscribe/{token} (RFC 8058 one-click; the signed token is the
  credential) and POST /v1/messaging/twilio/inbound (Twilio's signature is the authentication);
  POST /v1/messaging/twilio/status/{org}/{delivery}: the status callback of a text we sent
  (signed the same way), which marks it delivered or bounced (reports.py); POST
  /v1/messaging/sendgrid/events: SendGrid's signed Event Webhook, the same for email.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from spotless.db.engine import apply_org_now
from spotless.domain.identity.public import Principal
from spotless.domain.messaging import (
    log,
    org_settings,
    preferences,
    reports,
    sendgrid_events,
    templates_admin,
    twilio_inbound,
)
from spotless.domain.messaging.schemas import (
    KindRead,
    MessageLog,
    MessagingSettingsRead,
    MessagingSettingsUpdate,
    PreferenceRead,
    PreferencesRead,
    PreferenceUpdate,
    PreviewRead,
    SmsConsentUpdate,
    TemplateRead,
    TemplateUpdate,
    UnsubscribeRead,
)
from spotless.domain.messaging.unsubscribe import read_token
from spotless.lib.errors import Problem, not_found, problems
from spotless.settings import Settings

SETTINGS = {"permission": "settings.manage"}
LOG = {"permission": "contacts.view"}
# The token is the credential (its HMAC); mail providers post to it without any session.
PUBLIC_UNSUBSCRIBE = {"public": True, "rate_limit": "public"}
# As Stripe's webhook: Twilio posts from a few addresses; its signature is what protects the route.
PUBLIC_TWILIO = {"public": True, "rate_limit": "exempt"}
PUBLIC_SENDGRID = {"public": True, "rate_limit": "exempt"}  # likewise, its ECDSA signature
Limit = Annotated[int, Parameter(ge=1, le=200, description="At most this many entries, newest first")]


class MessagingController(Controller):
    path = "/v1/messaging"
    tags = ["messaging"]

    @get(
        "/kinds",
        operation_id="listMessageKinds",
        opt=SETTINGS,
        responses=problems(),
        summary="Every message kind, its audience and channels, and whether the organisation overrides its wording",
    )
    async def list_kinds(self, db_session: AsyncSession) -> list[KindRead]:
        return await templates_admin.list_kinds(db_session)

    @get(
        "/templates/{kind:str}",
        operation_id="getMessageTemplate",
        opt=SETTINGS,
        responses=problems(404),
        summary="A kind's default wording, the organisation's override (if any) and the variables it may use",
    )
    async def get_template(self, db_session: AsyncSession, kind: str) -> TemplateRead:
        return await templates_admin.read_template(db_session, kind)

    @put(
        "/templates/{kind:str}",
        operation_id="putMessageTemplate",
        opt=SETTINGS,
        responses=problems(400, 404, 422),
        summary="Override a kind's wording (Jinja2, rendered in a sandbox). 422 `invalid-template` with "
        "field detail when a part does not compile or uses a variable the kind does not have",
    )
    async def put_template(
        self, db_session: AsyncSession, principal: Principal, kind: str, data: TemplateUpdate
    ) -> TemplateRead:
        return await templates_admin.save_template(db_session, principal.org_id, kind, data)

    @delete(
        "/templates/{kind:str}",
        operation_id="deleteMessageTemplate",
        opt=SETTINGS,
        responses=problems(404),
        summary="Back to the default wording",
    )
    async def delete_template(self, db_session: AsyncSession, kind: str) -> None:
        await templates_admin.delete_template(db_session, kind)

    @get(
        "/kinds/{kind:str}/preview",
        operation_id="previewMessage",
        opt=SETTINGS,
        responses=problems(404, 422),
        summary="The kind rendered for a sample (booking, invoice...) with the organisation's wording and layout",
    )
    async def preview(self, db_session: AsyncSession, principal: Principal, kind: str) -> PreviewRead:
        return await templates_admin.preview(db_session, principal.org_id, kind)

    @get(
        "/settings",
        operation_id="getMessagingSettings",
        opt=SETTINGS,
        responses=problems(),
        summary="Reply-to, logo and the quiet hours for texts",
    )
    async def get_settings(self, db_session: AsyncSession) -> MessagingSettingsRead:
        return await org_settings.read_settings(db_session)

    @put(
        "/settings",
        operation_id="updateMessagingSettings",
        opt=SETTINGS,
        responses=problems(400),
        summary="Change reply-to, logo or quiet hours (a text due in quiet hours waits for their end)",
    )
    async def put_settings(
        self, db_session: AsyncSession, principal: Principal, data: MessagingSettingsUpdate
    ) -> MessagingSettingsRead:
        return await org_settings.update_settings(db_session, principal.org_id, data)


async def _preferences(
    db_session: AsyncSession, recipient_kind: preferences.RecipientKind, recipient_id: uuid.UUID
) -> PreferencesRead:
    phone = await preferences.recipient_phone(db_session, recipient_kind, recipient_id)
    stored = await preferences.stored_preferences(db_session, recipient_kind, recipient_id)
    consent = await preferences.consent_phone(db_session, recipient_kind, recipient_id)
    opted_out = await preferences.opted_out(db_session, phone)
    # What the delivery job picks with no stored choice (delivery.preferred_channel).
    texts = consent is not None and not opted_out
    return PreferencesRead(
        recipient_kind=recipient_kind,
        recipient_id=recipient_id,
        sms_consent=consent is not None,
        sms_opted_out=opted_out,
        preferences=[
            PreferenceRead(
                kind=k.name,
                channels=list(k.channels),
                channel=stored.get(k.name, "sms" if k.sms_when_consented and texts else k.default_channel),  # type: ignore[arg-type]
                default=k.name not in stored,
            )
            for k in preferences.kinds_for(recipient_kind)
        ],
    )


async def _set_preference(
    db_session: AsyncSession,
    principal: Principal,
    recipient_kind: preferences.RecipientKind,
    recipient_id: uuid.UUID,
    kind: str,
    data: PreferenceUpdate,
) -> PreferencesRead:
    spec = preferences.kind_for(recipient_kind, kind)
    await preferences.recipient_phone(db_session, recipient_kind, recipient_id)  # 404 when not ours
    await preferences.set_preference(db_session, principal.org_id, recipient_kind, recipient_id, spec, data.channel)
    return await _preferences(db_session, recipient_kind, recipient_id)


class ClientMessagingController(Controller):
    path = "/v1/clients/{client_id:uuid}"
    tags = ["messaging"]

    @get(
        "/message-preferences",
        operation_id="getClientMessagePreferences",
        opt={"permission": "contacts.view"},
        responses=problems(404),
        summary="The client's channel for each kind sent to clients, and their consent to texts",
    )
    async def get_preferences(self, db_session: AsyncSession, client_id: uuid.UUID) -> PreferencesRead:
        return await _preferences(db_session, "client", client_id)

    @put(
        "/message-preferences/{kind:str}",
        operation_id="setClientMessagePreference",
        opt={"permission": "contacts.edit"},
        responses=problems(400, 404),
        summary="Send this kind to the client by email, by text, or not at all",
    )
    async def set_preference(
        self, db_session: AsyncSession, principal: Principal, client_id: uuid.UUID, kind: str, data: PreferenceUpdate
    ) -> PreferencesRead:
        return await _set_preference(db_session, principal, "client", client_id, kind, data)

    @put(
        "/sms-consent",
        operation_id="setClientSmsConsent",
        opt={"permission": "contacts.edit"},
        responses=problems(400, 404),
        summary="Record the client's consent to texts on their current number (or its withdrawal)",
    )
    async def set_consent(
        self, db_session: AsyncSession, principal: Principal, client_id: uuid.UUID, data: SmsConsentUpdate
    ) -> PreferencesRead:
        await preferences.set_consent(db_session, principal.org_id, "client", client_id, data.consented, data.source)
        return await _preferences(db_session, "client", client_id)

    @get(
        "/messages",
        operation_id="listClientMessages",
        opt=LOG,
        responses=problems(404),
        summary="What was sent to the client: kind, channel, address, when, and delivered, refused or bounced",
    )
    async def messages(
        self, db_session: AsyncSession, principal: Principal, client_id: uuid.UUID, limit: Limit = 50
    ) -> MessageLog:
        return await log.client_log(db_session, principal, client_id, limit)


class WorkerMessagingController(Controller):
    path = "/v1/workers/{worker_id:uuid}"
    tags = ["messaging"]

    @get(
        "/message-preferences",
        operation_id="getWorkerMessagePreferences",
        opt={"permission": "workers.contact.view"},
        responses=problems(404),
        summary="The worker's channel for each kind sent to workers, and their consent to texts",
    )
    async def get_preferences(self, db_session: AsyncSession, worker_id: uuid.UUID) -> PreferencesRead:
        return await _preferences(db_session, "worker", worker_id)

    @put(
        "/message-preferences/{kind:str}",
        operation_id="setWorkerMessagePreference",
        opt={"permission": "users.manage"},
        responses=problems(400, 404),
        summary="Send this kind to the worker by email, by text, or not at all",
    )
    async def set_preference(
        self, db_session: AsyncSession, principal: Principal, worker_id: uuid.UUID, kind: str, data: PreferenceUpdate
    ) -> PreferencesRead:
        return await _set_preference(db_session, principal, "worker", worker_id, kind, data)

    @put(
        "/sms-consent",
        operation_id="setWorkerSmsConsent",
        opt={"permission": "users.manage"},
        responses=problems(400, 404),
        summary="Record the worker's consent to texts on their current number (or its withdrawal)",
    )
    async def set_consent(
        self, db_session: AsyncSession, principal: Principal, worker_id: uuid.UUID, data: SmsConsentUpdate
    ) -> PreferencesRead:
        await preferences.set_consent(db_session, principal.org_id, "worker", worker_id, data.consented, data.source)
        return await _preferences(db_session, "worker", worker_id)


class BookingMessagesController(Controller):
    path = "/v1/bookings/{booking_id:uuid}/messages"
    tags = ["messaging"]

    @get(
        operation_id="listBookingMessages",
        opt=LOG,
        responses=problems(404),
        summary="What was sent about the booking: kind, to whom, channel, when, and delivered, refused or bounced",
    )
    async def messages(
        self, db_session: AsyncSession, principal: Principal, booking_id: uuid.UUID, limit: Limit = 50
    ) -> MessageLog:
        return await log.booking_log(db_session, principal, booking_id, limit)


def _bad_link() -> Problem:
    problem = Problem(404, "not-found", "Not found", "The unsubscribe link is not valid.")
    # The route template, not the path: the token stays out of problem bodies pasted elsewhere.
    problem.instance = "/v1/messaging/unsubscribe/{token}"  # type: ignore[attr-defined]
    return problem


class UnsubscribeController(Controller):
    path = "/v1/messaging/unsubscribe"
    tags = ["messaging"]

    @post(
        "/{token:str}",
        operation_id="unsubscribeOneClick",
        opt=PUBLIC_UNSUBSCRIBE,
        status_code=200,
        responses=problems(404),
        summary="RFC 8058 one-click unsubscribe (the List-Unsubscribe URL of a digest or marketing-like "
        "email): stops that kind of email to that recipient. 404 for a token that is not ours",
    )
    async def unsubscribe(self, db_session: AsyncSession, settings: Settings, token: str) -> UnsubscribeRead:
        claim = read_token(settings, token)
        if claim is None:
            raise _bad_link()
        await apply_org_now(db_session, claim.org_id)
        kind = await preferences.unsubscribe(db_session, claim)
        if kind is None:
            raise _bad_link()
        return UnsubscribeRead(unsubscribed=True, kind=kind.name)


TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


class TwilioInboundController(Controller):
    path = "/v1/messaging/twilio/inbound"
    tags = ["messaging"]

    @post(
        operation_id="receiveTwilioInbound",
        opt=PUBLIC_TWILIO,
        status_code=200,
        media_type="application/xml",
        responses=problems(400),
        summary="Twilio's inbound-text webhook (X-Twilio-Signature verified): STOP opts the number out of "
        "every text, START opts it back in; answers empty TwiML",
    )
    async def inbound(
        self, request: Request[Any, Any, Any], db_session: AsyncSession, settings: Settings
    ) -> Response[str]:
        form = await request.form()
        params = [(k, str(v)) for k, v in form.multi_items()]
        sms = settings.messaging.sms
        url = sms.twilio_webhook_url or str(request.url)
        twilio_inbound.verify(sms.twilio_auth_token, url, params, request.headers.get(twilio_inbound.SIGNATURE_HEADER))
        values = dict(params)
        await preferences.handle_inbound_keyword(db_session, values.get("From", ""), values.get("Body", ""))
        return Response(TWIML_EMPTY, media_type="application/xml", status_code=200)


class TwilioStatusController(Controller):
    path = twilio_inbound.STATUS_PATH
    tags = ["messaging"]

    @post(
        "/{org_id:uuid}/{delivery_id:uuid}",
        operation_id="receiveTwilioStatus",
        opt=PUBLIC_TWILIO,
        status_code=204,
        responses=problems(400, 404),
        summary="Twilio's status callback for a text we sent (X-Twilio-Signature verified over the URL we "
        "gave): delivered -> `delivered`, undelivered/failed -> `bounced`; a permanent error (21610, 30003, "
        "30005, 30006) suppresses the number in the organisation. Reports only move a text forward, so a "
        "repeat or a late one changes nothing. 404 for a delivery or SID that is not ours",
    )
    async def status(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        settings: Settings,
        org_id: uuid.UUID,
        delivery_id: uuid.UUID,
    ) -> None:
        form = await request.form()
        params = [(k, str(v)) for k, v in form.multi_items()]
        sms = settings.messaging.sms
        # The URL we handed Twilio, not the request's (a proxy may rewrite host or scheme).
        url = twilio_inbound.status_callback_url(settings.messaging.public_base_url, org_id, delivery_id)
        twilio_inbound.verify(sms.twilio_auth_token, url, params, request.headers.get(twilio_inbound.SIGNATURE_HEADER))
        values = dict(params)
        outcome, reason, permanent = reports.twilio_report(
            values.get("MessageStatus") or values.get("SmsStatus") or "", values.get("ErrorCode")
        )
        await apply_org_now(db_session, org_id)
        matched = await reports.apply_report(
            db_session,
            org_id,
            delivery_id,
            outcome,
            channel="sms",
            provider_id=values.get("MessageSid") or values.get("SmsSid") or "",
            reason=reason,
            suppress_address=permanent,
        )
        if not matched:
            raise not_found("delivery")


class SendgridEventsController(Controller):
    path = "/v1/messaging/sendgrid/events"
    tags = ["messaging"]

    @post(
        operation_id="receiveSendgridEvents",
        opt=PUBLIC_SENDGRID,
        status_code=204,
        responses=problems(400),
        summary="SendGrid's Event Webhook (ECDSA-signed, verified with SENDGRID_WEBHOOK_PUBLIC_KEY): delivered -> "
        "`delivered`; bounce/dropped -> `bounced`, a hard bounce or an invalid address also suppresses it in the "
        "organisation. Events of mail that is not ours, or that match no delivery, are ignored",
    )
    async def events(self, request: Request[Any, Any, Any], db_session: AsyncSession, settings: Settings) -> None:
        body = await request.body()
        sendgrid_events.verify(
            settings.messaging.sendgrid_webhook_public_key,
            body,
            request.headers.get(sendgrid_events.SIGNATURE_HEADER),
            request.headers.get(sendgrid_events.TIMESTAMP_HEADER),
        )
        for report in sendgrid_events.parse(body):
            # Each event in its organisation's scope: a batch may span organisations.
            await apply_org_now(db_session, report.org_id)
            await reports.apply_report(
                db_session,
                report.org_id,
                report.delivery_id,
                report.outcome,
                channel="email",
                message_id=report.message_id,
                reason=report.reason,
                suppress_address=report.permanent,
            )
