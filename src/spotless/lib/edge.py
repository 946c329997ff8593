"""Protections at the edge of the API: who the client is, which hosts we answer for, the headers
every response carries, CORS, and problem+json answers written straight from ASGI middleware.

Client address. The direct peer is the client unless `TRUST_PROXY_HEADERS=true` and the peer is one
of our proxies (`TRUSTED_PROXY_IPS`, `TRUSTED_PROXY_CIDRS`). Only then is the proxy header read
(`TRUSTED_PROXY_HEADER`: `x-forwarded-for`, the default, or RFC 7239 `forwarded`; one of them, because
a proxy that writes one passes the other through untouched, where a client could forge it). The
chain is walked from the right, skipping our own proxies: the first address that is not ours is
the client. Everything left of it was written by the client and is never read. A hop our proxy
could not name (`unknown`, garbage) stops the walk at the proxy that reported it; an RFC 7239
obfuscated identifier (`_abc`) is a per-client token from our proxy and is used as it is.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any

import msgspec
from litestar.config.cors import CORSConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from spotless.lib.errors import PROBLEM_BASE
from spotless.lib.request_context import current_request_id
from spotless.settings import ConfigError, HttpSettings, Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_CLIENT_IP_STATE_KEY = "spotless.client_ip"
# Root operational endpoints answer whatever Host a load balancer or kubelet probes them with.
OPERATIONAL_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_OBFUSCATED = re.compile(r"^_[A-Za-z0-9._\-]{1,64}$")


# --- client address ---------------------------------------------------------------------------


class ProxyTrust(msgspec.Struct, frozen=True):
    enabled: bool
    ips: frozenset[IPAddress]
    networks: tuple[IPNetwork, ...]
    header: bytes

    def trusts(self, address: IPAddress) -> bool:
        return address in self.ips or any(address in network for network in self.networks)


@lru_cache(maxsize=8)
def proxy_trust(http: HttpSettings) -> ProxyTrust:
    """Parsed once per settings; a bad entry stops the start with the variable's name."""
    ips: set[IPAddress] = set()
    for raw in http.trusted_proxy_ips:
        address = parse_ip(raw)
        if address is None:
            raise ConfigError(f"TRUSTED_PROXY_IPS has an entry that is not an IP address: {raw!r}")
        ips.add(address)
    networks: list[IPNetwork] = []
    for raw in http.trusted_proxy_cidrs:
        try:
            networks.append(ipaddress.ip_network(raw.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"TRUSTED_PROXY_CIDRS has an entry that is not a CIDR: {raw!r}") from None
    return ProxyTrust(
        enabled=http.trust_proxy_headers and bool(ips or networks),
        ips=frozenset(ips),
        networks=tuple(networks),
        header=http.trusted_proxy_header.encode("latin-1"),
    )


def parse_ip(value: str) -> IPAddress | None:
    """An address as found in a peer or a proxy header: IPv4 with or without port, IPv6 bare or
    bracketed with or without port, IPv4-mapped IPv6 folded to IPv4. None if it is not an address."""
    text = value.strip().strip('"').strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _split_quoted(value: str, separators: str) -> list[str]:
    """Split on separators outside double quotes (RFC 7239 values may be quoted strings)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    escaped = False
    for char in value:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and quoted:
            current.append(char)
            escaped = True
        elif char == '"':
            quoted = not quoted
            current.append(char)
        elif char in separators and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _forwarded_hops(value: str) -> list[str]:
    """`for=` of each RFC 7239 element, left to right; an element without one counts as unknown."""
    hops: list[str] = []
    for element in _split_quoted(value, ","):
        if not element.strip():
            continue
        found = "unknown"
        for pair in _split_quoted(element, ";"):
            name, sep, raw = pair.partition("=")
            if sep and name.strip().lower() == "for":
                found = raw.strip().strip('"')
                break
        hops.append(found)
    return hops


def _header_hops(scope: Scope, header: bytes) -> list[str]:
    # Several lines of the same header are one list, in order (RFC 9110 5.3).
    values = [value.decode("latin-1") for name, value in scope.get("headers", ()) if name == header]
    if not values:
        return []
    joined = ",".join(values)
    if header == b"forwarded":
        return _forwarded_hops(joined)
    return [hop.strip() for hop in joined.split(",") if hop.strip()]


def resolve_client(peer: str | None, hops: list[str], trust: ProxyTrust) -> str:
    """The client address given the direct peer and the proxy header's hops (left to right)."""
    peer_ip = parse_ip(peer) if peer else None
    if peer_ip is None:
        return peer or "unknown"
    if not trust.enabled or not trust.trusts(peer_ip) or not hops:
        return peer_ip.compressed
    reporter = peer_ip
    for raw in reversed(hops):
        address = parse_ip(raw)
        if address is None:
            token = raw.strip().strip('"')
            # Our proxy names the client by an opaque token: use it; anything else stops at the proxy.
            return token if _OBFUSCATED.match(token) else reporter.compressed
        if not trust.trusts(address):
            return address.compressed
        reporter = address
    # Every hop is one of ours (an internal caller): the left-most is the best we know.
    return reporter.compressed


def client_ip(scope: Scope, settings: Settings) -> str:
    """The client's address for this request (see the module docstring); computed once per request."""
    state = scope.setdefault("state", {})
    cached = state.get(_CLIENT_IP_STATE_KEY)
    if cached is not None:
        return str(cached)
    trust = proxy_trust(settings.http)
    client = scope.get("client")
    peer = client[0] if client else None
    hops = _header_hops(scope, trust.header) if trust.enabled else []
    resolved = resolve_client(peer, hops, trust)
    state[_CLIENT_IP_STATE_KEY] = resolved
    return resolved


def ip_partition(address: str) -> str:
    """The rate-limit partition of an address: IPv6 clients get a /64 (one subscriber's share),
    so rotating through their own prefix does not multiply their quota."""
    parsed = parse_ip(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return "ip6:" + ipaddress.IPv6Network((parsed, 64), strict=False).network_address.compressed + "/64"
    if parsed is not None:
        return "ip:" + parsed.compressed
    return "ip:" + address[:64]


# --- problem+json from middleware --------------------------------------------------------------

_PROBLEM_HEADERS = [(b"content-type", b"application/problem+json")]


async def send_problem(
    scope: Scope,
    send: Send,
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: list[tuple[bytes, bytes]] | None = None,
    **extra: Any,
) -> None:
    """The same body the app's problem handler renders (lib/errors.py), for middleware that answers
    before a handler runs. Middleware inside RequestIdMiddleware sees the request's id."""
    body: dict[str, Any] = {
        "status": status,
        "type": PROBLEM_BASE + slug,
        "title": title,
        "instance": scope.get("path", ""),
        "detail": detail,
        **extra,
        "request_id": current_request_id() or scope.get("state", {}).get("request_id"),
    }
    payload = msgspec.json.encode(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_PROBLEM_HEADERS, (b"content-length", str(len(payload)).encode()), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": payload, "more_body": False})


# --- allowed hosts -----------------------------------------------------------------------------


def _host_without_port(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostMatcher:
    """`ALLOWED_HOSTS`: exact names, `*.example.com` for its subdomains, or `*` for any. The port is
    ignored (the allowed list names hosts, not listeners)."""

    def __init__(self, allowed: tuple[str, ...]) -> None:
        cleaned = [h.strip().lower() for h in allowed if h.strip()]
        self.any = not cleaned or "*" in cleaned
        self.exact = frozenset(_host_without_port(h) for h in cleaned if not h.startswith("*."))
        self.suffixes = tuple(h[1:] for h in cleaned if h.startswith("*."))

    def allows(self, host: str | None) -> bool:
        if self.any:
            return True
        if not host:
            return False
        name = _host_without_port(host)
        return name in self.exact or any(name.endswith(suffix) and len(name) > len(suffix) for suffix in self.suffixes)


class AllowedHostsMiddleware:
    """400 problem+json for a Host we do not serve (Litestar's own answers plain JSON)."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.matcher = HostMatcher(settings.http.allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.matcher.any or scope["type"] != "http" or scope.get("path") in OPERATIONAL_PATHS:
            await self.app(scope, receive, send)
            return
        host = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"), None)
        if self.matcher.allows(host):
            await self.app(scope, receive, send)
            return
        await send_problem(
            scope, send, 400, "invalid-host", "Host not served", "This API does not answer for the requested host."
        )


# --- response headers ----------------------------------------------------------------------------

_BASE_SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
# API answers are per user and often private: no shared or browser caching, and no rendering.
_API_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)


def security_headers(settings: Settings) -> Callable[[Message, Scope], Awaitable[None]]:
    """A `before_send` hook: it sees every response, including 404s from routing and CORS preflights.
    A header the handler set itself is left alone."""
    always = _BASE_SECURITY_HEADERS + ((_HSTS,) if settings.is_prod else ())

    async def add_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = list(message.get("headers") or ())
        present = {bytes(name).lower() for name, _ in headers}
        extra = always + (_API_HEADERS if str(scope.get("path", "")).startswith("/v1") else ())
        headers.extend(pair for pair in extra if pair[0] not in present)
        message["headers"] = headers

    return add_headers


# Headers browsers may send and read across origins. RateLimit fields must be exposed or the web
# app cannot see its own quota.
CORS_ALLOW_HEADERS = ["Authorization", "Content-Type", "Accept", "Idempotency-Key", "X-Request-ID"]
CORS_EXPOSE_HEADERS = ["RateLimit", "RateLimit-Policy", "Retry-After", "X-Request-ID", "Location"]


def cors_config(settings: Settings) -> CORSConfig | None:
    """CORS from `CORS_ORIGINS` (none when empty). `*` is refused at start in prod and with
    STRICT_CORS (see settings); bearer tokens need no credentialed CORS, so credentials stay off."""
    origins = list(settings.http.cors_origins)
    if not origins:
        return None
    return CORSConfig(
        allow_origins=origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"],
        allow_headers=CORS_ALLOW_HEADERS,
        expose_headers=CORS_EXPOSE_HEADERS,
        allow_credentials=False,
        max_age=600,
    )
