"""Where a webhook may go: only public addresses, whatever form they are written or resolved in."""

from __future__ import annotations

import ipaddress

import pytest

from spotless.domain.webhooks.addresses import AddressRefused, numeric_host, parse_url, refusal, resolve_target

HOSTILE = [
    "127.0.0.1",
    "127.255.255.254",
    "0.0.0.0",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "100.64.0.1",  # CGNAT
    "100.100.100.200",  # Alibaba's metadata, in CGNAT
    "169.254.169.254",  # cloud metadata
    "169.254.0.1",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.0.8",
    "198.18.0.1",
    "192.0.2.1",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",  # AWS metadata over IPv6
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b:1::a00:1",  # local-use NAT64
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
    "2001:db8::1",
    "::127.0.0.1",  # IPv4-compatible
]
PUBLIC = ["93.184.215.14", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", HOSTILE)
def test_internal_addresses_are_refused(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_loopback_only_when_the_test_setting_allows_it_and_nothing_else_with_it() -> None:
    assert refusal(ipaddress.ip_address("127.0.0.1"), allow_loopback=True) is None
    assert refusal(ipaddress.ip_address("::1"), allow_loopback=True) is None
    for address in ("10.0.0.1", "169.254.169.254", "100.64.0.1", "fd00:ec2::254"):
        assert refusal(ipaddress.ip_address(address), allow_loopback=True) is not None


@pytest.mark.parametrize(
    ("host", "address"),
    [("127.1", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("2130706433", "127.0.0.1"), ("[::1]", "::1")],
)
def test_numeric_spellings_are_read_as_the_address_they_name(host: str, address: str) -> None:
    assert numeric_host(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",  # http not allowed by default
        "ftp://example.com/",
        "file:///etc/passwd",
        "https://user:pw@example.com/",
        "https:///path",
        "https://localhost/hook",
        "https://api.localhost/hook",
        "https://metadata.google.internal/",
        "https://example.com:99999/",
        "hTTPs://\u009a\u00ac",  # no name the resolver could be asked (IDNA cannot encode it)
    ],
)
def test_urls_that_are_not_plain_https_are_refused(url: str) -> None:
    with pytest.raises(AddressRefused):
        parse_url(url, allow_http=False)


def resolver_of(table: dict[str, list[str]]):
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        if host not in table:
            raise OSError("no such name")
        return table[host]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


@pytest.mark.parametrize(
    "addresses",
    [
        ["10.0.0.5"],
        ["169.254.169.254"],
        ["127.0.0.1"],
        ["::ffff:127.0.0.1"],
        ["64:ff9b::a9fe:a9fe"],
        ["fd00:ec2::254"],
        ["100.64.1.1"],
        # One bad address among good ones is enough to refuse: we would not know which we get.
        ["93.184.215.14", "10.0.0.5"],
        ["2606:4700:4700::1111", "::1"],
    ],
)
async def test_a_name_resolving_to_an_internal_address_is_refused(addresses: list[str]) -> None:
    resolve = resolver_of({"hooks.example.com": addresses})
    with pytest.raises(AddressRefused, match="not a public address"):
        await resolve_target("https://hooks.example.com/in", allow_http=False, allow_loopback=False, resolver=resolve)


async def test_the_name_is_resolved_once_and_the_checked_address_is_the_target() -> None:
    resolve = resolver_of({"hooks.example.com": ["93.184.215.14", "2606:4700:4700::1111"]})
    target = await resolve_target(
        "https://hooks.example.com:8443/in", allow_http=False, allow_loopback=False, resolver=resolve
    )
    assert resolve.calls == ["hooks.example.com"]  # type: ignore[attr-defined]
    assert (target.scheme, target.host, target.port, target.address) == (
        "https",
        "hooks.example.com",
        8443,
        "93.184.215.14",
    )


async def test_a_mapped_public_address_is_dialled_as_ipv4() -> None:
    resolve = resolver_of({"hooks.example.com": ["::ffff:8.8.8.8"]})
    target = await resolve_target(
        "https://hooks.example.com/", allow_http=False, allow_loopback=False, resolver=resolve
    )
    assert target.address == "8.8.8.8"


@pytest.mark.parametrize("url", ["https://127.1/", "https://0x7f000001/", "https://2130706433/", "https://[::1]/"])
async def test_numeric_hosts_are_checked_without_a_lookup(url: str) -> None:
    resolve = resolver_of({})
    with pytest.raises(AddressRefused):
        await resolve_target(url, allow_http=False, allow_loopback=False, resolver=resolve)
    assert resolve.calls == []  # type: ignore[attr-defined]


async def test_a_name_that_does_not_resolve_is_refused_for_sending() -> None:
    with pytest.raises(AddressRefused, match="does not resolve"):
        await resolve_target(
            "https://nowhere.example.com/", allow_http=False, allow_loopback=False, resolver=resolver_of({})
        )
