"""Outgoing email per EMAIL_MODE: `smtp` sends with aiosmtplib, `sendgrid` through SendGrid's SMTP
relay (user "apikey", SENDGRID_API_KEY as the password), `log` writes it to the log (dev), `off`
drops it. Every send has a timeout (a job's time limit cannot interrupt a blocked socket).

aiosmtplib raises only when every recipient is refused; a partly refused list comes back as a
dict of per-recipient answers, so `send_to` reads them and reports each address's answer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any, Literal

import aiosmtplib

from spotless.settings import EmailSettings

logger = logging.getLogger("spotless.messaging.email")


def build_message(settings: EmailSettings, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = formataddr((settings.from_name, settings.from_address))
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=settings.from_address.rsplit("@", 1)[-1])
    message.set_content(body)
    return message


def smtp_options(settings: EmailSettings) -> dict[str, Any]:
    if settings.mode == "sendgrid":
        return {
            "hostname": settings.sendgrid_host,
            "port": 587,
            "username": "apikey",
            "password": settings.sendgrid_api_key,
            "start_tls": True,
            "timeout": settings.smtp_timeout_seconds,
        }
    return {
        "hostname": settings.smtp_host,
        "port": settings.smtp_port,
        "username": settings.smtp_username,
        "password": settings.smtp_password,
        "start_tls": settings.smtp_starttls,
        "timeout": settings.smtp_timeout_seconds,
    }


async def send(settings: EmailSettings, message: EmailMessage, *, show_body: bool) -> str:
    """Returns what happened: 'sent', 'logged' or 'skipped'. Raises on SMTP failure (retried)."""
    if settings.mode == "off":
        return "skipped"
    if settings.mode == "log":
        extra = {"to": message["To"], "subject": message["Subject"]}
        if show_body:
            extra["body"] = message.get_content()
        logger.info("email (EMAIL_MODE=log, not sent)", extra=extra)
        return "logged"
    await aiosmtplib.send(message, **smtp_options(settings))
    return "sent"


@dataclass(frozen=True)
class Answer:
    """The server's answer for one recipient: `accepted`, `permanent` (5xx: do not try this address
    again) or `temporary` (4xx, a lost connection, a timeout: try again later)."""

    outcome: Literal["accepted", "permanent", "temporary", "logged", "skipped"]
    code: int | None = None
    text: str = ""


def _answer(code: int, text: str) -> Answer:
    if 200 <= code < 300:
        return Answer("accepted", code, text)
    return Answer("permanent" if 500 <= code < 600 else "temporary", code, text[:500])


async def send_to(settings: EmailSettings, message: EmailMessage, recipients: list[str]) -> dict[str, Answer]:
    """Send `message` to `recipients`; the answer for each. Never raises for a refusal."""
    if settings.mode == "off":
        return {r: Answer("skipped") for r in recipients}
    if settings.mode == "log":
        logger.info(
            "email (EMAIL_MODE=log, not sent)",
            extra={"to": ", ".join(recipients), "subject": message["Subject"], "message_id": message["Message-ID"]},
        )
        return {r: Answer("logged") for r in recipients}
    try:
        refused, _ = await aiosmtplib.send(message, recipients=recipients, **smtp_options(settings))
    except aiosmtplib.SMTPRecipientsRefused as exc:
        answers = {r: Answer("temporary", None, "not answered") for r in recipients}
        for refusal in exc.recipients:
            answers[refusal.recipient] = _answer(refusal.code, refusal.message)
        return answers
    except aiosmtplib.SMTPResponseException as exc:
        # MAIL FROM or DATA refused: the same answer for every recipient.
        return {r: _answer(exc.code, exc.message) for r in recipients}
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return {r: Answer("temporary", None, f"{type(exc).__name__}: {exc}"[:500]) for r in recipients}
    answers = {r: Answer("accepted", 250) for r in recipients}
    for recipient, response in refused.items():
        answers[recipient] = _answer(response.code, response.message)
    return answers
