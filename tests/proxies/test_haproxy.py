"""A real HAProxy in TCP mode sends PROXY v1/v2 headers before each adapter's ws and wss listeners."""

from __future__ import annotations

import contextlib
import pathlib

import pytest
from adapter_suite.adapter_helpers import server_domain, wait_for
from adapter_suite.endpoint_harness import EndpointHarness
from proxied_clients import CLIENT, dial, round_trip, websocket
from real_proxies import haproxy
from wire import request

from sansio_wss import Cause, ProxyPolicy

PROXIED = ProxyPolicy(trusted=["127.0.0.1"], proxy_protocol=True)


@pytest.mark.parametrize(
    ("send_proxy", "version"), [("send-proxy-v2", 2), ("send-proxy", 1)], ids=["v2", "v1"]
)
@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
def test_haproxy_names_the_client_and_its_own_address(
    adapter: EndpointHarness, tmp_path: pathlib.Path, send_proxy: str, version: int, secure: bool
) -> None:
    with adapter.endpoint(tls=[server_domain()]) as endpoint:
        _, port = endpoint.listen("127.0.0.1", 0, secure=secure, proxy=PROXIED)
        with (
            haproxy(tmp_path, port, send_proxy) as front,
            websocket(front.address, secure=secure) as client,
        ):
            client_address = client.socket.getsockname()
            assert client_address[0] == CLIENT
            assert client.socket.getpeername() == front.address
            flow = round_trip(endpoint, client)
            connection = flow.connection
            assert flow.remote == client_address  # address and port, from the header
            assert connection.remote_address == client_address
            assert connection.local_address == front.address  # what the client connected to
            assert flow.listener == front.address
            assert connection.proxy_address[0] == "127.0.0.1"  # HAProxy, the socket's peer
            assert connection.proxy_address != client_address
            assert connection.proxy_header.version == version
            assert connection.proxy_header.source == client_address
            assert connection.proxy_header.destination == front.address
            assert (connection.tls is not None) == secure  # TLS passes through HAProxy to us
        assert wait_for(lambda: endpoint.stats.open == 0)
        assert endpoint.stats.accepted == 1
        assert not endpoint.stats.failed


def test_a_client_that_goes_around_haproxy_gets_no_reply(
    adapter: EndpointHarness, tmp_path: pathlib.Path
) -> None:
    with adapter.endpoint() as endpoint:
        _, port = endpoint.listen("127.0.0.1", 0, secure=False, proxy=PROXIED)
        with haproxy(tmp_path, port) as front:
            with websocket(front.address, secure=False) as client:
                round_trip(endpoint, client)
            # Straight to our listener, without a PROXY header: from an address it does not trust,
            # and from HAProxy's own address; both are closed before any byte of reply.
            for source in (CLIENT, "127.0.0.1"):
                sock = dial(("127.0.0.1", port), source)
                got = b""
                with sock, contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    sock.sendall(request())
                    while chunk := sock.recv(65536):
                        got += chunk
                assert got == b"", (source, got)
            assert wait_for(lambda: endpoint.stats.failed[Cause.PROXY_FAILED] == 2)
            assert endpoint.stats.accepted == 1  # the one through HAProxy
            assert sum(endpoint.stats.failed.values()) == 2
