"""Interop with the websockets library (its blocking client and server), for each adapter: its
client against our server, our client against its server; each side closing first."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

import pytest
from adapter_helpers import REGISTER, client_ssl_context, server_ssl_context
from harness import ADAPTERS, CLOSE_ME, LIMIT, Message, harness_for
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect
from websockets.sync.server import ServerConnection
from websockets.sync.server import serve as ws_serve
from websockets.typing import Data, Origin, Subprotocol

from sansio_wss import Cause, Config, InvalidSipMessage, SipMessageReceived

ORIGIN = Origin("https://app.example.com")
NOT_SIP = b"\xffnot sip"
"""Not UTF-8, so a binary message; not SIP either."""
BYE = REGISTER.replace(b"Content-Length", CLOSE_ME + b"\r\nContent-Length")


def _data(message: bytes) -> Data:
    """As websockets sends and receives `message`: text if it is UTF-8, as our send() does."""
    return message if message == NOT_SIP else message.decode()


def _seen(message: bytes) -> tuple[type, bytes, bool]:
    return (InvalidSipMessage, message, True) if message == NOT_SIP else (SipMessageReceived, message, False)


def _summary(messages: list[Message]) -> list[tuple[type, bytes, bool]]:
    return [(type(message), message.message, message.binary) for message in messages]


def websockets_client(port: int) -> ClientConnection:
    """websockets' blocking client for our server at `port`; it offers permessage-deflate, as it
    does by default (our server declines it unless configured)."""
    return ws_connect(
        f"wss://localhost:{port}/ws",
        ssl=client_ssl_context(),
        subprotocols=[Subprotocol("sip")],
        origin=ORIGIN,
        proxy=None,
    )


@contextlib.contextmanager
def websockets_server() -> Iterator[int]:
    """websockets' server in a thread; it echoes each message as it came (text or binary), and
    closes with 1001 "bye" once it has echoed one holding CLOSE_ME. Yields its port."""

    def handler(ws: ServerConnection) -> None:
        for data in ws:
            ws.send(data)
            if CLOSE_ME in (data.encode() if isinstance(data, str) else data):
                ws.close(1001, "bye")

    server = ws_serve(handler, "127.0.0.1", 0, ssl=server_ssl_context(), subprotocols=[Subprotocol("sip")])
    runner = threading.Thread(target=server.serve_forever, name="websockets server")
    runner.start()
    try:
        yield server.socket.getsockname()[1]
    finally:
        server.shutdown()
        runner.join(LIMIT)
        gc.collect()  # websockets' serve_forever() leaves its selector (an epoll fd) in a cycle


@pytest.mark.parametrize("closer", ["websockets", "ours"])
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_websockets_client_against_our_server(adapter: str, closer: str) -> None:
    messages = [REGISTER, NOT_SIP] + ([BYE] if closer == "ours" else [])
    with harness_for(adapter).serve() as server:
        with websockets_client(server.port) as ws:
            assert ws.subprotocol == "sip"
            for message in messages:
                ws.send(_data(message))
                assert ws.recv(timeout=LIMIT) == _data(message)
            if closer == "ours":
                with pytest.raises(ConnectionClosedOK):
                    ws.recv(timeout=LIMIT)
        assert ws.close_code == 1000
        closed = server.wait_closed()
        assert _summary(server.seen) == [_seen(message) for message in messages]
        assert (closed.code, closed.clean) == (1000, True), closed
        assert closed.cause is (Cause.PEER_CLOSED if closer == "websockets" else Cause.LOCAL_CLOSED)


@pytest.mark.parametrize("closer", ["websockets", "ours"])
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_our_client_against_websockets_server(adapter: str, closer: str) -> None:
    messages = [REGISTER, NOT_SIP] + ([BYE] if closer == "websockets" else [])
    with websockets_server() as port:
        result = harness_for(adapter).exchange(port, messages, close=closer == "ours")
    assert result.opened.subprotocol == "sip"
    assert _summary(result.replies) == [_seen(message) for message in messages]
    closed = result.closed
    assert closed.clean, closed
    if closer == "websockets":
        assert (closed.cause, closed.code, closed.reason) == (Cause.PEER_CLOSED, 1001, "bye"), closed
    else:
        assert (closed.cause, closed.code) == (Cause.LOCAL_CLOSED, 1000), closed


BIG = REGISTER.replace(b"Content-Length: 0", b"X-Padding: " + b"sip " * 5000 + b"\r\nContent-Length: 0")
"""A 20 KB message that compresses to almost nothing."""
AGREED = "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
"""Both sides' windows at our 12 bits: each side asked for it."""


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_websockets_client_with_deflate_against_our_server(adapter: str) -> None:
    with harness_for(adapter).serve(config=Config(deflate=True)) as server:
        with websockets_client(server.port) as ws:
            assert ws.response is not None
            assert ws.response.headers["Sec-WebSocket-Extensions"] == AGREED
            for message in (REGISTER, BIG, NOT_SIP, BIG):
                ws.send(_data(message))
                assert ws.recv(timeout=LIMIT) == _data(message)
        server.wait_closed()
        assert _summary(server.seen) == [_seen(m) for m in (REGISTER, BIG, NOT_SIP, BIG)]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_our_client_with_deflate_against_websockets_server(adapter: str) -> None:
    messages = [REGISTER, BIG, NOT_SIP, BIG]
    with websockets_server() as port:  # websockets' server accepts permessage-deflate by default
        result = harness_for(adapter).exchange(port, messages, config=Config(deflate=True))
    assert result.opened.extensions == AGREED
    assert _summary(result.replies) == [_seen(message) for message in messages]
    assert result.closed.clean
