"""The published API contract: every operation is documented, and the spec snapshot in the repository
matches what the code serves, so API changes show up in review.

After an intended API change: UPDATE_SNAPSHOTS=1 just test tests/integration/system/test_openapi.py"""

from __future__ import annotations

import json
import os
from pathlib import Path

SNAPSHOT = Path(__file__).resolve().parents[2] / "snapshots" / "openapi.json"
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def _operations(spec: dict) -> list[tuple[str, str, dict]]:
    return [
        (path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
    ]


async def test_every_operation_has_an_id_a_tag_and_documented_errors(client):
    spec = (await client.get("/schema/openapi.json")).json()
    operations = _operations(spec)
    assert operations
    ids = [op.get("operationId") for _, _, op in operations]
    assert all(ids), [f"{m.upper()} {p}" for p, m, op in operations if not op.get("operationId")]
    assert len(ids) == len(set(ids)), "operation ids must be unique"
    untagged = [f"{m.upper()} {p}" for p, m, op in operations if not op.get("tags")]
    assert not untagged, f"operations without a domain tag: {untagged}"
    undocumented = [
        f"{m.upper()} {p}" for p, m, op in operations if not any(code.startswith("4") for code in op["responses"])
    ]
    assert not undocumented, f"operations without documented error responses: {undocumented}"
    for _, _, op in operations:
        for code, response in op["responses"].items():
            if code.startswith("4"):
                assert "application/problem+json" in response.get("content", {}), (op["operationId"], code)


async def test_openapi_snapshot_matches_the_code(client):
    spec = (await client.get("/schema/openapi.json")).json()
    rendered = json.dumps(spec, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(rendered)
    assert SNAPSHOT.exists(), "no snapshot yet: run with UPDATE_SNAPSHOTS=1"
    assert SNAPSHOT.read_text() == rendered, (
        "the API changed: review the diff, then refresh tests/snapshots/openapi.json with UPDATE_SNAPSHOTS=1"
    )
