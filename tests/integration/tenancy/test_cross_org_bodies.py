"""Another organisation's ids in request BODIES (and query filters), not only in paths.

For every create/update route that takes ids of other resources, organisation A sends a request
that is valid with its own ids, once with exactly one id replaced by organisation B's: the answer
is a 4xx problem (404/400/409), never a 2xx (nothing may be stored pointing at B) and never a 500.
Each case first runs as a control with A's own ids and must succeed, so a refusal means the id was
refused, not that the body was wrong."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from tests.support.factories import World, api_world, next_weekday
from tests.support.identity import signup

REFUSED = {400, 404, 409, 422}


@dataclass
class Org:
    member: Any
    world: World
    worker: str
    second_worker: str
    team: str
    addon: str

    def ids(self) -> dict[str, str]:
        return {
            "client_id": str(self.world.client_id),
            "address_id": str(self.world.address_id),
            "service_id": str(self.world.service_id),
            "worker_id": self.worker,
            "team_id": self.team,
            "addon_id": self.addon,
        }


async def _org(client: Any, name: str) -> Org:
    member = await signup(client, name=name)
    world = await api_world(client, member, workers=2)
    worker, second = (str(w) for w in world.worker_ids)
    team = await client.post("/v1/teams", json={"name": "Blue", "worker_ids": [second]}, headers=member.headers)
    addon = await client.post(
        "/v1/addons", json={"name": "Oven", "price_cents": 500, "minutes": 15}, headers=member.headers
    )
    assert team.status_code == 201 and addon.status_code == 201, (team.text, addon.text)
    return Org(member, world, worker, second, team.json()["id"], addon.json()["id"])


_slots = itertools.count()


def _next_slot() -> tuple[date, int]:
    """A distinct (day, hour) per request, 3 h apart (the service takes 2), so bookings never collide."""
    n = next(_slots)
    day = n // 3
    return next_weekday(day % 7, weeks_ahead=2 + day // 7), 8 + 3 * (n % 3)


def _booking(a: Org, ids: dict[str, str], *, team: bool = False) -> dict[str, Any]:
    day, hour = _next_slot()
    body = {
        "client_id": ids["client_id"],
        "address_id": ids["address_id"],
        "service_id": ids["service_id"],
        "starts_at": a.world.at(day, hour),
        "worker_ids": [] if team else [ids["worker_id"]],
        "addon_ids": [ids["addon_id"]],
    }
    if team:
        body["team_id"] = ids["team_id"]
    return body


def _series(a: Org, ids: dict[str, str], *, team: bool = False) -> dict[str, Any]:
    day, hour = _next_slot()
    body = {
        "client_id": ids["client_id"],
        "address_id": ids["address_id"],
        "service_id": ids["service_id"],
        "frequency": "weekly",
        "start_date": (day.replace(year=day.year + 1)).isoformat(),
        "start_time": f"{hour:02d}:00",
        "count": 2,
        "worker_ids": [] if team else [ids["worker_id"]],
        "addon_ids": [ids["addon_id"]],
    }
    if team:
        body["team_id"] = ids["team_id"]
    return body


@dataclass
class Case:
    method: str
    # path(client, a, ids) -> path; may create A's own resources first (a booking to assign to ...)
    path: Callable[..., Any]
    body: Callable[[Org, dict[str, str]], Any] | None
    swaps: tuple[str, ...]
    query: Callable[[Org, dict[str, str]], dict[str, str]] | None = None


async def _fixed(path: str) -> str:
    return path


async def _a_booking(client: Any, a: Org, ids: dict[str, str]) -> str:
    made = await client.post("/v1/bookings", json=_booking(a, a.ids()), headers=a.member.headers)
    assert made.status_code == 201, made.text
    return f"/v1/bookings/{made.json()['id']}"


async def _a_series_occurrence(client: Any, a: Org, ids: dict[str, str]) -> str:
    made = await client.post("/v1/series", json=_series(a, a.ids()), headers=a.member.headers)
    assert made.status_code == 201, made.text
    series = made.json()["series"]
    return f"/v1/series/{series['id']}/occurrences/{series['start_date']}"


CASES: dict[str, Case] = {
    "create booking": Case(
        "POST",
        lambda c, a, i: _fixed("/v1/bookings"),
        _booking,
        ("client_id", "address_id", "service_id", "worker_id", "addon_id"),
    ),
    "create booking by team": Case(
        "POST", lambda c, a, i: _fixed("/v1/bookings"), lambda a, i: _booking(a, i, team=True), ("team_id",)
    ),
    "assign workers": Case(
        "POST",
        lambda c, a, i: _suffix(_a_booking(c, a, i), "/assign"),
        lambda a, i: {"worker_ids": [i["worker_id"] if i["worker_id"] != a.worker else a.second_worker]},
        ("worker_id",),
    ),
    "unassign workers": Case(
        "POST",
        lambda c, a, i: _suffix(_a_booking(c, a, i), "/unassign"),
        lambda a, i: {"worker_ids": [i["worker_id"]]},
        ("worker_id",),
    ),
    "create series": Case(
        "POST",
        lambda c, a, i: _fixed("/v1/series"),
        _series,
        ("client_id", "address_id", "service_id", "worker_id", "addon_id"),
    ),
    "create series by team": Case(
        "POST", lambda c, a, i: _fixed("/v1/series"), lambda a, i: _series(a, i, team=True), ("team_id",)
    ),
    "edit one occurrence's cleaners": Case(
        "PATCH",
        _a_series_occurrence,
        lambda a, i: {
            "scope": "this",
            "worker_ids": [i["worker_id"] if i["worker_id"] != a.worker else a.second_worker],
        },
        ("worker_id",),
    ),
    "edit following occurrences' cleaners": Case(
        "PATCH",
        _a_series_occurrence,
        lambda a, i: {"scope": "following", "worker_ids": [i["worker_id"]]},
        ("worker_id",),
    ),
    "quote": Case(
        "POST",
        lambda c, a, i: _fixed("/v1/quotes"),
        lambda a, i: {"service_id": i["service_id"], "addon_ids": [i["addon_id"]], "bedrooms": 2},
        ("service_id", "addon_id"),
    ),
    "create team": Case(
        "POST",
        lambda c, a, i: _fixed("/v1/teams"),
        lambda a, i: {"name": f"Team {next(_slots)}", "worker_ids": [i["worker_id"]]},
        ("worker_id",),
    ),
    "replace team members": Case(
        "PATCH",
        lambda c, a, i: _fixed(f"/v1/teams/{a.team}"),
        lambda a, i: {"worker_ids": [i["worker_id"]]},
        ("worker_id",),
    ),
    "availability": Case(
        "GET",
        lambda c, a, i: _fixed("/v1/availability"),
        None,
        ("service_id", "worker_id"),
        query=lambda a, i: {
            "service_id": i["service_id"],
            "worker_id": i["worker_id"],
            "date_from": next_weekday(2).isoformat(),
            "date_to": next_weekday(2).isoformat(),
        },
    ),
}


async def _suffix(path: Any, suffix: str) -> str:
    return f"{await path}{suffix}"


async def _call(client: Any, a: Org, case: Case, ids: dict[str, str]) -> Any:
    path = await case.path(client, a, ids)
    kwargs: dict[str, Any] = {"headers": a.member.headers}
    if case.body is not None:
        kwargs["json"] = case.body(a, ids)
    if case.query is not None:
        kwargs["params"] = case.query(a, ids)
    return await client.request(case.method, path, **kwargs)


@pytest.mark.parametrize("name", sorted(CASES))
async def test_foreign_ids_in_a_body_are_refused(client, name: str) -> None:
    case = CASES[name]
    a = await _org(client, "Attacker")
    b = await _org(client, "Victim")
    control = await _call(client, a, case, a.ids())
    assert 200 <= control.status_code < 300, f"{name}: the control with A's own ids failed: {control.text}"
    for field in case.swaps:
        ids = {**a.ids(), field: b.ids()[field]}
        response = await _call(client, a, case, ids)
        assert response.status_code in REFUSED, f"{name} with B's {field}: {response.status_code} {response.text[:300]}"
        assert response.headers["content-type"].startswith("application/problem+json")
