"""The receive path after the upgrade: every frame violation's close code, reassembly, control frames."""

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
    sent_close_code,
    server_frame,
    state,
    unmask_client_frame,
)

import sansio_wss._reader
from sansio_wss import (
    Cause,
    CloseReceived,
    Config,
    InvalidSipMessage,
    PingReceived,
    PongReceived,
    SipMessageReceived,
    State,
    TransportAction,
)
from sansio_wss._reader import HOLD_FAILURE

TEXT, BINARY, CLOSE, PING, PONG = 1, 2, 8, 9, 10
BAD_UTF8 = b"SIP/2.0 200 OK\r\nX: \xc3\x28\r\n\r\n"

VIOLATIONS: list[tuple[str, bytes, int]] = [
    ("unmasked client frame", frame(TEXT, REGISTER, mask=None), 1002),
    ("RSV1", frame(TEXT, REGISTER, rsv=4), 1002),
    ("RSV2", frame(TEXT, REGISTER, rsv=2), 1002),
    ("RSV3", frame(PING, b"", rsv=1), 1002),
    *[(f"opcode {op:#x}", frame(op, b"x"), 1002) for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF)],
    ("ping of 126 bytes", frame(PING, b"p" * 126), 1002),
    ("close of 126 bytes", frame(CLOSE, close_body(1000, b"r" * 124)), 1002),
    ("fragmented ping", frame(PING, b"p", fin=False), 1002),
    ("continuation first", frame(0, b"x"), 1002),
    ("final continuation first", frame(0, b"x", fin=True), 1002),
    ("text inside a fragmented message", frame(TEXT, b"a", fin=False) + frame(TEXT, b"b"), 1002),
    ("binary inside a fragmented message", frame(BINARY, b"a", fin=False) + frame(BINARY, b"b"), 1002),
    ("invalid UTF-8 text", frame(TEXT, BAD_UTF8), 1007),
    ("truncated UTF-8 text", frame(TEXT, b"SIP/2.0 200 OK\r\n\xe2\x82"), 1007),
    ("UTF-16 surrogate in text", frame(TEXT, b"SIP/2.0 200 OK\r\n\xed\xa0\x80"), 1007),
    ("invalid UTF-8 in the first fragment", frame(TEXT, b"\xff", fin=False), 1007),
    ("UTF-8 broken across fragments", frame(TEXT, b"ab\xe2\x82", fin=False) + frame(0, b"x"), 1007),
    ("UTF-8 truncated at the last fragment", frame(TEXT, b"ab", fin=False) + frame(0, b"\xe2\x82"), 1007),
    ("message over max_message_size", frame(TEXT, b"x" * 65537), 1009),
    (
        "fragments over max_message_size",
        frame(BINARY, b"x" * 40000, fin=False) + frame(0, b"y" * 30000),
        1009,
    ),
    ("16-bit length under 126", frame(TEXT, b"x" * 10, length_bytes=2), 1002),
    ("64-bit length under 65536", frame(TEXT, b"x" * 10, length_bytes=8), 1002),
    ("64-bit length with top bit", b"\x81\xff" + (1 << 63 | 70000).to_bytes(8, "big") + b"mask", 1002),
    ("one-byte close", frame(CLOSE, b"\x03"), 1002),
    *[
        (f"close code {c}", frame(CLOSE, close_body(c)), 1002)
        for c in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535)
    ],
    ("close reason not UTF-8", frame(CLOSE, close_body(1000, b"\xff\xfe")), 1007),
]


