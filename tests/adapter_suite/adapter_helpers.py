"""What the adapter tests share: test certificates and TLS domains, and waiting for a condition."""

from __future__ import annotations

import pathlib
import socket
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import trustme
from wire import OK, REGISTER

from sansio_wss import TLSDomain

__all__ = [
    "Certs",
    "OK",
    "REGISTER",
    "certs",
    "client_domain",
    "client_ssl_context",
    "has_ipv6",
    "server_domain",
    "server_ssl_context",
    "wait_for",
]


@dataclass(frozen=True)
class Certs:
    """PEM files of one test CA, a server certificate and a client certificate."""

    ca: str
    server: str
    other_server: str
    client: str
    other_ca: str


@cache
def certs() -> Certs:
    """Written once per test run into a temporary folder."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="sansio-wss-certs-"))
    ca = trustme.CA()
    other_ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1", "::1", "sip.example.com")
    other = ca.issue_cert("other.example.com")
    client = ca.issue_cert("client.example.com")
    paths = {}
    for name, blob in (
        ("ca", ca.cert_pem),
        ("other_ca", other_ca.cert_pem),
    ):
        path = folder / f"{name}.pem"
        blob.write_to_path(str(path))
        paths[name] = str(path)
    for name, cert in (("server", server), ("other_server", other), ("client", client)):
        path = folder / f"{name}.pem"
        cert.private_key_and_cert_chain_pem.write_to_path(str(path))
        paths[name] = str(path)
    return Certs(**paths)


def server_domain(**kw: object) -> TLSDomain:
    return TLSDomain(name=str(kw.pop("name", "server")), side="server", certificate=certs().server, **kw)  # type: ignore[arg-type]


def client_domain(**kw: object) -> TLSDomain:
    return TLSDomain(name=str(kw.pop("name", "client")), side="client", ca_list=certs().ca, **kw)  # type: ignore[arg-type]


def client_ssl_context() -> ssl.SSLContext:
    """A plain stdlib client context trusting the test CA (for third-party peers)."""
    context = ssl.create_default_context(cafile=certs().ca)
    return context


def server_ssl_context() -> ssl.SSLContext:
    """A plain stdlib server context with the test server certificate (for third-party peers)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs().server)
    return context


def has_ipv6() -> bool:
    """Whether ::1 can be bound here."""
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Whether `predicate()` came true within `timeout` seconds (polled every 10 ms)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
