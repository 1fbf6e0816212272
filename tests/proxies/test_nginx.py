"""A real nginx ends TLS in front of each adapter's plain listener and names the client in X-Forwarded-For."""

from __future__ import annotations

import contextlib
import pathlib
import ssl
import time

from adapter_suite.adapter_helpers import certs, wait_for
from adapter_suite.endpoint_harness import EndpointHarness
from proxied_clients import CLIENT, ORIGIN, round_trip, tls_dial, websocket
from real_proxies import nginx
from wire import CLOSE, PING, close_body, request

from sansio_wss import Cause, Config, ProxyPolicy

FORWARDED = ProxyPolicy(trusted=["127.0.0.1"], forwarded="x-forwarded-for")


def test_nginx_ends_tls_and_names_the_client(adapter: EndpointHarness, tmp_path: pathlib.Path) -> None:
    with adapter.endpoint() as endpoint:
        _, port = endpoint.listen("127.0.0.1", 0, secure=False, proxy=FORWARDED)
        with nginx(tmp_path, port, certs().server) as front, websocket(front.address, secure=True) as client:
            assert client.subprotocol == "sip"
            assert isinstance(client.socket, ssl.SSLSocket)  # TLS with nginx
            assert client.socket.getsockname()[0] == CLIENT
            flow = round_trip(endpoint, client)
            connection = flow.connection
            # X-Forwarded-For names the client's address, not its port.
            assert flow.remote == (CLIENT, 0)
            assert connection.remote_address == (CLIENT, 0)
            assert connection.proxy_address[0] == "127.0.0.1"  # nginx, the socket's peer
            assert connection.local_address == ("127.0.0.1", port)
            assert connection.tls is None
        assert wait_for(lambda: endpoint.stats.open == 0)
        assert endpoint.stats.accepted == 1
        assert not endpoint.stats.failed  # the client's close went through nginx: a clean close


def test_a_client_that_stops_reading_behind_nginx_meets_our_keepalive(
    adapter: EndpointHarness, tmp_path: pathlib.Path
) -> None:
    config = Config(ping_interval=0.3, pong_timeout=0.3, close_timeout=0.5)
    with adapter.endpoint(config=config) as endpoint:
        _, port = endpoint.listen("127.0.0.1", 0, secure=False, proxy=FORWARDED)
        with nginx(tmp_path, port, certs().server) as front:
            # A client that answers pings (websockets does) outlives several ping intervals...
            with websocket(front.address, secure=True) as client:
                time.sleep(1.2)
                round_trip(endpoint, client)
                assert endpoint.stats.failed[Cause.PONG_TIMEOUT] == 0
            # ...one that upgrades and then reads nothing more does not.
            stalled = tls_dial(front.address)
            with contextlib.closing(stalled):
                upgrade = request(replace={"Host": f"localhost:{front.port}", "Origin": ORIGIN})
                stalled.sendall(upgrade)
                reply = b""
                while b"\r\n\r\n" not in reply:
                    chunk = stalled.recv(4096)
                    assert chunk, f"nginx closed before the reply: {reply!r}"
                    reply += chunk
                upgraded = time.monotonic()
                assert reply.startswith(b"HTTP/1.1 101 "), reply
                assert wait_for(lambda: endpoint.stats.failed[Cause.PONG_TIMEOUT] == 1, 5.0)
                took = time.monotonic() - upgraded
                assert 0.5 < took < 2.5, took  # ping_interval + pong_timeout, plus scheduling
                # What reached the client: our Ping, then a Close 1011, then nginx's EOF.
                rest = reply.split(b"\r\n\r\n", 1)[1]
                while chunk := stalled.recv(4096):
                    rest += chunk
                ping = 2 + rest[1]  # Ping's length (ours are short and unmasked)
                assert rest[0] == 0x80 | PING, rest
                assert rest[ping] == 0x80 | CLOSE and rest[ping + 2 : ping + 4] == close_body(1011), rest
        assert endpoint.stats.accepted == 2
