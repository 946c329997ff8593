"""Every route that takes an id, called by organisation A with organisation B's ids, answers 404.

Routes are discovered from the app, so a new route is covered the day it is added: its path
parameters need a factory (tests/support/tenancy.py) and, when the generated body is not valid,
an entry in REQUEST_BODIES. A control call with the same ids and body as B's own owner must not
404, which proves A's 404 comes from the organisation boundary and not from a bad request."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import pytest
from litestar.handlers import HTTPRouteHandler

from spotless.app import create_app
from spotless.lib.bounds import Day, Instant
from tests.conftest import make_settings
from tests.support.identity import signup
from tests.support.tenancy import GLOBAL_PARAMS, REQUEST_BODIES, RESOURCE_FACTORIES, create, load_factories

_PARAM = re.compile(r"{(\w+)(?::(\w+))?}")


def _routes() -> list[tuple[str, str, HTTPRouteHandler]]:
    app = create_app(make_settings())
    found = []
    for route in app.routes:
        if "{" not in route.path or route.path.startswith("/schema"):
            continue
        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler) or handler.opt.get("public"):
                continue
            for method in sorted(set(handler.http_methods) - {"OPTIONS", "HEAD"}):
                found.append((method, route.path, handler))
    return found


ROUTES = _routes()


def _sample(info: Any, name: str, ids: dict[str, str]) -> Any:
    """A value msgspec will accept for a required field, when no body is registered."""
    t = msgspec.inspect
    if isinstance(info, t.Metadata):
        return _sample(info.type, name, ids)
    if isinstance(info, t.StructType):
        return {f.encode_name: _sample(f.type, f.name, ids) for f in info.fields if f.required}
    if isinstance(info, t.UnionType):
        options = [o for o in info.types if not isinstance(o, t.NoneType)]
        return _sample(options[0], name, ids) if options else None
    if isinstance(info, t.UUIDType):
        return ids.get(name, str(uuid.uuid4()))
    if isinstance(info, t.StrType):
        return "x" * max(info.min_length or 1, 1)
    if isinstance(info, t.IntType):
        return max(info.ge or 0, info.gt + 1 if info.gt is not None else 0, 1)
    if isinstance(info, t.FloatType):
        return 1.0
    if isinstance(info, t.BoolType):
        return False
    if isinstance(info, t.DateTimeType):
        return (datetime.now(UTC) + timedelta(days=8)).isoformat()
    if isinstance(info, t.DateType) or (isinstance(info, t.CustomType) and info.cls is Day):
        return (date.today() + timedelta(days=8)).isoformat()
    if isinstance(info, t.CustomType) and info.cls is Instant:  # spotless.lib.bounds: a bounded datetime
        return (datetime.now(UTC) + timedelta(days=8)).isoformat()
    if isinstance(info, t.LiteralType):
        return info.values[0]
    if isinstance(info, t.EnumType):
        return next(iter(info.cls)).value
    if isinstance(info, t.ListType | t.SetType | t.FrozenSetType | t.VarTupleType):
        return []
    if isinstance(info, t.DictType):
        return {}
    return None


def _body(method: str, path: str, handler: HTTPRouteHandler, ids: dict[str, str]) -> Any:
    registered = REQUEST_BODIES.get((method, path))
    if registered is not None:
        return registered(ids) if callable(registered) else registered
    data = handler.parsed_data_field
    if data is None:
        return None
    return _sample(msgspec.inspect.type_info(data.annotation), "data", ids)


@pytest.mark.parametrize(("method", "path", "handler"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
async def test_other_organisations_ids_are_not_found(client, method: str, path: str, handler: HTTPRouteHandler):
    load_factories()
    params = [name for name, _ in _PARAM.findall(path)]
    missing = [p for p in params if p not in RESOURCE_FACTORIES]
    assert not missing, (
        f"{method} {path}: no factory for path parameter(s) {missing}. Register one with "
        f"@tests.support.tenancy.register({missing[0]!r}) in your domain's tests/support/<domain>_factories.py "
        "(listed in FACTORY_MODULES), so this route is checked for cross-organisation access."
    )
    if all(p in GLOBAL_PARAMS for p in params):
        pytest.skip(f"{method} {path}: its parameters ({params}) name nothing of one organisation")
    org_a = await signup(client, name="Org A")
    org_b = await signup(client, name="Org B")
    ids: dict[str, str] = {}
    for param in params:
        ids[param] = await create(param, client, org_b, ids)
    url = _PARAM.sub(lambda m: ids[m.group(1)], path)
    body = _body(method, path, handler, ids)
    kwargs: dict[str, Any] = {"json": body} if body is not None else {}

    response = await client.request(method, url, headers=org_a.headers, **kwargs)
    assert response.status_code != 400, (
        f"{method} {path}: the generated request body is not valid ({response.text}); register a minimal valid "
        f"one in tests.support.tenancy.REQUEST_BODIES[({method!r}, {path!r})]"
    )
    assert response.status_code == 404, (
        f"{method} {path} as another organisation answered {response.status_code} (expected 404): {response.text}"
    )
    assert response.json()["type"] == "/problems/not-found"

    control = await client.request(method, url, headers=org_b.headers, **kwargs)
    assert control.status_code not in (400, 404, 405), (
        f"{method} {path}: the owning organisation's own call answered {control.status_code}, so the 404 above "
        f"proves nothing. Register a valid body in tests.support.tenancy.REQUEST_BODIES[({method!r}, {path!r})] "
        f"or fix the factories: {control.text}"
    )


def test_routes_with_ids_are_discovered():
    paths = {p for _, p, _ in ROUTES}
    assert "/v1/iam/users/{user_id:uuid}" in paths
    assert "/v1/iam/users/{user_id:uuid}/role" in paths
