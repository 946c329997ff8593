"""What the cross-organisation factories share: an asserted API answer."""

from __future__ import annotations

from typing import Any


def expect(response: Any, status: int, what: str) -> dict[str, Any]:
    assert response.status_code == status, f"{what}: {response.status_code} {response.text}"
    return response.json() if response.content else {}


def created_id(response: Any, what: str) -> str:
    return str(expect(response, 201, what)["id"])
