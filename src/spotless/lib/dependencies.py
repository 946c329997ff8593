"""Handler dependencies resolved one after another.

Litestar resolves the dependencies of one level of the graph concurrently, in an anyio task group
(`KwargsModel.resolve_dependencies`). Ours are cheap (the principal from the scope, the request's
session, cached organisation data), so the task group was pure cost: about 15 % of the Python
time of an authenticated list under load. It was also a hazard: two dependencies of one level
sharing the request's `AsyncSession` must not await on it at the same time. Resolving them in
order keeps Litestar's graph, its caching and its cleanup group, without the tasks."""

from __future__ import annotations

from typing import Any

from litestar._kwargs.cleanup import DependencyCleanupGroup
from litestar._kwargs.dependencies import resolve_dependency
from litestar._kwargs.kwargs_model import KwargsModel
from litestar.connection import ASGIConnection


async def _resolve_in_order(
    self: KwargsModel, connection: ASGIConnection[Any, Any, Any, Any], kwargs: dict[str, Any]
) -> DependencyCleanupGroup:
    cleanup_group = DependencyCleanupGroup()
    for batch in self.dependency_batches:
        # One level's dependencies do not depend on one another: any order is a valid one.
        for dependency in batch:
            await resolve_dependency(dependency, connection, kwargs, cleanup_group)
    return cleanup_group


def resolve_dependencies_in_order() -> None:
    """Install once, before the app's first request (create_app)."""
    KwargsModel.resolve_dependencies = _resolve_in_order  # type: ignore[method-assign]
