"""permessage-deflate against two implementations no one here wrote: websockets' and wsproto's
sans-IO cores as clients of our server and servers of our client, with every offer they make,
on any message sequence hypothesis draws, cut into any reads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol
from websockets.uri import parse_uri
from wire import examples
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Request, TextMessage
from wsproto.extensions import PerMessageDeflate

from sansio_wss import ClientConnection, Config, Opened, ServerConnection, SipMessageReceived

SIP = st.sampled_from(
    [
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bK1\r\n"
        "Contact: <sip:alice@a.invalid;transport=ws>\r\nContent-Length: 0\r\n\r\n",
        "SIP/2.0 200 OK\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
        "MESSAGE sip:bob@example.com SIP/2.0\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhéllo",
    ]
)
BODY = st.binary(min_size=0, max_size=3000)
MESSAGES = st.lists(st.one_of(SIP, BODY.map(lambda b: b"MESSAGE sip:a@b SIP/2.0\r\n\r\n" + b)), max_size=12)
SERVER = Config(deflate=True, require_origin=False, max_msg_chunks=1 << 16)
OFFERS = [
    {},
    {"client_no_context_takeover": True},
    {"server_no_context_takeover": True},
    {"server_max_window_bits": 9},
    {"client_max_window_bits": 10},
    {"client_max_window_bits": 15, "server_max_window_bits": 15},
]


def cut(data: bytes, sizes: list[int]) -> list[bytes]:
    """`data` in reads of the drawn sizes (the rest in one)."""
    pieces, start = [], 0
    for size in sizes:
        if start >= len(data):
            break
        pieces.append(data[start : start + size])
        start += size
    return [*pieces, data[start:]] if start < len(data) else pieces


def as_bytes(message: str | bytes | bytearray) -> bytes:
    return message.encode() if isinstance(message, str) else bytes(message)


def received(
    feed: Callable[[bytes], None], events: Callable[[], Sequence[object]], data: bytes, sizes: list[int]
) -> list[bytes]:
    got: list[bytes] = []
    for piece in cut(data, sizes):
        feed(piece)
        got += [e.message for e in events() if isinstance(e, SipMessageReceived)]
    return got


@pytest.mark.parametrize("params", OFFERS, ids=lambda p: ",".join(p) or "default")
@settings(max_examples=examples(0.15))
@given(messages=MESSAGES, sizes=st.lists(st.integers(1, 400), max_size=30))
def test_wsproto_client_and_our_server(
    params: dict[str, Any], messages: list[str | bytes], sizes: list[int]
) -> None:
    client = WSConnection(ConnectionType.CLIENT)
    server = ServerConnection(0.0, SERVER)
    server.receive_data(
        client.send(Request("x", "/", subprotocols=["sip"], extensions=[PerMessageDeflate(**params)])), 0.0
    )
    (opened,) = server.events()
    assert isinstance(opened, Opened) and opened.extensions.startswith("permessage-deflate")
    client.receive_data(server.data_to_send())
    (accepted,) = client.events()
    assert isinstance(accepted, AcceptConnection) and accepted.extensions
    wire = b"".join(client.send(TextMessage(m) if isinstance(m, str) else BytesMessage(m)) for m in messages)
    got = received(lambda d: server.receive_data(d, 0.0), server.events, wire, sizes)
    assert got == [as_bytes(m) for m in messages]
    for message in messages:
        server.send(message, 0.0)
    client.receive_data(server.data_to_send())
    back = [e.data for e in client.events() if isinstance(e, (TextMessage, BytesMessage))]
    assert [as_bytes(m) for m in back] == [as_bytes(m) for m in messages]


@pytest.mark.parametrize("params", OFFERS, ids=lambda p: ",".join(p) or "default")
@settings(max_examples=examples(0.15))
@given(messages=MESSAGES, sizes=st.lists(st.integers(1, 400), max_size=30))
def test_websockets_client_and_our_server(
    params: dict[str, Any], messages: list[str | bytes], sizes: list[int]
) -> None:
    client = ClientProtocol(
        parse_uri("wss://x/"),
        extensions=[ClientPerMessageDeflateFactory(**params)],
        subprotocols=[Subprotocol("sip")],
        max_size=None,
    )
    server = ServerConnection(0.0, SERVER)
    client.send_request(client.connect())
    server.receive_data(client.data_to_send()[0], 0.0)
    server.events()
    client.receive_data(server.data_to_send())
    (response,) = client.events_received()
    assert isinstance(response, Response) and response.status_code == 101 and client.extensions
    for message in messages:
        if isinstance(message, str):
            client.send_text(message.encode())
        else:
            client.send_binary(message)
    wire = b"".join(client.data_to_send())
    got = received(lambda d: server.receive_data(d, 0.0), server.events, wire, sizes)
    assert got == [as_bytes(m) for m in messages]
    for message in messages:
        server.send(message, 0.0)
    client.receive_data(server.data_to_send())
    back = [
        e.data
        for e in client.events_received()
        if isinstance(e, Frame) and e.opcode in (Opcode.TEXT, Opcode.BINARY)
    ]
    assert back == [as_bytes(m) for m in messages]


SERVER_PARAMS = [
    {},
    {"server_no_context_takeover": True},
    {"client_no_context_takeover": True},
    {"server_max_window_bits": 10},
    {"client_max_window_bits": 9},
]


@pytest.mark.parametrize("params", SERVER_PARAMS, ids=lambda p: ",".join(p) or "default")
@settings(max_examples=examples(0.15))
@given(messages=MESSAGES, sizes=st.lists(st.integers(1, 400), max_size=30))
def test_our_client_and_a_websockets_server(
    params: dict[str, Any], messages: list[str | bytes], sizes: list[int]
) -> None:
    client = ClientConnection("x", 0.0, config=Config(deflate=True, max_msg_chunks=1 << 16))
    server = ServerProtocol(
        extensions=[ServerPerMessageDeflateFactory(**params)],
        subprotocols=[Subprotocol("sip")],
        max_size=None,
    )
    server.receive_data(client.data_to_send())
    (request,) = server.events_received()
    server.send_response(server.accept(request))  # type: ignore[arg-type]
    client.receive_data(b"".join(server.data_to_send()), 0.0)
    (opened,) = client.events()
    assert isinstance(opened, Opened) and opened.extensions.startswith("permessage-deflate")
    for message in messages:
        if isinstance(message, str):
            server.send_text(message.encode())
        else:
            server.send_binary(message)
    wire = b"".join(server.data_to_send())
    got = received(lambda d: client.receive_data(d, 0.0), client.events, wire, sizes)
    assert got == [as_bytes(m) for m in messages]
    for message in messages:
        client.send(message, 0.0)
    server.receive_data(client.data_to_send())
    back = [
        e.data
        for e in server.events_received()
        if isinstance(e, Frame) and e.opcode in (Opcode.TEXT, Opcode.BINARY)
    ]
    assert back == [as_bytes(m) for m in messages]
