"""Clients of a proxy from 127.0.0.2, another loopback address than the proxy's own 127.0.0.1."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from adapter_suite.adapter_helpers import OK, REGISTER, client_ssl_context
from adapter_suite.endpoint_harness import EndpointHandle
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin, Subprotocol

__all__ = ["CLIENT", "ORIGIN", "dial", "round_trip", "tls_dial", "websocket"]

CLIENT = "127.0.0.2"  # all of 127/8 is loopback on Linux
ORIGIN = "https://app.example.com"
LIMIT = 5.0


def dial(address: tuple[str, int], source: str = CLIENT) -> socket.socket:
    """A TCP socket from `source` (any port) connected to `address`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(LIMIT)
        sock.bind((source, 0))
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def tls_dial(address: tuple[str, int], source: str = CLIENT) -> ssl.SSLSocket:
    """`dial`, then TLS for "localhost" (the test CA's server certificate)."""
    return client_ssl_context().wrap_socket(dial(address, source), server_hostname="localhost")


@contextmanager
def websocket(address: tuple[str, int], *, secure: bool, source: str = CLIENT) -> Iterator[ClientConnection]:
    """websockets' client (the `sip` subprotocol, an Origin) over a socket from `source`."""
    sock = dial(address, source)
    uri = f"{'wss' if secure else 'ws'}://localhost:{address[1]}/ws"
    with connect(
        uri,
        sock=sock,
        ssl=client_ssl_context() if secure else None,
        server_hostname="localhost" if secure else None,
        subprotocols=[Subprotocol("sip")],
        origin=Origin(ORIGIN),
        open_timeout=LIMIT,
    ) as client:
        yield client


def round_trip(endpoint: EndpointHandle, client: ClientConnection) -> Any:
    """REGISTER from the client, 200 OK back over its flow, then a request from our side that the
    client answers; the flow."""
    client.send(REGISTER)
    incoming = endpoint.recv()
    assert incoming.event.message == REGISTER
    endpoint.send(OK, incoming.flow.flow_id)
    assert client.recv(timeout=LIMIT) == OK.decode()
    options = b"OPTIONS sip:alice@example.com SIP/2.0\r\nCSeq: 7 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    endpoint.send(options, incoming.flow.flow_id)
    assert client.recv(timeout=LIMIT) == options.decode()
    answer = b"SIP/2.0 200 OK\r\nCSeq: 7 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    client.send(answer)
    again = endpoint.recv()
    assert again.event.message == answer
    assert again.flow.flow_id == incoming.flow.flow_id
    return incoming.flow
