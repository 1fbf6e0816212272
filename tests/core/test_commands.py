"""Commands: send, ping, close; they raise only for the caller's mistakes, as documented."""

from __future__ import annotations

import pytest
from core_helpers import (
    OK,
    REGISTER,
    action,
    close_body,
    closed,
    frame,
    open_client,
    open_server,
    state,
    unmask_client_frame,
)

from sansio_wss import (
    Cause,
    ClientConnection,
    ConnectionClosedError,
    LocalProtocolError,
    ServerConnection,
    State,
    TransportAction,
)


def test_send_text_and_binary() -> None:
    conn = open_server()
    conn.send(OK, 1.0)
    conn.send(OK.decode(), 1.0)
    conn.send(b"MESSAGE sip:a@b SIP/2.0\r\n\r\n\xff", 1.0)
    conn.send("MESSAGE sip:a@b SIP/2.0\r\n\r\nhé".encode(), 1.0)
    out = conn.data_to_send()
    expected = (
        bytes((0x81, len(OK)))
        + OK
        + bytes((0x81, len(OK)))
        + OK
        + b"\x82\x1cMESSAGE sip:a@b SIP/2.0\r\n\r\n\xff"
        + b"\x81\x1eMESSAGE sip:a@b SIP/2.0\r\n\r\nh\xc3\xa9"
    )
    assert out == expected


@pytest.mark.parametrize("size", [125, 126, 65535, 65536, 70000])
def test_send_length_encodings(size: int) -> None:
    conn = open_server()
    conn.send(b"x" * size, 1.0)
    out = conn.data_to_send()
    head = {125: b"\x81\x7d", 126: b"\x81\x7e\x00\x7e", 65535: b"\x81\x7e\xff\xff"}.get(
        size, b"\x81\x7f" + size.to_bytes(8, "big")
    )
    assert out == head + b"x" * size


def test_client_send_is_masked() -> None:
    conn = open_client()
    conn.send(REGISTER, 1.0)
    assert unmask_client_frame(conn.data_to_send()) == (1, REGISTER)


def test_commands_before_open() -> None:
    conn = ServerConnection(0.0)
    with pytest.raises(LocalProtocolError):
        conn.send(b"x", 0.0)
    with pytest.raises(LocalProtocolError):
        conn.ping(b"", 0.0)
    assert state(conn) is State.CONNECTING
    client = ClientConnection("h", 0.0)
    with pytest.raises(LocalProtocolError):
        client.send(b"x", 0.0)


def test_send_after_close_is_a_race_not_a_bug() -> None:
    conn = open_server()
    conn.close(1.0, 4000, "going")
    with pytest.raises(ConnectionClosedError) as info:
        conn.send(b"x", 1.0)
    assert (info.value.code, info.value.reason) == (4000, "going")
    conn.receive_data(frame(8, close_body(4000)), 1.1)
    with pytest.raises(ConnectionClosedError) as info:
        conn.ping(b"", 1.2)
    assert info.value.code == 4000


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000])
def test_close_refuses_codes_that_may_not_be_sent(code: int) -> None:
    conn = open_server()
    with pytest.raises(LocalProtocolError):
        conn.close(1.0, code)
    assert state(conn) is State.OPEN


def test_close_refuses_long_reasons_and_big_pings() -> None:
    conn = open_server()
    with pytest.raises(LocalProtocolError):
        conn.close(1.0, 1000, "é" * 62)
    with pytest.raises(LocalProtocolError):
        conn.ping(b"x" * 126, 1.0)
    conn.close(1.0, 1000, "x" * 123)


def test_close_is_idempotent() -> None:
    conn = open_server()
    conn.close(1.0)
    first = conn.data_to_send()
    assert first == b"\x88\x02\x03\xe8"
    conn.close(1.1, 1001)
    assert conn.data_to_send() == b""
    conn.receive_data(frame(8, close_body(1000)), 1.2)
    event = closed(conn.events()[1:])
    assert (event.cause, event.clean, event.code) == (Cause.LOCAL_CLOSED, True, 1000)
    assert action(conn) is TransportAction.CLOSE
    conn.close(2.0)
    assert conn.events() == []


def test_messages_still_arrive_while_closing() -> None:
    conn = open_server()
    conn.close(1.0)
    conn.receive_data(frame(1, REGISTER), 1.1)
    assert [type(e).__name__ for e in conn.events()] == ["SipMessageReceived"]


def test_ping_command() -> None:
    conn = open_server()
    conn.ping(b"abc", 1.0)
    assert conn.data_to_send() == b"\x89\x03abc"


def test_keepalive_answer_is_not_sent_after_our_close() -> None:
    conn = open_server()
    conn.close(1.0)
    conn.data_to_send()
    conn.receive_data(frame(1, b"\r\n\r\n") + frame(9, b"p"), 1.1)
    assert conn.data_to_send() == b""


def test_lone_surrogates_are_the_callers_mistake() -> None:
    conn = open_server()
    with pytest.raises(LocalProtocolError):
        conn.send("SIP/2.0 200 OK\r\n\ud800", 1.0)
    with pytest.raises(LocalProtocolError):
        conn.close(1.0, 1000, "\udfff")
    assert state(conn) is State.OPEN and conn.data_to_send() == b""


def test_send_chooses_the_frame_type_when_asked() -> None:
    """`binary=True` sends any message binary (an echo keeps the type it got); `binary=False`
    sends text, which must be UTF-8."""
    conn = open_server()
    conn.send(OK, 1.0, binary=True)
    conn.send(OK.decode(), 1.0, binary=True)
    conn.send(b"", 1.0, binary=True)
    conn.send(OK, 1.0, binary=False)
    conn.send(b"", 1.0)
    assert conn.data_to_send() == (
        bytes((0x82, len(OK)))
        + OK
        + bytes((0x82, len(OK)))
        + OK
        + b"\x82\x00"
        + bytes((0x81, len(OK)))
        + OK
        + b"\x81\x00"
    )
    with pytest.raises(LocalProtocolError, match="text frame must carry UTF-8"):
        conn.send(b"MESSAGE sip:a@b SIP/2.0\r\n\r\n\xff", 1.0, binary=False)
    assert conn.data_to_send() == b""
    client = open_client()
    client.send(REGISTER, 1.0, binary=True)
    assert unmask_client_frame(client.data_to_send()) == (2, REGISTER)  # opcode 2: binary