@pytest.mark.parametrize(("name", "data", "code"), VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
def test_violations_fail_with_their_code(name: str, data: bytes, code: int) -> None:
    conn = open_server()
    conn.receive_data(data, 1.0)
    event = closed(conn.events())
    assert (event.code, event.clean) == (code, False)
    assert (
        event.cause
        is {1002: Cause.PROTOCOL_ERROR, 1007: Cause.INVALID_UTF8, 1009: Cause.MESSAGE_TOO_BIG}[code]
    )
    assert event.detail
    assert sent_close_code(conn.data_to_send()) == code
    assert state(conn) is State.CLOSED
    assert action(conn) is TransportAction.HALF_CLOSE


def test_oversized_frame_fails_on_its_header_alone() -> None:
    conn = open_server(Config(max_message_size=1000))
    conn.receive_data(b"\x82\xfe\x03\xe9mask", 0.0)  # 1001 bytes announced, none sent
    assert closed(conn.events()).code == 1009


def test_after_failure_a_server_lingers_for_the_peers_close() -> None:
    conn = open_server(Config(close_timeout=3.0))
    conn.receive_data(frame(TEXT, b"\xff"), 1.0)
    closed(conn.events())
    conn.data_to_send()
    assert action(conn) is TransportAction.HALF_CLOSE and conn.get_timer() == 4.0
    conn.receive_data(frame(TEXT, REGISTER) + frame(PING, b"x"), 1.5)
    assert conn.events() == [] and conn.data_to_send() == b""  # discarded, no pong
    conn.receive_data(frame(CLOSE, close_body(1007)), 2.0)
    assert action(conn) is TransportAction.CLOSE and conn.get_timer() is None


def test_after_failure_the_close_timer_ends_the_linger() -> None:
    conn = open_server(Config(close_timeout=3.0))
    conn.receive_data(frame(7, b""), 1.0)
    conn.handle_timer(4.0)
    assert action(conn) is TransportAction.CLOSE


def test_client_fails_on_a_masked_frame_and_waits_for_the_server() -> None:
    conn = open_client()
    conn.receive_data(frame(TEXT, b"SIP/2.0 200 OK\r\n\r\n"), 1.0)
    event = closed(conn.events())
    assert (event.code, event.cause) == (1002, Cause.PROTOCOL_ERROR)
    opcode, payload = unmask_client_frame(conn.data_to_send())
    assert (opcode, payload[:2]) == (CLOSE, (1002).to_bytes(2, "big"))
    assert action(conn) is TransportAction.NONE  # the server closes TCP first
    conn.receive_data(server_frame(CLOSE, close_body(1002)), 1.1)
    assert action(conn) is TransportAction.NONE
    conn.receive_eof(1.2)
    assert action(conn) is TransportAction.CLOSE


def test_fragmented_message_with_interleaved_ping() -> None:
    conn = open_server()
    first, second, third = REGISTER[:10], REGISTER[10:100], REGISTER[100:]
    conn.receive_data(frame(TEXT, first, fin=False) + frame(PING, b"hi") + frame(0, second, fin=False), 1.0)
    assert conn.events() == [PingReceived(b"hi")]
    assert conn.data_to_send() == b"\x8a\x02hi"
    conn.receive_data(frame(0, third), 1.0)
    assert conn.events() == [SipMessageReceived(REGISTER, False)]


def test_utf8_character_split_across_fragments_is_fine() -> None:
    conn = open_server()
    text = "MESSAGE sip:b@x SIP/2.0\r\n\r\nhé€".encode()
    conn.receive_data(frame(TEXT, text[:-2], fin=False) + frame(0, text[-2:-1], fin=False), 1.0)
    conn.receive_data(frame(0, text[-1:]), 1.0)
    assert conn.events() == [SipMessageReceived(text, False)]


def test_binary_non_utf8_message() -> None:
    conn = open_server()
    message = b"MESSAGE sip:b@x SIP/2.0\r\nContent-Type: application/octet-stream\r\n\r\n\xff\x00\xfe"
    conn.receive_data(frame(BINARY, message), 1.0)
    assert conn.events() == [SipMessageReceived(message, True)]


@pytest.mark.parametrize("size", [16, 125, 126, 65535, 65536])
def test_length_encodings(size: int) -> None:
    conn = open_server(Config(max_message_size=70000))
    message = b"SIP/2.0 200 OK\r\n" + b"x" * (size - 16)
    conn.receive_data(frame(BINARY, message), 1.0)
    assert conn.events() == [SipMessageReceived(message, True)]


def test_empty_message_is_not_sip() -> None:
    conn = open_server()
    conn.receive_data(frame(TEXT, b""), 1.0)
    [event] = conn.events()
    assert isinstance(event, InvalidSipMessage) and event.message == b""
    assert state(conn) is State.OPEN


def test_ping_and_pong() -> None:
    conn = open_server()
    conn.receive_data(frame(PING, b"abc") + frame(PONG, b"xyz") + frame(PING, b""), 1.0)
    assert conn.events() == [PingReceived(b"abc"), PongReceived(b"xyz"), PingReceived(b"")]
    assert conn.data_to_send() == b"\x8a\x03abc\x8a\x00"


def test_client_pong_is_masked() -> None:
    conn = open_client()
    conn.receive_data(server_frame(PING, b"abc"), 1.0)
    assert unmask_client_frame(conn.data_to_send()) == (PONG, b"abc")


@pytest.mark.parametrize(
    ("body", "code", "echo"),
    [
        (close_body(1000, b"bye"), 1000, b"\x88\x02\x03\xe8"),
        (b"", 1005, b"\x88\x00"),
        (close_body(1001), 1001, b"\x88\x02\x03\xe9"),
        (close_body(3000, "é".encode()), 3000, b"\x88\x02\x0b\xb8"),
        (close_body(4999), 4999, b"\x88\x02\x13\x87"),
        (close_body(1014), 1014, b"\x88\x02\x03\xf6"),
    ],
)
def test_peer_close_is_echoed_and_the_server_closes(body: bytes, code: int, echo: bytes) -> None:
    conn = open_server()
    conn.receive_data(frame(CLOSE, body) + frame(TEXT, REGISTER), 1.0)
    received, event = conn.events()
    assert isinstance(received, CloseReceived) and received.code == code
    assert (event.code, event.clean, event.cause) == (code, True, Cause.PEER_CLOSED)  # type: ignore[union-attr]
    assert conn.data_to_send() == echo
    assert action(conn) is TransportAction.CLOSE
    conn.receive_data(frame(TEXT, REGISTER), 2.0)
    assert conn.events() == []


def test_close_inside_a_fragmented_message_is_a_clean_close() -> None:
    # Autobahn 7.1.5: fragment, Close, fragment: a normal close, not 1002.
    conn = open_server()
    conn.receive_data(
        frame(TEXT, b"SIP/2.0", fin=False) + frame(CLOSE, close_body(1000)) + frame(0, b"x"), 1.0
    )
    event = closed(conn.events())
    assert (event.code, event.clean) == (1000, True)


def test_client_waits_for_eof_after_the_closing_handshake() -> None:
    conn = open_client(Config(close_timeout=2.0))
    conn.receive_data(server_frame(CLOSE, close_body(1001)), 1.0)
    assert closed(conn.events()).cause is Cause.PEER_CLOSED
    assert unmask_client_frame(conn.data_to_send()) == (CLOSE, close_body(1001))
    assert action(conn) is TransportAction.NONE and conn.get_timer() == 3.0
    conn.handle_timer(3.0)
    assert action(conn) is TransportAction.CLOSE


def test_eof_without_close_is_abnormal() -> None:
    conn = open_server()
    conn.receive_data(frame(TEXT, REGISTER[:20], fin=False), 1.0)
    conn.receive_eof(1.1)
    event = closed(conn.events())
    assert (event.code, event.clean, event.cause) == (1006, False, Cause.EOF)
    assert action(conn) is TransportAction.CLOSE


def test_transport_failure() -> None:
    conn = open_server()
    conn.send(REGISTER, 1.0)
    conn.transport_failed(1.0, "reset by peer")
    event = closed(conn.events())
    assert (event.cause, event.detail) == (Cause.TRANSPORT_ERROR, "reset by peer")
    assert conn.data_to_send() == b"" and action(conn) is TransportAction.CLOSE
    conn.receive_eof(2.0)
    conn.transport_failed(2.0)
    assert conn.events() == []


def test_input_after_close_is_discarded() -> None:
    conn = open_server()
    conn.receive_eof(1.0)
    conn.events()
    conn.receive_data(frame(TEXT, REGISTER), 2.0)
    conn.handle_timer(100.0)
    assert conn.events() == [] and conn.data_to_send() == b""


def test_bytearray_and_memoryview_input() -> None:
    conn = open_server()
    data = frame(TEXT, REGISTER)
    conn.receive_data(bytearray(data), 1.0)
    conn.receive_data(memoryview(data), 1.0)
    assert conn.events() == [SipMessageReceived(REGISTER, False)] * 2


def test_an_internal_error_fails_with_1011(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(message: bytes, binary: bool) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(sansio_wss._reader, "new_sip_message", broken)
    conn = open_server()
    conn.receive_data(frame(TEXT, REGISTER), 1.0)
    event = closed(conn.events())
    assert (event.code, event.cause) == (1011, Cause.INTERNAL_ERROR) and "boom" in event.detail
    assert sent_close_code(conn.data_to_send()) == 1011


def test_invalid_utf8_fails_before_the_text_frame_is_complete() -> None:
    """A text frame arriving in pieces is checked as it comes: the read with the bad byte fails
    the connection (1007), not the read that completes the frame (Autobahn 6.4.3 and 6.4.4)."""
    payload = b"MESSAGE sip:b@x SIP/2.0\r\n\r\n" + b"a" * 20 + b"\xce\xba\xf4\x90\x80\x80" + b"z" * 40
    data = frame(TEXT, payload)
    head = len(data) - len(payload)
    for first in (head - 1, head + 3, head + 5):  # mask offsets 0..3 all met across the splits
        conn = open_server()
        conn.receive_data(data[:first], 1.0)
        assert conn.events() == [] and state(conn) is State.OPEN
        cut = head + payload.index(b"\xf4\x90") + 2  # \xf4\x90 is beyond U+10FFFF: invalid
        conn.receive_data(data[first:cut], 2.0)
        assert sent_close_code(conn.data_to_send()) == 1007, first
        assert closed(conn.events()).cause is Cause.INVALID_UTF8


def test_valid_utf8_in_pieces_still_arrives() -> None:
    payload = "MESSAGE sip:b@x SIP/2.0\r\n\r\nhé€𝄞".encode() * 3
    data = frame(TEXT, payload)
    conn = open_server(Config(max_msg_chunks=1000))
    for start in range(0, len(data), 3):
        conn.receive_data(data[start : start + 3], 1.0)
        assert state(conn) is State.OPEN
    assert conn.events() == [SipMessageReceived(payload, False)]


def test_invalid_utf8_in_a_continuation_frame_in_pieces() -> None:
    first = frame(TEXT, b"MESSAGE sip:b@x SIP/2.0\r\n\r\n\xe2", fin=False)  # a character begun...
    second = frame(0, b"\x28" + b"y" * 30)  # ...and broken at once by the next fragment
    conn = open_server()
    conn.receive_data(first + second[:8], 1.0)  # the continuation's header, mask and 2 bytes
    assert sent_close_code(conn.data_to_send()) == 1007


@pytest.mark.parametrize(("name", "data", "code"), VIOLATIONS[:3] + VIOLATIONS[-3:])
def test_a_violation_after_a_message_waits_for_the_answer(name: str, data: bytes, code: int) -> None:
    """Read in one go: a message, then a violation. The message is delivered and the connection
    stays open until the application answers it (at most HOLD_FAILURE): the answer goes out,
    then the Close (Autobahn 3.2-5.15 want the echo first)."""
    conn = open_server()
    conn.receive_data(frame(TEXT, REGISTER) + data, 1.0)
    assert conn.events() == [SipMessageReceived(REGISTER, False)]
    assert (state(conn), conn.data_to_send(), conn.get_timer()) == (State.OPEN, b"", 1.0 + HOLD_FAILURE)
    conn.send(OK, 1.1)
    out = conn.data_to_send()
    assert out.startswith(bytes((0x81, len(OK))) + OK)
    assert sent_close_code(out) == code
    assert closed(conn.events()).code == code


@pytest.mark.parametrize("then", ["timer", "eof", "close", "idle"])
def test_a_held_violation_fails_without_an_answer(then: str) -> None:
    """The held violation decides the close code whatever ends the wait first: its own timer, EOF,
    `close()`, or an idle timeout due before it (found by the state machine in
    tests/properties: the idle Close went out first, then the held failure lingered half-closed)."""
    conn = open_server(Config(idle_timeout=0.05) if then == "idle" else None, now=0.99)
    conn.receive_data(frame(TEXT, REGISTER) + frame(TEXT, b"\xff"), 1.0)
    conn.events()
    conn.receive_data(frame(TEXT, REGISTER), 1.1)  # more from the peer: dropped
    assert (conn.events(), state(conn)) == ([], State.OPEN)
    if then == "timer":
        conn.handle_timer(1.0 + HOLD_FAILURE - 0.01)
        assert state(conn) is State.OPEN
        conn.handle_timer(1.0 + HOLD_FAILURE)
    elif then == "idle":
        assert conn.get_timer() == 1.05  # the idle deadline comes before the held one
        conn.handle_timer(1.05)
    elif then == "eof":
        conn.receive_eof(1.1)
    else:
        conn.close(1.1, 1000, "bye")
    event = closed(conn.events())
    assert (event.code, event.cause) == (1007, Cause.INVALID_UTF8)
    if then != "eof":
        assert sent_close_code(conn.data_to_send()) == 1007


def test_a_violation_after_a_fragmented_message_waits_for_the_answer_too() -> None:
    """Autobahn 5.15: a message in two fragments, then a continuation with nothing to continue."""
    conn = open_server()
    stream = frame(TEXT, b"fragment1", fin=False) + frame(0, b"fragment2") + frame(0, b"fragment3", fin=False)
    conn.receive_data(stream, 1.0)
    (event,) = conn.events()
    assert isinstance(event, InvalidSipMessage) and event.message == b"fragment1fragment2"
    assert state(conn) is State.OPEN
    conn.send(b"fragment1fragment2", 1.1)
    out = conn.data_to_send()
    assert out.startswith(b"\x81\x12fragment1fragment2") and sent_close_code(out) == 1002


def test_a_violation_in_a_later_read_waits_while_a_message_is_unanswered() -> None:
    """Autobahn 3.3 with frame-wise chops: the message and the violation come in separate reads;
    the violation still waits for the answer. Once the application has sent, one fails at once."""
    conn = open_server()
    conn.receive_data(frame(TEXT, REGISTER), 1.0)
    conn.events()
    conn.receive_data(frame(TEXT, REGISTER, rsv=3), 1.1)
    assert (conn.events(), state(conn)) == ([], State.OPEN)
    conn.send(OK, 1.2)
    assert sent_close_code(conn.data_to_send()) == 1002
    answered = open_server()
    answered.receive_data(frame(TEXT, REGISTER), 1.0)
    answered.send(OK, 1.0)
    answered.receive_data(frame(TEXT, REGISTER, rsv=3), 1.1)
    assert closed(answered.events()).code == 1002
