"""Who the client is: proxy headers count only from our proxies, read from the right."""

from __future__ import annotations

import pytest

from spotless.lib.edge import client_ip, ip_partition, parse_ip, proxy_trust, resolve_client
from spotless.settings import ConfigError, load_settings

BASE = {"DATABASE_URL": "postgresql://u@db/x", "REDIS_URL": "redis://r:6379/0"}


def settings(**env: str):
    return load_settings({**BASE, **env})


def scope(peer: str | None, *headers: tuple[str, str]) -> dict:
    return {
        "type": "http",
        "client": (peer, 40000) if peer else None,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
    }


BEHIND_PROXY = {"TRUST_PROXY_HEADERS": "true", "TRUSTED_PROXY_IPS": "10.0.0.1", "TRUSTED_PROXY_CIDRS": "10.1.0.0/16"}


def test_without_trust_the_peer_is_the_client_whatever_the_headers_say():
    s = settings()
    assert client_ip(scope("198.51.100.7", ("X-Forwarded-For", "1.2.3.4")), s) == "198.51.100.7"
    assert client_ip(scope("198.51.100.7", ("Forwarded", "for=1.2.3.4")), s) == "198.51.100.7"


def test_spoofed_header_from_an_untrusted_peer_changes_nothing():
    s = settings(**BEHIND_PROXY)
    spoofed = scope("198.51.100.7", ("X-Forwarded-For", "1.2.3.4, 10.0.0.1"))
    assert client_ip(spoofed, s) == "198.51.100.7"


def test_trusted_peer_right_most_untrusted_address_wins_over_client_written_ones():
    s = settings(**BEHIND_PROXY)
    # The client wrote "6.6.6.6"; our edge proxy appended the address it saw (203.0.113.9); an
    # internal hop (10.1.2.3) appended the edge proxy's; the direct peer is 10.0.0.1.
    request = scope("10.0.0.1", ("X-Forwarded-For", "6.6.6.6, 203.0.113.9, 10.1.2.3"))
    assert client_ip(request, s) == "203.0.113.9"


def test_several_header_lines_are_one_list_in_order():
    s = settings(**BEHIND_PROXY)
    request = scope("10.0.0.1", ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.9"))
    assert client_ip(request, s) == "203.0.113.9"


def test_trust_needs_the_switch_and_a_list():
    assert client_ip(scope("10.0.0.1", ("X-Forwarded-For", "203.0.113.9")), settings(TRUSTED_PROXY_IPS="10.0.0.1")) == (
        "10.0.0.1"
    )
    assert client_ip(scope("10.0.0.1", ("X-Forwarded-For", "203.0.113.9")), settings(TRUST_PROXY_HEADERS="true")) == (
        "10.0.0.1"
    )


def test_only_the_configured_header_is_read():
    s = settings(**BEHIND_PROXY)
    # Our proxy writes X-Forwarded-For; a Forwarded header can only come from the client.
    request = scope("10.0.0.1", ("Forwarded", "for=6.6.6.6"), ("X-Forwarded-For", "203.0.113.9"))
    assert client_ip(request, s) == "203.0.113.9"
    fwd = settings(**BEHIND_PROXY, TRUSTED_PROXY_HEADER="forwarded")
    request = scope("10.0.0.1", ("Forwarded", "for=203.0.113.9"), ("X-Forwarded-For", "6.6.6.6"))
    assert client_ip(request, fwd) == "203.0.113.9"


def test_forwarded_syntax_quotes_ipv6_ports_and_params():
    fwd = settings(**BEHIND_PROXY, TRUSTED_PROXY_HEADER="forwarded")
    value = 'for=6.6.6.6;proto=http, For="[2001:db8:cafe::17]:4711";by=10.0.0.1;proto=https, for=10.1.0.9'
    assert client_ip(scope("10.0.0.1", ("Forwarded", value)), fwd) == "2001:db8:cafe::17"
    assert client_ip(scope("10.0.0.1", ("Forwarded", "proto=https;for=192.0.2.60:8080")), fwd) == "192.0.2.60"


def test_unnamed_hop_stops_at_the_proxy_that_reported_it_obfuscated_token_is_used():
    s = settings(**BEHIND_PROXY)
    assert client_ip(scope("10.0.0.1", ("X-Forwarded-For", "6.6.6.6, unknown, 10.1.0.5")), s) == "10.1.0.5"
    fwd = settings(**BEHIND_PROXY, TRUSTED_PROXY_HEADER="forwarded")
    assert client_ip(scope("10.0.0.1", ("Forwarded", "for=6.6.6.6, for=_gazonk")), fwd) == "_gazonk"
    # An element without for= is not skipped (skipping would reach what the client wrote).
    assert client_ip(scope("10.0.0.1", ("Forwarded", "for=6.6.6.6, proto=https")), fwd) == "10.0.0.1"


def test_all_hops_trusted_gives_the_left_most():
    s = settings(**BEHIND_PROXY)
    assert client_ip(scope("10.0.0.1", ("X-Forwarded-For", "10.1.0.7, 10.1.0.8")), s) == "10.1.0.7"


def test_addresses_are_normalised():
    assert str(parse_ip("203.0.113.9:443")) == "203.0.113.9"
    assert str(parse_ip("[2001:DB8::1]:443")) == "2001:db8::1"
    assert str(parse_ip("::ffff:192.0.2.1")) == "192.0.2.1"
    assert parse_ip("not-an-ip") is None and parse_ip("") is None
    assert resolve_client("::ffff:10.0.0.1", [], proxy_trust(settings().http)) == "10.0.0.1"
    assert resolve_client(None, ["1.2.3.4"], proxy_trust(settings(**BEHIND_PROXY).http)) == "unknown"


def test_ipv6_clients_share_their_64_ipv4_clients_do_not():
    assert ip_partition("2001:db8:1:2:aaaa::1") == ip_partition("2001:db8:1:2:bbbb::9") == "ip6:2001:db8:1:2::/64"
    assert ip_partition("2001:db8:1:3::1") != ip_partition("2001:db8:1:2::1")
    assert ip_partition("203.0.113.9") == "ip:203.0.113.9"


def test_result_is_computed_once_per_request():
    s = settings(**BEHIND_PROXY)
    request = scope("10.0.0.1", ("X-Forwarded-For", "203.0.113.9"))
    assert client_ip(request, s) == "203.0.113.9"
    request["headers"] = []
    assert client_ip(request, s) == "203.0.113.9"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"TRUSTED_PROXY_IPS": "10.0.0.300"}, "TRUSTED_PROXY_IPS"),
        ({"TRUSTED_PROXY_CIDRS": "10.0.0.0/99"}, "TRUSTED_PROXY_CIDRS"),
    ],
)
def test_bad_proxy_lists_are_refused_by_name(env, name):
    with pytest.raises(ConfigError, match=name):
        proxy_trust(settings(TRUST_PROXY_HEADERS="true", **env).http)


def test_unknown_proxy_header_is_refused():
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_HEADER"):
        settings(TRUSTED_PROXY_HEADER="x-real-ip")
