"""Every route declares the permission it needs, or is explicitly public; no route is left open
by omission. The public surface is listed here, so making a route public shows up in review."""

from __future__ import annotations

from litestar import Litestar
from litestar.handlers import HTTPRouteHandler

from spotless.domain.identity.permissions import PERMISSIONS, ROLE_PERMISSIONS, ROLES

PUBLIC_ROUTES = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),  # guarded by METRICS_TOKEN instead
    ("GET", "/v1/status"),
    ("POST", "/v1/auth/signup"),
    ("POST", "/v1/auth/login"),
    ("POST", "/v1/auth/refresh"),
    ("POST", "/v1/auth/password-reset/request"),
    ("POST", "/v1/auth/password-reset/confirm"),
    # An invoice's public link: the token in the path is the credential (billing/links.py).
    ("GET", "/v1/pay/{token:str}"),
    ("GET", "/v1/pay/{token:str}/pdf"),
    ("POST", "/v1/pay/{token:str}/checkout"),
    ("POST", "/v1/pay/{token:str}/card-setup"),  # the card-update link of a follow-up step
    ("POST", "/v1/payments/stripe/webhook"),  # authenticated by Stripe's signature on the body
    ("POST", "/v1/integrations/google/notifications"),  # authenticated by the watch channel's token
    # RFC 8058 one-click unsubscribe: the signed token in the path is the credential (messaging/unsubscribe.py).
    ("POST", "/v1/messaging/unsubscribe/{token:str}"),
    ("POST", "/v1/messaging/twilio/inbound"),  # authenticated by X-Twilio-Signature
    ("POST", "/v1/messaging/twilio/status/{org_id:uuid}/{delivery_id:uuid}"),  # X-Twilio-Signature
    ("POST", "/v1/messaging/sendgrid/events"),  # SendGrid's ECDSA signature
    # The local storage backend's downloads: the signed, expiring link is the credential (lib/storage/local.py).
    ("GET", "/v1/storage/{key:path}"),
    # ... and its presigned-POST uploads: the signed form is the credential.
    ("POST", "/v1/storage/uploads"),
}
# Litestar's OpenAPI document and its UIs.
PUBLIC_PREFIXES = ("/schema",)


def _handlers(app: Litestar):
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler):
                continue
            methods = set(handler.http_methods) - {"OPTIONS", "HEAD"}
            for method in sorted(methods):
                yield method, route.path, handler


def test_every_route_declares_a_known_permission_or_is_listed_public(app: Litestar):
    missing, unknown, unexpected_public = [], [], []
    seen_public = set()
    for method, path, handler in _handlers(app):
        if handler.opt.get("public"):
            if path.startswith(PUBLIC_PREFIXES):
                continue
            seen_public.add((method, path))
            if (method, path) not in PUBLIC_ROUTES:
                unexpected_public.append(f"{method} {path}")
            continue
        permission = handler.opt.get("permission")
        if not permission:
            missing.append(f"{method} {path}")
        elif permission not in PERMISSIONS:
            unknown.append(f"{method} {path}: {permission}")
    assert not missing, f"routes without opt={{'permission': ...}}: {missing}"
    assert not unknown, f"routes naming a permission that does not exist: {unknown}"
    assert not unexpected_public, f"public routes not listed in PUBLIC_ROUTES: {unexpected_public}"
    assert seen_public == PUBLIC_ROUTES - ({("GET", "/metrics")} if not app.state.settings.metrics.enabled else set())


def test_roles_are_ranked_and_documented():
    assert ROLES == ("owner", "admin", "dispatcher", "finance", "viewer", "worker")
    assert set(ROLE_PERMISSIONS) == set(ROLES)
    for role, keys in ROLE_PERMISSIONS.items():
        assert keys <= set(PERMISSIONS), role
        assert "core.view" in keys, role
    from spotless.domain.identity import permissions

    for role in ROLES:
        assert f"``{role}``" in (permissions.__doc__ or ""), f"role {role} is not documented"


async def test_a_route_without_a_permission_is_refused_not_opened(app, client):
    """Authorisation fails closed: a handler that forgot its permission answers 403 to everyone."""
    from litestar import get

    from tests.support.identity import signup

    @get("/v1/_forgotten")
    async def forgotten() -> dict:
        return {"open": True}

    app.register(forgotten)
    owner = await signup(client)
    response = await client.get("/v1/_forgotten", headers=owner.headers)
    assert response.status_code == 403
    assert response.json()["type"] == "/problems/forbidden"
    unauthenticated = await client.get("/v1/_forgotten")
    assert unauthenticated.status_code == 401
