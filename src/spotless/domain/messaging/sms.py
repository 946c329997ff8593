"""Outgoing texts per SMS_MODE: `twilio` through Twilio's REST API (httpx), `log` writes them to
the log (dev), `off` drops them. Twilio's answer is read like SMTP's: a permanent refusal (an
invalid or unsubscribed number) is not tried again; a 429/5xx or a lost connection is."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import httpx

from spotless.messaging_settings import SmsSettings

logger = logging.getLogger("spotless.messaging.sms")

# Twilio error codes meaning "this number will not take texts from us" (21610: it sent STOP).
UNSUBSCRIBED = 21610


@dataclass(frozen=True)
class SmsAnswer:
    outcome: Literal["accepted", "permanent", "temporary", "logged", "skipped"]
    code: int | None = None
    text: str = ""
    sid: str | None = None


async def send_sms(
    settings: SmsSettings, to: str, body: str, *, reference: str, status_callback: str | None = None
) -> SmsAnswer:
    """`status_callback`: where Twilio reports the text delivered or undelivered (reports.py)."""
    if settings.mode == "off":
        return SmsAnswer("skipped")
    if settings.mode == "log":
        logger.info("sms (SMS_MODE=log, not sent)", extra={"to": to, "reference": reference, "chars": len(body)})
        return SmsAnswer("logged")
    sid, token = settings.twilio_account_sid or "", settings.twilio_auth_token or ""
    url = f"{settings.twilio_api_base}/2010-04-01/Accounts/{sid}/Messages.json"
    try:
        async with httpx.AsyncClient(timeout=settings.timeout_seconds) as client:
            form = {"To": to, "From": settings.twilio_from_number or "", "Body": body}
            if status_callback:
                form["StatusCallback"] = status_callback
            response = await client.post(url, auth=(sid, token), data=form)
    except httpx.HTTPError as exc:
        return SmsAnswer("temporary", None, f"{type(exc).__name__}: {exc}"[:500])
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    if response.status_code in (200, 201):
        return SmsAnswer("accepted", response.status_code, str(payload.get("status", "")), payload.get("sid"))
    code = payload.get("code")
    text = f"{response.status_code} {code or ''} {payload.get('message', '')}".strip()[:500]
    if response.status_code == 429 or response.status_code >= 500:
        return SmsAnswer("temporary", code if isinstance(code, int) else response.status_code, text)
    # 401/403 are our credentials, not the recipient: try again (an operator fixes the config).
    if response.status_code in (401, 403):
        return SmsAnswer("temporary", response.status_code, text)
    return SmsAnswer("permanent", code if isinstance(code, int) else response.status_code, text)
