"""Twilio's webhooks (the inbound-message one, and the status callback of each text we send): their X-Twilio-Signature is HMAC-SHA1, keyed with the account's
auth token, over the URL Twilio called followed by every POST parameter (sorted by name, name and
value concatenated), base64-encoded (Twilio's "Webhooks security" documentation). Twilio's SDK is
not a dependency for this one check."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Iterable

from spotless.lib.errors import Problem

SIGNATURE_HEADER = "X-Twilio-Signature"
STATUS_PATH = "/v1/messaging/twilio/status"


def status_callback_url(public_base_url: str, org_id: uuid.UUID, delivery_id: uuid.UUID) -> str:
    """The StatusCallback of one text: it names the delivery, and Twilio's signature covers the
    URL, so nobody but Twilio can report on it (reports.py matches the SID too)."""
    return f"{public_base_url.rstrip('/')}{STATUS_PATH}/{org_id}/{delivery_id}"


def signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    payload = url + "".join(f"{k}{v}" for k, v in sorted(params, key=lambda kv: (kv[0], kv[1])))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify(auth_token: str | None, url: str, params: list[tuple[str, str]], given: str | None) -> None:
    """400 `invalid-signature` unless `given` is Twilio's signature of this request."""
    if not auth_token or not given:
        raise Problem(400, "invalid-signature", "The request is not signed by Twilio")
    expected = signature(auth_token, url, params)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise Problem(400, "invalid-signature", "The request is not signed by Twilio")
