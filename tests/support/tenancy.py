"""Factories that create one resource of each kind in a given organisation, keyed by the path
parameter that names it (`user_id`, `client_id`, `booking_id` ...). The cross-organisation test
(tests/integration/tenancy/test_cross_org.py) uses them to call every route that takes an id with
another organisation's ids.

A context registers its factories in its module of tests/support/factories/:

    from tests.support.tenancy import register

    @register("client_id")
    async def api_client_id(client, member) -> str:
        response = await client.post("/v1/clients", json={...}, headers=member.headers)
        return response.json()["id"]

A factory may take a third argument, `ids` (the ids already created for the route's other path
parameters), for nested resources:

    @register("address_id")
    async def api_address_id(client, member, ids) -> str:
        ... f"/v1/clients/{ids['client_id']}/addresses" ...

Registered parameters are resolved in the order the route's path names them."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

Factory = Callable[..., Awaitable[str]]

RESOURCE_FACTORIES: dict[str, Factory] = {}

# Request bodies for routes whose body the test cannot generate from its schema (patterns, enums
# of business values ...): {(method, route path as Litestar shows it): body, or fn(ids) -> body}.
# Domains add theirs from their factories module: REQUEST_BODIES[("POST", "/v1/x/{x_id:uuid}/y")] = {...}
REQUEST_BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/iam/users/{user_id:uuid}/role"): {"role": "viewer"},
}

# Path parameters that name something every organisation has, not a row of one (a message kind,
# declared in code): a route whose parameters are all of these has nothing to find in another
# organisation, so the cross-organisation test skips it (its domain tests that each organisation
# reads and writes only its own). A route with one of these next to an id is still checked.
GLOBAL_PARAMS: set[str] = set()

# Importing the factories package registers every context's factories (load_factories).
FACTORY_MODULES = ["tests.support.factories"]


def register(param_name: str) -> Callable[[Factory], Factory]:
    def decorate(fn: Factory) -> Factory:
        existing = RESOURCE_FACTORIES.get(param_name)
        if existing is not None and existing is not fn:
            raise ValueError(f"two factories for path parameter {param_name!r}: {existing} and {fn}")
        RESOURCE_FACTORIES[param_name] = fn
        return fn

    return decorate


def load_factories() -> dict[str, Factory]:
    for module in FACTORY_MODULES:
        importlib.import_module(module)
    return RESOURCE_FACTORIES


async def create(param_name: str, client: Any, member: Any, ids: dict[str, str]) -> str:
    factory = RESOURCE_FACTORIES[param_name]
    if len(inspect.signature(factory).parameters) >= 3:
        return await factory(client, member, ids)
    return await factory(client, member)
