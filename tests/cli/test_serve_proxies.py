"""`serve --listen ws://...` behind proxies, end to end: a plain listener per adapter, and a PROXY
listener whose traces carry the client's addresses (a real HEP collector receives them)."""

from __future__ import annotations

import socket

import proxy_wire
import pytest
from hep_wire import UdpCollector, ends, parts
from serve_helpers import ADAPTERS, LIMIT, OPTIONS, served
from websockets.sync.client import connect
from websockets.typing import Origin, Subprotocol

CLIENT_SEEN, SERVER_SEEN = ("203.0.113.9", 40404), ("198.51.100.1", 443)


def echo_once(port: int, header: bytes = b"") -> str:
    """OPTIONS over plain ws (after `header`, a PROXY header); what came back."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=LIMIT)
    sock.sendall(header)
    with connect(
        f"ws://127.0.0.1:{port}/",
        sock=sock,
        subprotocols=[Subprotocol("sip")],
        origin=Origin("https://app.example.com"),
        open_timeout=LIMIT,
    ) as ws:
        ws.send(OPTIONS)
        reply = ws.recv(timeout=LIMIT)
    assert isinstance(reply, str)
    return reply


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_serve_on_a_plain_listener(adapter: str) -> None:
    with served("--app", "echo", "--adapter", adapter, listen="ws://127.0.0.1:{port}") as server:
        assert server.banner == [
            f"listening on ws://127.0.0.1:{server.port}/ (adapter {adapter}, app echo); "
            f"test page http://127.0.0.1:{server.port}/"
        ]
        assert echo_once(server.port) == OPTIONS
        code, out, err = server.stop()
    assert code == 0
    assert "'messages_in': 1" in out
    assert "not loopback" not in err


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_serve_behind_a_proxy_protocol_balancer_traces_the_client(adapter: str) -> None:
    collector = UdpCollector()
    args = ("--app", "echo", "--adapter", adapter, "--trusted-proxy", "127.0.0.1")
    tracing = ("--trace", collector.destination, "--trace-format", "json")
    try:
        with served(*args, *tracing, listen="ws://127.0.0.1:{port}?proxy-protocol") as server:
            assert server.banner[0].startswith(
                f"listening on ws://127.0.0.1:{server.port}/ (PROXY header from 127.0.0.1/32)"
            )
            assert echo_once(server.port, proxy_wire.v2(CLIENT_SEEN, SERVER_SEEN)) == OPTIONS
            packets = collector.packets(4)  # set-up, OPTIONS in, OPTIONS out, CLOSED
            assert ends(packets[0]) == (CLIENT_SEEN, SERVER_SEEN)
            assert parts(packets[0])["Protocol"] == "WS"
            assert ends(packets[2]) == (SERVER_SEEN, CLIENT_SEEN)
            # No header: closed without a reply, and traced with the socket's addresses.
            with socket.create_connection(("127.0.0.1", server.port), timeout=LIMIT) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert sock.recv(100) == b""
            failed = collector.packets(2)
            assert ends(failed[0])[0][0] == "127.0.0.1"
            assert parts(failed[1])["Cause"] == "proxy_failed"
            code, out, _ = server.stop()
        assert code == 0
        assert "'failed': {'proxy_failed': 1}" in out
    finally:
        collector.close()


def test_a_public_plain_listener_warns() -> None:
    with served("--app", "echo", listen="ws://0.0.0.0:{port}") as server:
        _, _, err = server.stop()
    assert "plain ws:// listener on 0.0.0.0:" in err and "not loopback" in err
