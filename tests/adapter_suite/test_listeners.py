"""Plain `ws` listeners, PROXY headers and forwarded headers on every adapter's `Endpoint`, with the
`websockets` library as the client (over a socket that first sent the PROXY header, built from
the specification in `proxy_wire`), and a raw socket where no client would go."""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import proxy_wire
import pytest
from adapter_helpers import OK, REGISTER, client_ssl_context, server_domain, wait_for
from endpoint_harness import ENDPOINT_ADAPTERS, EndpointHandle, EndpointHarness, endpoint_harness
from harness import ADAPTERS, LISTENER, harness_for
from hep_wire import ends, parts
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin, Subprotocol
from wire import request

from sansio_wss import Cause, Config, Listener, ProxyPolicy, TraceConfig, Tracer
from sansio_wss.hep import PayloadFormat

CLIENT = "127.0.0.2"  # all of 127/8 is loopback on Linux: a client address other than the proxy's
ORIGIN = "https://example.com"


@pytest.fixture(params=ENDPOINT_ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> EndpointHarness:
    """The adapter's endpoint harness (conftest.py checks that the test left no thread or socket)."""
    return endpoint_harness(request.param)


def dial(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


@contextmanager
def websocket(
    port: int,
    *,
    secure: bool,
    header: bytes = b"",
    source: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
) -> Iterator[ClientConnection]:
    """websockets' client over a socket of ours that first sent `header` (a PROXY header)."""
    sock = dial(port, source)
    sock.sendall(header)
    uri = f"{'wss' if secure else 'ws'}://localhost:{port}/ws"
    with connect(
        uri,
        sock=sock,
        ssl=client_ssl_context() if secure else None,
        subprotocols=[Subprotocol("sip")],
        origin=Origin(ORIGIN),
        additional_headers=headers,
        open_timeout=5,
    ) as client:
        yield client


def round_trip(endpoint: EndpointHandle, client: ClientConnection) -> Any:
    """REGISTER from the client, 200 OK back over its flow; the flow."""
    client.send(REGISTER)
    incoming = endpoint.recv()
    assert incoming.event.message == REGISTER
    endpoint.send(OK, incoming.flow.flow_id)
    assert client.recv(timeout=5) == OK.decode()
    return incoming.flow


def refused_without_reply(sock: socket.socket, data: bytes) -> bytes:
    """What the server sent back before closing, after `data` (empty: nothing; a reset, when it
    closed before our bytes arrived, ends the reading as a FIN would)."""
    got = b""
    with sock, contextlib.suppress(ConnectionResetError, BrokenPipeError):
        if data:
            sock.sendall(data)
        while chunk := sock.recv(65536):
            got += chunk
    return got


# ------------------------------------------------------------------- plain ws


def test_a_plain_listener_serves_ws(adapter: EndpointHarness) -> None:
    with adapter.endpoint() as endpoint:  # no TLS domain at all
        _, port = endpoint.listen("127.0.0.1", 0, secure=False)
        with websocket(port, secure=False, source=CLIENT) as client:
            assert client.subprotocol == "sip"
            flow = round_trip(endpoint, client)
            assert flow.remote[0] == CLIENT
            assert flow.connection.tls is None
            assert flow.connection.proxy_address is None


@pytest.mark.parametrize("name", ADAPTERS)
def test_serve_takes_listeners(name: str) -> None:
    """`serve()` with a plain `Listener` and a PROXY one beside a (host, port) pair: one handler."""
    listeners: list[Listener | tuple[str, int]] = [
        Listener("127.0.0.1", 0, secure=False),
        Listener("127.0.0.1", 0, proxy=PROXIED),
        LISTENER,
    ]
    with harness_for(name).serve(listeners=listeners) as running:
        plain, proxied, secure = (port for _, port in running.addresses)
        for port, secure_port, header in (
            (plain, False, b""),
            (proxied, True, proxy_wire.v1(CLIENT_SEEN, SERVER_SEEN)),
            (secure, True, b""),
        ):
            with websocket(port, secure=secure_port, header=header) as client:
                client.send(REGISTER)
                assert client.recv(timeout=5) == REGISTER.decode()  # the harness's handler echoes
        assert [m.message for m in running.seen] == [REGISTER] * 3


def test_plain_and_tls_listeners_side_by_side(adapter: EndpointHarness) -> None:
    with adapter.endpoint(tls=[server_domain()]) as endpoint:
        _, plain = endpoint.listen("127.0.0.1", 0, secure=False)
        _, secure = endpoint.listen("127.0.0.1", 0)
        with websocket(plain, secure=False) as one, websocket(secure, secure=True) as two:
            assert round_trip(endpoint, one).connection.tls is None
            assert round_trip(endpoint, two).connection.tls is not None
        # TLS to the plain listener, and plain HTTP to the TLS one, both fail.
        with pytest.raises(ssl.SSLError), websocket(plain, secure=True):
            pass
        with pytest.raises(Exception), websocket(secure, secure=False):  # noqa: B017 (a TLS alert)
            pass


def test_a_plain_listener_on_a_public_address_warns(
    adapter: EndpointHarness, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sansio_wss"), adapter.endpoint() as endpoint:
        endpoint.listen("127.0.0.1", 0, secure=False)
        assert not [r for r in caplog.records if "not loopback" in r.getMessage()]
        endpoint.listen("0.0.0.0", 0, secure=False)
        warned = [r for r in caplog.records if "not loopback" in r.getMessage()]
        assert len(warned) == 1 and warned[0].levelno == logging.WARNING
        assert "plain ws:// listener on 0.0.0.0:" in warned[0].getMessage()


# --------------------------------------------------------------- PROXY headers


PROXIED = ProxyPolicy(trusted=["127.0.0.1"], proxy_protocol=True, header_timeout=0.5)
CLIENT_SEEN = ("203.0.113.9", 40404)
SERVER_SEEN = ("198.51.100.1", 443)


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
def test_a_proxy_header_names_both_ends(adapter: EndpointHarness, version: str, secure: bool) -> None:
    header = (proxy_wire.v1 if version == "v1" else proxy_wire.v2)(CLIENT_SEEN, SERVER_SEEN)
    with adapter.endpoint(tls=[server_domain()]) as endpoint:
        _, port = endpoint.listen("127.0.0.1", 0, secure=secure, proxy=PROXIED)
        with websocket(port, secure=secure, header=header) as client:
            flow = round_trip(endpoint, client)
            assert flow.remote == CLIENT_SEEN
            conn = flow.connection
            assert conn.remote_address == CLIENT_SEEN
            assert conn.local_address == SERVER_SEEN
            assert conn.proxy_address is not None and conn.proxy_address[0] == "127.0.0.1"
            assert conn.proxy_header.version == (1 if version == "v1" else 2)
            assert flow.listener == SERVER_SEEN  # what the client connected to: the proxy's address
            assert (conn.tls is not None) == secure


def test_a_local_header_keeps_the_socket_addresses(adapter: EndpointHarness) -> None:
    tlvs = proxy_wire.tlv(proxy_wire.UNIQUE_ID, b"conn-42")
    with adapter.endpoint() as endpoint:
        _, port = endpoint.listen("127.0.0.1", 0, secure=False, proxy=PROXIED)
        with websocket(
            port, secure=False, header=proxy_wire.v2(command=proxy_wire.LOCAL, tlvs=tlvs)
        ) as client:
            flow = round_trip(endpoint, client)
            assert flow.remote[0] == "127.0.0.1" and flow.connection.proxy_address is None
            assert flow.connection.proxy_header.tlv(proxy_wire.UNIQUE_ID) == b"conn-42"


@pytest.mark.parametrize(
    ("source", "data", "detail"),
    [
        (CLIENT, proxy_wire.v1(CLIENT_SEEN, SERVER_SEEN), "not a trusted proxy"),  # untrusted peer
        ("127.0.0.1", request(), "not a PROXY header"),  # a trusted peer that sends none
        ("127.0.0.1", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "without CRLF"),
        ("127.0.0.1", proxy_wire.v2(CLIENT_SEEN, SERVER_SEEN, version=3), "version 3"),
        ("127.0.0.1", b"PROXY TCP4 ", "no PROXY header within header_timeout"),  # late
        ("127.0.0.1", b"", "no PROXY header within header_timeout"),  # silent
    ],
    ids=["untrusted", "missing", "bare-LF", "bad-version", "partial", "silent"],
)
def test_a_broken_proxy_header_closes_without_a_reply(
    adapter: EndpointHarness, source: str, data: bytes, detail: str
) -> None:
    tracer_packets: list[bytes] = []
    tracer = Tracer(tracer_packets.append, TraceConfig(payload_format=PayloadFormat.JSON))
    with adapter.endpoint(config=Config(tracer=tracer)) as endpoint:
        _, port = endpoint.listen("127.0.0.1", 0, secure=False, proxy=PROXIED)
        assert refused_without_reply(dial(port, source), data) == b""
        assert wait_for(lambda: endpoint.stats.failed[Cause.PROXY_FAILED] == 1)
        assert endpoint.flows == []
    # The failure is traced with the socket's addresses: set-up FAILURE, then CLOSED.
    assert len(tracer_packets) == 2
    assert ends(tracer_packets[1])[0][0] == source
    set_up, closed = parts(tracer_packets[0]), parts(tracer_packets[1])
    assert set_up["Status"] == "FAILURE" and detail in set_up["Message"]
    assert closed["Cause"] == "proxy_failed" and closed["Event"] == "CLOSED"


def test_a_proxied_connection_is_traced_with_the_client_addresses(adapter: EndpointHarness) -> None:
    packets: list[bytes] = []
    config = Config(tracer=Tracer(packets.append, TraceConfig(payload_format=PayloadFormat.JSON)))
    with adapter.endpoint(config=config) as endpoint:
        _, port = endpoint.listen("127.0.0.1", 0, secure=False, proxy=PROXIED)
        with websocket(port, secure=False, header=proxy_wire.v2(CLIENT_SEEN, SERVER_SEEN)) as client:
            round_trip(endpoint, client)
        assert wait_for(lambda: len(packets) == 4)  # set-up, REGISTER, 200 OK, CLOSED
    for packet in packets[:2] + packets[3:]:  # from the client: set-up, REGISTER, CLOSED
        assert ends(packet) == (CLIENT_SEEN, SERVER_SEEN)
    assert ends(packets[2]) == (SERVER_SEEN, CLIENT_SEEN)  # the 200 OK
    assert parts(packets[0])["Protocol"] == "WS"


# ----------------------------------------------------------- forwarded headers


def test_x_forwarded_for_from_a_trusted_proxy(adapter: EndpointHarness) -> None:
    policy = ProxyPolicy(trusted=["127.0.0.1"], forwarded="x-forwarded-for")
    with adapter.endpoint() as endpoint:
        _, port = endpoint.listen("127.0.0.1", 0, secure=False, proxy=policy)
        headers = {"X-Forwarded-For": "198.51.100.200, 203.0.113.9"}
        with websocket(port, secure=False, headers=headers) as client:
            flow = round_trip(endpoint, client)
            assert flow.remote == ("203.0.113.9", 0)
            assert flow.connection.proxy_address[0] == "127.0.0.1"
        # From an address it does not trust, the same header is ignored.
        with websocket(port, secure=False, source=CLIENT, headers=headers) as client:
            flow = round_trip(endpoint, client)
            assert flow.remote[0] == CLIENT and flow.connection.proxy_address is None
