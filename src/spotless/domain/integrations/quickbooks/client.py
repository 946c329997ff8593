"""Our QuickBooks Online Accounting API (v3) client: httpx, minorversion=75, a timeout on every
call, the realm's shared limiter around each request.

- 401: the token was refused (revoked early): ask for a fresh one once (`force_refresh`), then
  give up with QboUnavailable (the core marks a dead grant needs-reconnect itself).
- 429: the realm pauses for Retry-After (for every worker), then the call is tried again, at most
  MAX_THROTTLED times.
- timeouts, connection errors, 5xx: QboUnavailable (nothing known to be done; a create retried
  later carries the same `requestid`, so it is never made twice).
- 400 with a Fault: QboFault with its code (6240 duplicate name, 6140 duplicate number, 5010 stale
  SyncToken, ...). Messages never carry a token."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx

from spotless.domain.integrations.quickbooks.limiter import RealmLimiter

logger = logging.getLogger("spotless.integrations.quickbooks")

MINOR_VERSION = "75"
TIMEOUT_SECONDS = 60.0
MAX_THROTTLED = 3
MAX_RETRY_AFTER_SECONDS = 60.0
_ID_IN_DETAIL = re.compile(r"Id=(\w+)")

TokenSource = Callable[[bool], Awaitable[str]]


class QboError(Exception):
    pass


class QboUnavailable(QboError):
    """QuickBooks did not answer usefully (timeout, 5xx, throttled too long, token refused): retry later."""


class QboFault(QboError):
    def __init__(self, status: int, code: str, message: str, detail: str) -> None:
        super().__init__(f"QuickBooks {status} fault {code}: {message} ({detail})"[:1_000])
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail

    @property
    def existing_id(self) -> str | None:
        """The Id a duplicate-name fault names (6240)."""
        found = _ID_IN_DETAIL.search(self.detail)
        return found.group(1) if found else None


def _fault(response: httpx.Response) -> QboFault:
    try:
        body = response.json()
        error = (body.get("Fault") or body.get("fault") or {}).get("Error") or [{}]
        first = error[0]
        return QboFault(
            response.status_code,
            str(first.get("code", response.status_code)),
            str(first.get("Message", "")),
            str(first.get("Detail", "")),
        )
    except (ValueError, AttributeError, IndexError):
        return QboFault(response.status_code, str(response.status_code), "unreadable answer", response.text[:200])


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(max(float(response.headers.get("retry-after", "60")), 0.0), MAX_RETRY_AFTER_SECONDS)
    except ValueError:
        return MAX_RETRY_AFTER_SECONDS


class QboClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        realm: str,
        token: TokenSource,
        limiter: RealmLimiter,
    ) -> None:
        self.http = http
        self.base = f"{base_url.rstrip('/')}/v3/company/{realm}"
        self.realm = realm
        self.token = token
        self.limiter = limiter

    async def _call(self, method: str, path: str, *, params: dict[str, str] | None = None, body: Any = None) -> Any:
        query = {"minorversion": MINOR_VERSION, **(params or {})}
        refreshed = False
        throttled = 0
        access = await self.token(False)
        while True:
            try:
                async with self.limiter.slot(self.realm):
                    response = await self.http.request(
                        method,
                        f"{self.base}/{path}",
                        params=query,
                        json=body,
                        headers={"Authorization": f"Bearer {access}", "Accept": "application/json"},
                    )
            except (httpx.TimeoutException, httpx.TransportError, TimeoutError) as exc:
                raise QboUnavailable(f"QuickBooks {method} {path}: {type(exc).__name__}") from None
            if response.status_code == 401:
                if refreshed:
                    raise QboUnavailable(f"QuickBooks refused a fresh token for realm {self.realm}")
                refreshed = True
                access = await self.token(True)
                continue
            if response.status_code == 429:
                throttled += 1
                wait = _retry_after(response)
                await self.limiter.pause(self.realm, wait)
                if throttled > MAX_THROTTLED:
                    raise QboUnavailable(f"QuickBooks kept throttling realm {self.realm}")
                logger.info("QuickBooks throttled realm %s: waiting %.1fs", self.realm, wait)
                await asyncio.sleep(wait)
                continue
            if response.status_code >= 500:
                raise QboUnavailable(f"QuickBooks {method} {path} answered {response.status_code}")
            if response.status_code >= 400:
                raise _fault(response)
            try:
                return response.json()
            except ValueError:
                raise QboUnavailable(f"QuickBooks {method} {path} answered no JSON") from None

    async def create(self, entity: str, body: dict[str, Any], request_id: str) -> dict[str, Any]:
        answer = await self._call("POST", entity.lower(), params={"requestid": request_id}, body=body)
        return dict(answer[entity])

    async def update(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        """A sparse update: `body` has Id and SyncToken."""
        answer = await self._call("POST", entity.lower(), body={**body, "sparse": True})
        return dict(answer[entity])

    async def read(self, entity: str, qbo_id: str) -> dict[str, Any]:
        answer = await self._call("GET", f"{entity.lower()}/{qbo_id}")
        return dict(answer[entity])

    async def query(self, entity: str, statement: str) -> list[dict[str, Any]]:
        answer = await self._call("GET", "query", params={"query": statement})
        return [dict(o) for o in (answer.get("QueryResponse") or {}).get(entity) or []]

    async def cdc(self, entities: list[str], since: datetime) -> tuple[dict[str, list[dict[str, Any]]], str | None]:
        """What changed at or after `since`, by entity, and QuickBooks' time of the answer."""
        answer = await self._call(
            "GET", "cdc", params={"entities": ",".join(entities), "changedSince": since.isoformat()}
        )
        found: dict[str, list[dict[str, Any]]] = {e: [] for e in entities}
        for block in answer.get("CDCResponse") or []:
            for response in block.get("QueryResponse") or []:
                for entity in entities:
                    found[entity].extend(response.get(entity) or [])
        return found, answer.get("time")


async def with_stale_retry(client: QboClient, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    """A sparse update; a stale SyncToken (5010) re-reads the object and tries once more."""
    try:
        return await client.update(entity, body)
    except QboFault as fault:
        if fault.code != "5010":
            raise
    current = await client.read(entity, str(body["Id"]))
    return await client.update(entity, {**body, "SyncToken": current["SyncToken"]})
