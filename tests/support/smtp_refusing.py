"""A real SMTP server (aiosmtpd) on loopback that refuses chosen recipients with 550 or 451, or
refuses the DATA of the next messages with 451, and records every RCPT it was asked for."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from tests.support.processes import free_port
from tests.support.smtp import Received


@dataclass
class _Handler:
    messages: list[Received] = field(default_factory=list)
    rcpts: list[str] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # address -> "550 ..." / "451 ..."
    data_refusals: int = 0  # refuse the DATA of this many next messages with 451
    refused_message_ids: list[str] = field(default_factory=list)
    refused_messages: list[Received] = field(default_factory=list)  # their DATA, as refused
    data_delay: float = 0.0  # hold DATA this long (a worker killed mid-send)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:  # aiosmtpd hook
        self.rcpts.append(address)
        answer = self.refuse.get(address.lower())
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd hook
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        message: EmailMessage = message_from_bytes(  # type: ignore[assignment]
            envelope.original_content or envelope.content, policy=policy.default
        )
        if self.data_refusals > 0:
            self.data_refusals -= 1
            self.refused_message_ids.append(str(message["Message-ID"]))
            self.refused_messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
            return "451 4.3.0 Try again later"
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


class RefusingSmtpServer:
    def __init__(self) -> None:
        self.handler = _Handler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    @property
    def rcpts(self) -> list[str]:
        return self.handler.rcpts

    def refuse(self, address: str, answer: str) -> None:
        self.handler.refuse[address.lower()] = answer

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "EMAIL_MODE": "smtp",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.port),
            "EMAIL_FROM": "no-reply@spotless.test",
            **extra,
        }


@pytest.fixture
def refusing_smtp() -> Iterator[RefusingSmtpServer]:
    server = RefusingSmtpServer()
    server.controller.start()
    try:
        yield server
    finally:
        server.controller.stop()
