"""An https delivery dials the address that was checked while TLS and Host keep the name: the
request leaves with the IP as its URL host, the name as SNI (httpcore's `sni_hostname`, also the
name the certificate is verified against) and as Host. The far end is httpx's MockTransport."""

from __future__ import annotations

import httpx

from spotless.domain.webhooks import delivery
from spotless.webhook_settings import WebhookSettings


async def test_https_goes_to_the_checked_address_with_the_name_kept() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async def resolve(host: str, port: int) -> list[str]:
        return ["2606:4700:4700::1111", "93.184.215.14"]

    outcome = await delivery.send(
        "https://hooks.example.com:8443/in?x=1",
        {"webhook-id": "msg_1"},
        b"{}",
        WebhookSettings(),
        resolver=resolve,
        transport=httpx.MockTransport(answer),
    )
    assert outcome.delivered
    [request] = seen
    assert request.url.host == "2606:4700:4700::1111" and request.url.port == 8443
    assert request.url.raw_path == b"/in?x=1"
    assert request.headers["host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com"


async def test_nothing_is_sent_when_the_name_resolves_inside() -> None:
    seen: list[httpx.Request] = []

    async def resolve(host: str, port: int) -> list[str]:
        return ["10.0.0.7"]

    outcome = await delivery.send(
        "https://hooks.example.com/in",
        {},
        b"{}",
        WebhookSettings(),
        resolver=resolve,
        transport=httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200)),
    )
    assert seen == [] and outcome.status_code is None and "not a public address" in (outcome.error or "")


async def test_http_is_refused_unless_allowed() -> None:
    outcome = await delivery.send("http://93.184.215.14/in", {}, b"{}", WebhookSettings())
    assert outcome.status_code is None and "https" in (outcome.error or "")


def test_an_ipv6_literal_keeps_its_brackets_in_the_host_header() -> None:
    from spotless.domain.webhooks.addresses import Target

    url, headers, _extensions = delivery.pinned_request(
        Target(scheme="https", host="2606:4700:4700::1111", port=8443, address="2606:4700:4700::1111"),
        "https://[2606:4700:4700::1111]:8443/in",
    )
    assert headers["Host"] == "[2606:4700:4700::1111]:8443" and url.host == "2606:4700:4700::1111"
