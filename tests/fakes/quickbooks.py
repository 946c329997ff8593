"""A small in-memory fake of the QuickBooks Online Accounting API (v3) endpoints Spotless calls, served
on loopback by uvicorn in a thread of the test process (the mechanism of tests/support/fake_stripe.py),
so tests reach into its state directly and workers started as child processes call it over TCP.

    fake = FakeQuickBooks().start()          # or the `fake_qbo` fixture below
    env = {"QUICKBOOKS_API_BASE_URL": fake.base_url}

What it honours, as QuickBooks does (external-services.md section 7), per company (realm):
- create: POST /v3/company/{realm}/{customer|invoice|payment|refundreceipt|creditmemo}. With
  `?requestid=` a replayed create answers the first result again and makes no second entity.
- sparse update: POST the same path with `Id`, `SyncToken`, `sparse: true`; a SyncToken that is not
  the current one answers 400 Fault 5010 (Stale Object Error); each change bumps SyncToken.
- read: GET /v3/company/{realm}/{entity}/{id}; query: GET /v3/company/{realm}/query?query=select * from
  Customer where DisplayName = 'Jane O\\'Hara' (equality on one field, `\\'` escapes a quote).
- Customer DisplayName unique in the company (case-insensitive) -> 400 Fault 6240 (Duplicate Name
  Exists Error, its Detail naming the existing Id); Invoice DocNumber duplicate -> 400 Fault 6140
  unless `include=allowduplicatedocnum`.
- Payment lines linked to invoices lower their Balance; deleting a payment restores it.
- CDC: GET /v3/company/{realm}/cdc?entities=Customer,Payment&changedSince=<ISO> (what changed at or
  after that instant, deleted ones as `status: Deleted`; more than 30 days back -> 400; at most 1,000).
- `Authorization: Bearer ...` required (401 Fault 3200); with `accepted_tokens` set, only those.

Controls: `throttle(times)` (next requests answer 429), `delay` (seconds each request takes, so the
caller's concurrency can be observed in `max_in_flight`), `add()` / `edit()` / `delete()` as a
bookkeeper would in QuickBooks; every request is in `requests`.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest
import uvicorn

from tests.support.processes import free_port

ENTITIES = {
    "customer": "Customer",
    "invoice": "Invoice",
    "payment": "Payment",
    "refundreceipt": "RefundReceipt",
    "creditmemo": "CreditMemo",
    "item": "Item",
    "account": "Account",
}
CDC_WINDOW = timedelta(days=30)
CDC_MAX_OBJECTS = 1000
_QUERY = re.compile(
    r"^\s*select\s+\*\s+from\s+(\w+)(?:\s+where\s+(\w+)\s*=\s*'((?:[^'\\]|\\.)*)')?\s*(?:maxresults\s+\d+)?\s*$",
    re.IGNORECASE,
)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 0


@dataclass
class Company:
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {v: {} for v in ENTITIES.values()})
    deleted: dict[str, dict[str, datetime]] = field(default_factory=lambda: {v: {} for v in ENTITIES.values()})
    request_ids: dict[str, tuple[int, Any]] = field(default_factory=dict)
    next_id: int = 100

    def __post_init__(self) -> None:
        # What a new QuickBooks company has: the "Services" item and a bank account.
        self.objects["Item"]["1"] = {"Id": "1", "Name": "Services", "Type": "Service", "Active": True, "SyncToken": "0"}
        self.objects["Account"]["35"] = {
            "Id": "35",
            "Name": "Checking",
            "AccountType": "Bank",
            "Active": True,
            "SyncToken": "0",
        }


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fault(code: str, message: str, detail: str = "", kind: str = "ValidationFault") -> dict[str, Any]:
    return {
        "Fault": {"Error": [{"Message": message, "Detail": detail or message, "code": code}], "type": kind},
        "time": _stamp(datetime.now(UTC)),
    }


class FakeQuickBooks:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.companies: dict[str, Company] = {}
        self.requests: list[Request] = []
        self.accepted_tokens: set[str] = set()
        self.throttled = 0
        self.delay = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {"QUICKBOOKS_API_BASE_URL": self.base_url}

    def start(self) -> FakeQuickBooks:
        self.port = free_port()
        config = uvicorn.Config(
            self, host="127.0.0.1", port=self.port, log_level="warning", access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-quickbooks", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake QuickBooks server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)

    # -- controls: what a bookkeeper does in QuickBooks itself -------------------------------------

    def company(self, realm: str) -> Company:
        with self.lock:
            return self.companies.setdefault(realm, Company())

    def throttle(self, times: int) -> None:
        with self.lock:
            self.throttled += times

    def add(self, realm: str, entity: str, **fields: Any) -> dict[str, Any]:
        with self.lock:
            return self._insert(self.company(realm), entity, fields, datetime.now(UTC))

    def edit(self, realm: str, entity: str, id_: str, *, at: datetime | None = None, **fields: Any) -> dict[str, Any]:
        with self.lock:
            obj = self.company(realm).objects[entity][id_]
            obj.update(fields)
            self._touch(obj, at or datetime.now(UTC))
            return obj

    def delete(self, realm: str, entity: str, id_: str) -> None:
        with self.lock:
            company = self.company(realm)
            obj = company.objects[entity].pop(id_)
            if entity == "Payment":
                self._apply_payment(company, obj, sign=1)
            company.deleted[entity][id_] = datetime.now(UTC)

    def all(self, realm: str, entity: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.company(realm).objects[entity].values())

    def creates(self, entity: str) -> list[Request]:
        path_tail = "/" + entity.lower()
        return [
            r for r in self.requests if r.method == "POST" and r.path.endswith(path_tail) and not _is_update(r.body)
        ]

    # -- the API -----------------------------------------------------------------------------------

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            query = dict(parse_qsl(scope.get("query_string", b"").decode()))
            body: Any = None
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
            request = Request(scope["method"], scope["path"], query, body)
            with self.lock:
                self.requests.append(request)
                status, payload, extra = self._handle(request, headers)
                request.status = status
        finally:
            with self.lock:
                self.in_flight -= 1
        response_headers = [(b"content-type", b"application/json"), *extra]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": json.dumps(payload).encode()})

    def _handle(self, r: Request, headers: dict[str, str]) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        token = headers.get("authorization", "")
        if not token.startswith("Bearer ") or (self.accepted_tokens and token[7:] not in self.accepted_tokens):
            return (
                401,
                _fault("3200", "message=AuthenticationFailed; errorCode=003200; statusCode=401", kind="AUTHENTICATION"),
                [],
            )
        if self.throttled:
            self.throttled -= 1
            fault = _fault("3001", "message=ThrottleExceeded; errorCode=003001; statusCode=429", kind="SERVICE")
            return 429, fault, [(b"retry-after", b"1")]
        parts = r.path.strip("/").split("/")
        if len(parts) < 4 or parts[:2] != ["v3", "company"]:
            return 404, _fault("610", "Object Not Found"), []
        company = self.company(parts[2])
        resource = parts[3].lower()
        now = datetime.now(UTC)
        if r.method == "GET" and resource == "query" and len(parts) == 4:
            return self._query(company, r.query.get("query", ""))
        if r.method == "GET" and resource == "cdc" and len(parts) == 4:
            return self._cdc(company, r.query, now)
        entity = ENTITIES.get(resource)
        if entity is None:
            return 400, _fault("4000", f"Unsupported resource {resource}"), []
        if r.method == "GET" and len(parts) == 5:
            obj = company.objects[entity].get(parts[4])
            if obj is None:
                return (
                    400,
                    _fault(
                        "610",
                        "Object Not Found",
                        f"Object Not Found : Something you're trying to use has been made inactive. Id={parts[4]}",
                    ),
                    [],
                )
            return 200, {entity: _public(obj), "time": _stamp(now)}, []
        if r.method != "POST" or len(parts) != 4 or not isinstance(r.body, dict):
            return 400, _fault("2010", "Request has invalid or unsupported property"), []
        if _is_update(r.body):
            return self._update(company, entity, r.body, now)
        request_id = r.query.get("requestid")
        if request_id:
            if len(request_id) > 50:
                return (
                    400,
                    _fault("2020", "Required param missing, need to supply the required value", "requestid too long"),
                    [],
                )
            if request_id in company.request_ids:
                status, payload = company.request_ids[request_id]
                return status, payload, []
        status, payload = self._create(company, entity, r.body, r.query, now)
        if request_id:
            company.request_ids[request_id] = (status, payload)
        return status, payload, []

    def _create(
        self, company: Company, entity: str, body: dict[str, Any], query: dict[str, str], now: datetime
    ) -> tuple[int, Any]:
        if entity == "Customer":
            name = (body.get("DisplayName") or "").strip()
            if not name:
                return 400, _fault("2020", "Required param missing, need to supply the required value", "DisplayName")
            for existing in company.objects["Customer"].values():
                if existing.get("DisplayName", "").lower() == name.lower():
                    return 400, _fault(
                        "6240",
                        "Duplicate Name Exists Error",
                        f"The name supplied already exists. : Id={existing['Id']}",
                    )
        else:
            ref = (body.get("CustomerRef") or {}).get("value")
            if ref not in company.objects["Customer"]:
                return 400, _fault("2500", "Invalid Reference Id", f"Invalid Reference Id : Customer {ref}")
        if entity == "Invoice" and body.get("DocNumber") and "allowduplicatedocnum" not in query.get("include", ""):
            for existing in company.objects["Invoice"].values():
                if existing.get("DocNumber") == body["DocNumber"]:
                    return 400, _fault(
                        "6140",
                        "Duplicate Document Number Error",
                        f"Duplicate Document Number Error : You must specify a different number. This number has already been used. DocNumber={body['DocNumber']}",
                    )
        if entity == "RefundReceipt":
            account = (body.get("DepositToAccountRef") or {}).get("value")
            if account not in company.objects["Account"]:
                return 400, _fault(
                    "2020", "Required param missing, need to supply the required value", "DepositToAccountRef"
                )
        for line in body.get("Line", []):
            item = ((line.get("SalesItemLineDetail") or {}).get("ItemRef") or {}).get("value")
            if item is not None and item not in company.objects["Item"]:
                return 400, _fault("2500", "Invalid Reference Id", f"Invalid Reference Id : Item {item}")
        if entity == "Payment":
            for line in body.get("Line", []):
                for linked in line.get("LinkedTxn", []):
                    if linked.get("TxnType") == "Invoice" and linked.get("TxnId") not in company.objects["Invoice"]:
                        return 400, _fault("2500", "Invalid Reference Id", f"Invoice {linked.get('TxnId')}")
        obj = self._insert(company, entity, body, now)
        return 200, {entity: _public(obj), "time": _stamp(now)}

    def _insert(self, company: Company, entity: str, fields: dict[str, Any], now: datetime) -> dict[str, Any]:
        company.next_id += 1
        obj = json.loads(json.dumps(fields))
        obj.pop("sparse", None)
        obj["Id"] = str(company.next_id)
        obj["SyncToken"] = "0"
        obj["domain"] = "QBO"
        obj["MetaData"] = {"CreateTime": _stamp(now), "LastUpdatedTime": _stamp(now)}
        if entity in {"Invoice", "RefundReceipt", "CreditMemo"}:
            obj["TotalAmt"] = round(sum(float(line.get("Amount", 0)) for line in obj.get("Line", [])), 2)
        if entity == "Invoice":
            obj["Balance"] = obj["TotalAmt"]
        if entity == "Customer":
            obj.setdefault("Active", True)
        if entity == "Payment":
            obj["TotalAmt"] = round(float(obj.get("TotalAmt", 0)), 2)
            self._apply_payment(company, obj, sign=-1, now=now)
        company.objects[entity][obj["Id"]] = obj
        obj["_changed"] = now
        return obj

    def _apply_payment(
        self, company: Company, payment: dict[str, Any], *, sign: int, now: datetime | None = None
    ) -> None:
        for line in payment.get("Line", []):
            for linked in line.get("LinkedTxn", []):
                invoice = company.objects["Invoice"].get(linked.get("TxnId"))
                if invoice is not None and linked.get("TxnType") == "Invoice":
                    invoice["Balance"] = round(invoice["Balance"] + sign * float(line.get("Amount", 0)), 2)
                    self._touch(invoice, now or datetime.now(UTC))

    def _touch(self, obj: dict[str, Any], at: datetime) -> None:
        obj["SyncToken"] = str(int(obj["SyncToken"]) + 1)
        obj["MetaData"]["LastUpdatedTime"] = _stamp(at)
        obj["_changed"] = at

    def _update(self, company: Company, entity: str, body: dict[str, Any], now: datetime) -> tuple[int, Any, list[Any]]:
        obj = company.objects[entity].get(str(body.get("Id")))
        if obj is None:
            return 400, _fault("610", "Object Not Found"), []
        if str(body.get("SyncToken")) != obj["SyncToken"]:
            return (
                400,
                _fault(
                    "5010",
                    "Stale Object Error",
                    f"Stale Object Error : You and {{user}} were working on this at the same time. {{user}} finished before you did, so your work was not saved. Id={obj['Id']}",
                ),
                [],
            )
        if not body.get("sparse"):
            return 400, _fault("2010", "the fake only takes sparse updates"), []
        if entity == "Customer" and "DisplayName" in body:
            for existing in company.objects["Customer"].values():
                if existing is not obj and existing.get("DisplayName", "").lower() == str(body["DisplayName"]).lower():
                    return (
                        400,
                        _fault(
                            "6240",
                            "Duplicate Name Exists Error",
                            f"The name supplied already exists. : Id={existing['Id']}",
                        ),
                        [],
                    )
        for key, value in body.items():
            if key not in {"Id", "SyncToken", "sparse", "MetaData", "domain"}:
                obj[key] = value
        if entity in {"Invoice", "RefundReceipt", "CreditMemo"} and "Line" in body:
            paid = obj.get("TotalAmt", 0) - obj.get("Balance", 0)
            obj["TotalAmt"] = round(sum(float(line.get("Amount", 0)) for line in obj.get("Line", [])), 2)
            if entity == "Invoice":
                obj["Balance"] = round(obj["TotalAmt"] - paid, 2)
        self._touch(obj, now)
        return 200, {entity: _public(obj), "time": _stamp(now)}, []

    def _query(self, company: Company, statement: str) -> tuple[int, Any, list[Any]]:
        match = _QUERY.match(statement)
        if match is None:
            return 400, _fault("4000", "Error parsing query", f"QueryParserError: {statement}"), []
        entity = next((v for v in ENTITIES.values() if v.lower() == match.group(1).lower()), None)
        if entity is None:
            return 400, _fault("4001", "Invalid query", f"unknown entity {match.group(1)}"), []
        found = list(company.objects[entity].values())
        if match.group(2):
            wanted = re.sub(r"\\(.)", r"\1", match.group(3))
            key = match.group(2)
            found = [o for o in found if str(o.get(key, "")).lower() == wanted.lower()]
        response: dict[str, Any] = {"startPosition": 1, "maxResults": len(found)} if found else {}
        if found:
            response[entity] = [_public(o) for o in found]
        return 200, {"QueryResponse": response, "time": _stamp(datetime.now(UTC))}, []

    def _cdc(self, company: Company, query: dict[str, str], now: datetime) -> tuple[int, Any, list[Any]]:
        try:
            since = datetime.fromisoformat(query["changedSince"].replace("Z", "+00:00"))
        except (KeyError, ValueError):
            return 400, _fault("2020", "Required param missing, need to supply the required value", "changedSince"), []
        if since.tzinfo is None:
            return 400, _fault("2030", "Invalid date", "changedSince needs an offset"), []
        if now - since > CDC_WINDOW:
            return 400, _fault("4001", "Invalid query", "changedSince cannot be more than 30 days in the past"), []
        names = [n.strip() for n in query.get("entities", "").split(",") if n.strip()]
        responses = []
        total = 0
        for name in names:
            entity = next((v for v in ENTITIES.values() if v.lower() == name.lower()), None)
            if entity is None:
                return 400, _fault("4001", "Invalid query", f"unknown entity {name}"), []
            items = [_public(o) for o in company.objects[entity].values() if o["_changed"] >= since]
            items += [
                {"Id": id_, "status": "Deleted", "MetaData": {"LastUpdatedTime": _stamp(at)}}
                for id_, at in company.deleted[entity].items()
                if at >= since
            ]
            items = items[: max(0, CDC_MAX_OBJECTS - total)]
            total += len(items)
            block: dict[str, Any] = {"startPosition": 1, "maxResults": len(items)}
            if items:
                block[entity] = items
            responses.append(block)
        return 200, {"CDCResponse": [{"QueryResponse": responses}], "time": _stamp(now)}, []


def _is_update(body: Any) -> bool:
    return isinstance(body, dict) and "Id" in body and "SyncToken" in body


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


@pytest.fixture
def fake_qbo() -> Iterator[FakeQuickBooks]:
    fake = FakeQuickBooks().start()
    try:
        yield fake
    finally:
        fake.stop()
