"""Real resources for the fuzzer to reach: without them almost every operation with an id answers 404
and the fuzzer never gets past the lookup. Made through the API as the owner, like a client would;
their ids go to schemathesis as dictionaries it draws path, query and body ids from (often, not
always: random ids still test the 404 paths)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

PASSWORD = f"fuzz-{uuid.uuid4().hex}"


def _ok(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code >= 300:
        raise RuntimeError(f"seeding {what}: {response.status_code} {response.text[:500]}")
    return response.json() if response.content else {}


def signup(client: httpx.Client) -> tuple[str, str, str, str, str]:
    email = f"fuzz-owner-{uuid.uuid4().hex[:12]}@example.com"
    body = {
        "org_name": "Fuzz Cleaning",
        "email": email,
        "password": PASSWORD,
        "full_name": "Fuzz Owner",
        "timezone": "America/Toronto",
        "currency": "CAD",
    }
    created = _ok(client.post("/v1/auth/signup", json=body), "owner")
    return email, PASSWORD, str(created["access_token"]), str(created["user"]["id"]), str(created["organization"]["id"])


def seed(client: httpx.Client, deliver_invitation: Callable[[str], str]) -> dict[str, list[str]]:
    """Ids by parameter name (`client_id`, `booking_id`, ...), two of each where cheap.
    `deliver_invitation(invitation_id)` runs the invitation email's `messaging.deliver` job and
    returns the email body (the temporary password is minted there, never returned by the API)."""
    ids: dict[str, list[str]] = {}

    def add(name: str, value: Any) -> str:
        ids.setdefault(name, []).append(str(value))
        return str(value)

    for n in range(2):
        made = _ok(
            client.post(
                "/v1/clients",
                json={
                    "name": f"Fuzz Client {n}",
                    "addresses": [
                        {"line1": "1 Main St", "city": "Toronto", "country": "CA", "bedrooms": 2, "bathrooms": 1}
                    ],
                },
            ),
            "client",
        )
        client_id = add("client_id", made["id"])
        address_id = add("address_id", made["addresses"][0]["id"])
        service_id = add(
            "service_id",
            _ok(
                client.post(
                    "/v1/services", json={"name": f"Fuzz Clean {n}", "base_price_cents": 9000, "base_minutes": 90}
                ),
                "service",
            )["id"],
        )
        add(
            "addon_id", _ok(client.post(f"/v1/services/{service_id}/addons", json={"name": f"Oven {n}"}), "addon")["id"]
        )
        worker_id = add(
            "worker_id", _ok(client.post("/v1/workers", json={"name": f"Fuzz Cleaner {n}"}), "worker")["id"]
        )
        hours = [{"weekday": d, "start": "08:00", "end": "18:00"} for d in range(7)]
        _ok(client.put(f"/v1/workers/{worker_id}/hours", json={"hours": hours}), "hours")
        add(
            "team_id",
            _ok(client.post("/v1/teams", json={"name": f"Team {n}", "worker_ids": [worker_id]}), "team")["id"],
        )
        day = datetime.now(UTC).date() + timedelta(days=14 + n)
        off = {"starts_at": f"{day + timedelta(days=30)}T00:00:00Z", "ends_at": f"{day + timedelta(days=31)}T00:00:00Z"}
        add("time_off_id", _ok(client.post(f"/v1/workers/{worker_id}/time-off", json=off), "time off")["id"])
        booking = {
            "client_id": client_id,
            "address_id": address_id,
            "service_id": service_id,
            "starts_at": f"{day}T15:00:00Z",
            "worker_ids": [worker_id],
        }
        add("booking_id", _ok(client.post("/v1/bookings", json=booking), "booking")["id"])
        series = {
            "client_id": client_id,
            "address_id": address_id,
            "service_id": service_id,
            "frequency": "weekly",
            "start_date": (day + timedelta(days=1)).isoformat(),
            "start_time": "09:00",
            "count": 4,
        }
        made_series = _ok(client.post("/v1/series", json=series), "series")["series"]
        add("series_id", made_series["id"])
        add("occurrence_date", made_series["start_date"])
        member = {"email": f"fuzz-member-{uuid.uuid4().hex[:10]}@example.com", "role": "dispatcher"}
        invitation = _ok(client.post("/v1/iam/users", json=member), "member")
        add("invitation_id", invitation["id"])
        body = deliver_invitation(invitation["id"])
        temp = re.search(r"temporary password:\s+(\S+)", body)
        if temp is None:
            raise SystemExit(f"fuzz seed: the invitation email carries no temporary password:\n{body}")
        # The first sign-in with it accepts the invitation: from then on the person is a member.
        joined = client.post("/v1/auth/login", json={"email": member["email"], "password": temp.group(1)})
        add("user_id", _ok(joined, "member sign-in")["user"]["id"])
    return ids


def config_toml(ids: dict[str, list[str]], probability: float = 0.75) -> str:
    """A schemathesis.toml binding every id-like path, query and body field to the seeded ids."""
    lines = ["[dictionaries]"]
    for name, values in sorted(ids.items()):
        quoted = ", ".join(f'"{v}"' for v in values)
        lines.append(f"{name} = {{ values = [{quoted}] }}")
    lines += ["", "[parameters]"]
    for name in sorted(ids):
        binding = f'{{ dictionary = "{name}", probability = {probability} }}'
        for key in (f"path.{name}", f"query.{name}", f"body.{name}"):
            lines.append(f'"{key}" = {binding}')
    for plural, single in (("worker_ids", "worker_id"), ("addon_ids", "addon_id")):
        if single in ids:
            lines.append(f'"body.{plural}[*]" = {{ dictionary = "{single}", probability = {probability} }}')
    # DELETE on clients, addresses, services, add-ons and workers archives: the resource stays
    # readable (`active: false` / `archived_at`) because bookings and invoices refer to it, so a
    # stateful DELETE -> GET sequence would report it as use-after-free by design. Those DELETEs are
    # fuzzed in every other phase; the stateful phase (and use_after_free) covers the real deletes
    # (time off, teams, team members). Moving archiving off DELETE (PATCH `active`) would end this.
    lines += [
        "",
        "[[operations]]",
        f"include-operation-id = {json.dumps(list(ARCHIVING_DELETES))}",
        "phases.stateful.enabled = false",
    ]
    return "\n".join(lines) + "\n"


ARCHIVING_DELETES = (
    "archiveClient",
    "archiveClientAddress",
    "deactivateService",
    "deactivateServiceAddon",
    "deactivateOrgAddon",
    "deactivateWorker",
)
