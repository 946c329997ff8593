"""Growing lists page by keyset cursor: a deep page costs what the first does (no OFFSET, no COUNT,
an index in the list's order, no sort), bad cursors are a 400, and short lists cap their offset."""

from __future__ import annotations

import json
from typing import Any

from litestar import Litestar
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from spotless.lib.pagination import MAX_OFFSET
from tests.support.client import app_client
from tests.support.factories import api_world, next_weekday
from tests.support.identity import signup

# (list path, its main table, the index its keyset order uses)
LISTS = (
    ("/v1/bookings", "booking", "ix_booking_org_id_starts_at_id"),
    ("/v1/clients", "client", "ix_client_org_id_name_id"),
    ("/v1/admin/audit", "admin_audit_logs", "ix_admin_audit_logs_org_created_id"),
)


async def _arrange(client: Any) -> Any:
    """At least three rows in each list."""
    owner = await signup(client)
    world = await api_world(client, owner, workers=1)
    day = next_weekday(2, weeks_ahead=2)
    for hour in (8, 11, 14):
        created = await client.post("/v1/bookings", json=world.booking(day, hour), headers=owner.headers)
        assert created.status_code == 201, created.text
    for name in ("Bea", "Cal"):
        assert (await client.post("/v1/clients", json={"name": name}, headers=owner.headers)).status_code == 201
    for tax in (100, 200, 300):
        assert (await client.patch("/v1/org", json={"tax_rate_bps": tax}, headers=owner.headers)).status_code == 200
    return owner


def _plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes.extend(_plan_nodes(child))
    return nodes


async def test_every_page_reads_an_index_range_in_order_without_offset_or_count(
    app: Litestar, owner_engine: AsyncEngine
) -> None:
    statements: list[tuple[str, Any]] = []

    def grab(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        statements.append((statement, parameters))

    async with app_client(app) as client:
        owner = await _arrange(client)
        for path, table, index in LISTS:
            first = (await client.get(path, params={"limit": 1}, headers=owner.headers)).json()
            assert first["has_more"] and first["next_cursor"], path
            seen = [item["id"] for item in first["items"]]
            cursor = first["next_cursor"]
            engine = app.state.engine.sync_engine
            event.listen(engine, "before_cursor_execute", grab)
            statements.clear()
            try:
                page = (await client.get(path, params={"limit": 1, "cursor": cursor}, headers=owner.headers)).json()
            finally:
                event.remove(engine, "before_cursor_execute", grab)
            assert page["items"] and page["items"][0]["id"] not in seen, path
            reads = [(s, p) for s, p in statements if f"FROM {table}" in s and s.lstrip().upper().startswith("SELECT")]
            assert reads, (path, statements)
            for statement, _ in statements:
                assert "OFFSET" not in statement.upper() and "count(" not in statement.lower(), (path, statement)
            statement, parameters = reads[0]
            async with owner_engine.connect() as conn:
                # A few rows here: seq and bitmap scans (which lose the order) would win on cost. The
                # question is whether an index yields the list's order by itself.
                await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
                await conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
                explained = await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters)
                plan = json.loads(explained.scalar_one()) if isinstance(explained, str) else explained.scalar_one()
            nodes = _plan_nodes(plan[0]["Plan"])
            assert any(n.get("Index Name") == index for n in nodes), (path, plan)
            assert not [n for n in nodes if "Sort" in n["Node Type"]], (path, plan)


async def test_walking_every_page_returns_each_row_once(client: Any) -> None:
    owner = await _arrange(client)
    for path, _table, _index in LISTS:
        everything = (await client.get(path, params={"limit": 200}, headers=owner.headers)).json()
        assert not everything["has_more"] and everything["next_cursor"] is None
        walked: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
            page = (await client.get(path, params=params, headers=owner.headers)).json()
            walked += [item["id"] for item in page["items"]]
            if not page["has_more"]:
                assert page["next_cursor"] is None
                break
            cursor = page["next_cursor"]
        assert walked == [item["id"] for item in everything["items"]], path
        assert len(walked) >= 3


async def test_a_cursor_only_fits_its_own_list_and_cannot_be_edited(client: Any) -> None:
    owner = await _arrange(client)
    cursors = {
        path: (await client.get(path, params={"limit": 1}, headers=owner.headers)).json()["next_cursor"]
        for path, _t, _i in LISTS
    }
    for path, _t, _i in LISTS:
        for other, cursor in cursors.items():
            if other == path:
                continue
            response = await client.get(path, params={"cursor": cursor}, headers=owner.headers)
            assert response.status_code == 400, (path, other)
            assert response.json()["type"] == "/problems/invalid-cursor"
        own = cursors[path]
        flipped = own[:5] + ("A" if own[5] != "A" else "B") + own[6:]
        for bad in (flipped, own[:-3], "x" * 600, "%%%", "", "eyJ9"):
            response = await client.get(path, params={"cursor": bad}, headers=owner.headers)
            assert response.status_code in (200, 400), (path, bad)
            if bad:
                assert response.status_code == 400, (path, bad, response.text)


async def test_short_lists_cap_their_offset(client: Any) -> None:
    owner = await signup(client)
    for path in ("/v1/series", "/v1/workers", "/v1/teams", "/v1/services", "/v1/iam/users"):
        deep = await client.get(path, params={"offset": MAX_OFFSET + 1}, headers=owner.headers)
        assert deep.status_code == 400, (path, deep.text)
        edge = await client.get(path, params={"offset": MAX_OFFSET}, headers=owner.headers)
        assert edge.status_code == 200, (path, edge.text)
