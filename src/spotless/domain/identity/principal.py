"""Who is calling: set on `scope["user"]` by the authentication middleware, injected as `principal`."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar.connection import ASGIConnection

from spotless.lib.errors import Problem


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    user_id: UUID
    org_id: UUID
    session_id: UUID
    role: str
    permissions: frozenset[str]
    email: str
    # While a temporary password is active the member may only change it (see the guard).
    password_change_required: bool = False

    def can(self, permission: str) -> bool:
        return permission in self.permissions


def unauthenticated(detail: str = "A valid bearer token is required.") -> Problem:
    return Problem(
        401,
        "unauthenticated",
        "Authentication required",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="spotless"'},
    )


def provide_principal(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """App-level dependency: declare `principal: Principal` in a handler to receive the caller."""
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise unauthenticated()
    return user
