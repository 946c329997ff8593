"""Standard Webhooks signatures (https://www.standardwebhooks.com, v1 = HMAC-SHA256).

The signed content is `{webhook-id}.{webhook-timestamp}.{body}` over the exact bytes sent;
`webhook-signature` lists one `v1,<base64>` per valid secret, space-separated, so during a
rotation a receiver holding either secret verifies the message."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

from spotless.domain.webhooks.secret_store import secret_bytes


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, msg_id, timestamp, body) for s in secrets),
        "content-type": "application/json",
    }
