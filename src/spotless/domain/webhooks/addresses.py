"""Where a webhook may go: a public address on the internet, never one of ours.

`ipaddress.is_private` is not an SSRF filter (it lets 100.64/10 CGNAT, NAT64 and IPv4-mapped forms
of internal addresses through), so an address is unwrapped first (::ffff:a.b.c.d, 64:ff9b::/96,
6to4, Teredo) and must then be global and none of the special ranges below. A name is resolved
once, every address it resolves to must pass, and the connection goes to the address that was
checked (`delivery.pinned_request`): a second lookup could answer differently (DNS rebinding)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses it resolves to (injected in tests)
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

# Ranges refused even where `is_global` would say otherwise (or to say why in one place).
_BLOCKED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT, shared address space
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/128",
        "::1/128",
        "::/96",  # IPv4-compatible (deprecated)
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215): never a public destination
        "100::/64",  # discard
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local (fd00:ec2::254, the AWS metadata address, is one)
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(ValueError):
    """The destination is not a public internet address (or cannot be reached as one)."""


@dataclass(frozen=True)
class Target:
    """A checked destination: connect to `address`, present `host` (SNI and Host header)."""

    scheme: str
    host: str
    port: int
    address: str


def unwrap(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 form carries (mapped, NAT64, 6to4, Teredo client), else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
    return address


def refusal(address: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why `address` may not receive webhooks, or None when it is a public address."""
    inner = unwrap(address)
    # A mapped or NAT64 form is only a spelling of its IPv4 address (the outer form is never
    # "global" by itself); 6to4 and Teredo must pass both as the outer and the inner address.
    translated = isinstance(address, ipaddress.IPv6Address) and (address.ipv4_mapped is not None or address in _NAT64)
    for candidate in {inner} if translated else {address, inner}:
        if allow_loopback and any(candidate in net for net in _LOOPBACK if net.version == candidate.version):
            continue
        if any(candidate in net for net in _BLOCKED if net.version == candidate.version):
            return f"{address} is not a public address"
        if (
            not candidate.is_global
            or candidate.is_multicast
            or candidate.is_unspecified
            or candidate.is_reserved
            or candidate.is_link_local
            or candidate.is_private
        ):
            return f"{address} is not a public address"
    return None


def numeric_host(host: str) -> IPAddress | None:
    """An address written as a host (`127.0.0.1`, `[::1]`, and the forms inet_aton accepts:
    `127.1`, `0x7f000001`, `2130706433`), which a resolver would turn into that address."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if bare and all(c in "0123456789abcdefxABCDEFX." for c in bare) and any(c.isdigit() for c in bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def parse_url(url: str, *, allow_http: bool) -> tuple[str, str, int]:
    """(scheme, host, port) of a receiver URL, or AddressRefused saying what is wrong with it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise AddressRefused(f"not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or (scheme == "http" and not allow_http):
        raise AddressRefused("must be an https:// URL")
    if parts.username is not None or parts.password is not None:
        raise AddressRefused("must not carry a user name or password")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise AddressRefused("must name a host")
    try:
        # What the resolver will be asked: a name IDNA cannot encode is no host at all.
        host.encode("idna")
    except UnicodeError:
        raise AddressRefused(f"{host!r} is not a valid host name") from None
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        raise AddressRefused(f"{host} is not a public host")
    return scheme, host, port or (443 if scheme == "https" else 80)


async def system_resolver(host: str, port: int) -> Sequence[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


# Tests resolve names of their own (a hostile name, the local receiver under a public-looking
# name); everything else resolves through the system.
_resolver: Resolver | None = None


def set_resolver(resolver: Resolver | None) -> None:
    global _resolver
    _resolver = resolver


def current_resolver() -> Resolver:
    return _resolver or system_resolver


async def resolve_target(
    url: str,
    *,
    allow_http: bool,
    allow_loopback: bool,
    resolver: Resolver = system_resolver,
    resolve_seconds: float = 5.0,
) -> Target:
    """Resolve `url`'s host once and check every address; the first one is where to connect."""
    scheme, host, port = parse_url(url, allow_http=allow_http)
    literal = numeric_host(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            found = await asyncio.wait_for(resolver(host, port), resolve_seconds)
        except (TimeoutError, OSError) as exc:
            raise AddressRefused(f"{host} does not resolve ({exc.__class__.__name__})") from None
        try:
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
        except ValueError as exc:
            raise AddressRefused(f"{host} resolves to something that is not an address ({exc})") from None
        if not addresses:
            raise AddressRefused(f"{host} does not resolve")
    for address in addresses:
        reason = refusal(address, allow_loopback=allow_loopback)
        if reason:
            raise AddressRefused(f"{host} resolves to {reason}" if literal is None else reason)
    first = addresses[0]
    # A mapped form is its IPv4 address; other IPv6 forms are dialled as they are.
    connect = first.ipv4_mapped if isinstance(first, ipaddress.IPv6Address) and first.ipv4_mapped else first
    return Target(scheme=scheme, host=host, port=port, address=str(connect))
