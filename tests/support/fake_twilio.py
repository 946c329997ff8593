"""A small fake of Twilio's Messages endpoint, served on loopback by uvicorn in a thread of the
test process (as tests/support/fake_stripe.py is).

It honours what Spotless relies on: POST /2010-04-01/Accounts/{sid}/Messages.json, form-encoded
To/From/Body, HTTP basic auth with the account SID and auth token (401 otherwise), a 201 with the
message's `sid`; a number that sent STOP answers 400 with Twilio's error 21610. Every request is
in `messages`. `signed_inbound()` builds the body and X-Twilio-Signature Twilio would POST to our
inbound webhook for a text received from a number; `signed_status()` the status callback it
would POST to the StatusCallback URL a text was sent with."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
import uvicorn

from spotless.domain.messaging.twilio_inbound import signature
from tests.support.processes import free_port

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "fake-twilio-auth-token-0123456789"
FROM_NUMBER = "+15005550006"


@dataclass
class Sent:
    to: str
    from_: str
    body: str
    sid: str
    status_callback: str | None = None


class FakeTwilio:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.messages: list[Sent] = []
        self.unsubscribed: set[str] = set()
        self.fail_next: list[int] = []
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            "SMS_MODE": "twilio",
            "TWILIO_API_BASE": self.base_url,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": FROM_NUMBER,
        }

    def start(self) -> FakeTwilio:
        self.port = free_port()
        config = uvicorn.Config(
            self, host="127.0.0.1", port=self.port, log_level="warning", access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-twilio", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake Twilio server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)

    def signed_inbound(self, url: str, from_number: str, body: str) -> tuple[bytes, dict[str, str]]:
        params = {
            "MessageSid": "SM" + secrets.token_hex(16),
            "AccountSid": ACCOUNT_SID,
            "From": from_number,
            "To": FROM_NUMBER,
            "Body": body,
            "NumMedia": "0",
        }
        header = signature(AUTH_TOKEN, url, list(params.items()))
        return urlencode(params).encode(), {
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": header,
        }

    def signed_status(
        self, sent: Sent, status: str, error_code: str | None = None, *, sid: str | None = None
    ) -> tuple[str, bytes, dict[str, str]]:
        """(url, body, headers) of the status callback Twilio would POST for a text it took."""
        assert sent.status_callback, "the text was sent without a StatusCallback"
        params = {
            "MessageSid": sid or sent.sid,
            "SmsSid": sid or sent.sid,
            "AccountSid": ACCOUNT_SID,
            "From": FROM_NUMBER,
            "To": sent.to,
            "MessageStatus": status,
            "SmsStatus": status,
            "ApiVersion": "2010-04-01",
        }
        if error_code is not None:
            params["ErrorCode"] = error_code
        header = signature(AUTH_TOKEN, sent.status_callback, list(params.items()))
        return (
            sent.status_callback,
            urlencode(params).encode(),
            {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": header},
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        status, payload = self._handle(scope["method"], scope["path"], headers, dict(parse_qsl(body.decode())))
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": json.dumps(payload).encode()})

    def _handle(self, method: str, path: str, headers: dict[str, str], form: dict[str, str]) -> tuple[int, Any]:
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if headers.get("authorization") != expected:
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        if method != "POST" or path != f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json":
            return 404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
        with self.lock:
            if self.fail_next:
                status = self.fail_next.pop(0)
                return status, {"code": 20500 if status >= 500 else 20429, "message": "fake outage", "status": status}
            to = form.get("To", "")
            if to in self.unsubscribed:
                return 400, {
                    "code": 21610,
                    "message": "Attempt to send to unsubscribed recipient",
                    "status": 400,
                }
            if not form.get("Body"):
                return 400, {"code": 21602, "message": "Message body is required.", "status": 400}
            sid = "SM" + secrets.token_hex(16)
            self.messages.append(
                Sent(
                    to=to,
                    from_=form.get("From", ""),
                    body=form["Body"],
                    sid=sid,
                    status_callback=form.get("StatusCallback"),
                )
            )
        return 201, {"sid": sid, "status": "queued", "to": to, "from": form.get("From"), "body": form["Body"]}


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio().start()
    try:
        yield fake
    finally:
        fake.stop()
