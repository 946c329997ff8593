"""Outgoing email per EMAIL_MODE: `smtp` sends with aiosmtplib, `log` writes it to the log (dev),
`off` drops it. Every send has a timeout (a job's time limit cannot interrupt a blocked socket)."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

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
    await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password,
        start_tls=settings.smtp_starttls,
        timeout=settings.smtp_timeout_seconds,
    )
    return "sent"
