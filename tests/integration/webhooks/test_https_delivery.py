"""A delivery over real TLS to a receiver on loopback with a certificate of a CA made here: the
connection goes to the checked address while TLS checks the URL's name (SNI and the certificate's
subject), the Standard Webhooks headers arrive and verify with the endpoint's secret, and a
certificate the client does not trust fails the attempt (an error attempt, retried later), never
a delivery with verification skipped."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from spotless.domain.webhooks import delivery, signing
from spotless.webhook_settings import WebhookSettings

HOST = "hooks.integrator.example"
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _ca(directory: Path, label: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{label} test CA"))
        .issuer_name(_name(f"{label} test CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = directory / f"{label}-ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


def _leaf(directory: Path, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(HOST))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / "receiver.pem", directory / "receiver.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass
class TlsReceiver:
    port: int = 0
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)


async def _handle(receiver: TlsReceiver, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        writer.close()
        return
    line, *rest = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in rest if h)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    receiver.requests.append((line, headers, body))
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
    await writer.drain()
    writer.close()


@pytest.fixture
async def tls_receiver(tmp_path: Path) -> AsyncIterator[tuple[TlsReceiver, Path]]:
    ca_key, ca, ca_path = _ca(tmp_path, "receiver")
    cert_path, key_path = _leaf(tmp_path, ca_key, ca)
    receiver = TlsReceiver()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)

    def sni(sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        receiver.server_names.append(name)

    context.sni_callback = sni  # type: ignore[assignment]
    server = await asyncio.start_server(lambda r, w: _handle(receiver, r, w), "127.0.0.1", 0, ssl=context)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver, ca_path
    finally:
        server.close()
        await server.wait_closed()


async def _resolve(host: str, port: int) -> list[str]:
    if host != HOST:
        raise OSError("name does not resolve")
    return ["127.0.0.1"]


SETTINGS = WebhookSettings(allow_loopback=True)  # https only: allow_http stays off


async def test_a_signed_delivery_over_tls_to_the_checked_address(tls_receiver, tmp_path) -> None:
    receiver, ca_path = tls_receiver
    body = b'{"type":"booking.confirmed","data":{"id":"b1"}}'
    timestamp = int(datetime.now(UTC).timestamp())
    sent_headers = signing.headers([SECRET], "msg_1", timestamp, body)
    trust = ssl.create_default_context(cafile=str(ca_path))
    outcome = await delivery.send(
        f"https://{HOST}:{receiver.port}/hooks", sent_headers, body, SETTINGS, resolver=_resolve, trust=trust
    )
    assert outcome.delivered, outcome
    assert outcome.status_code == 200 and outcome.response_body == "ok"
    [(line, headers, received)] = receiver.requests
    assert line == "POST /hooks HTTP/1.1"
    assert receiver.server_names == [HOST]  # SNI names the URL's host, not the pinned address
    assert headers["host"] == f"{HOST}:{receiver.port}"
    assert received == body and headers["webhook-id"] == "msg_1"
    # The receiver verifies as Standard Webhooks says: HMAC-SHA256 over "id.timestamp.body".
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, f"msg_1.{headers['webhook-timestamp']}.".encode() + received, hashlib.sha256).digest()
    ).decode()
    assert f"v1,{expected}" in headers["webhook-signature"].split(" ")


async def test_a_certificate_the_client_does_not_trust_fails_the_attempt(tls_receiver, tmp_path) -> None:
    receiver, _ = tls_receiver
    _, _, other_ca = _ca(tmp_path, "someone-else")
    body = b"{}"
    sent_headers = signing.headers([SECRET], "msg_2", int(datetime.now(UTC).timestamp()), body)
    for trust in (ssl.create_default_context(cafile=str(other_ca)), None):  # another CA; the system's
        outcome = await delivery.send(
            f"https://{HOST}:{receiver.port}/hooks", sent_headers, body, SETTINGS, resolver=_resolve, trust=trust
        )
        assert not outcome.delivered and outcome.status_code is None
        assert outcome.error is not None and "CERTIFICATE_VERIFY_FAILED" in outcome.error
    assert receiver.requests == []  # nothing was sent to a receiver we could not verify
