"""Timers as data: keepalive Ping and its Pong timeout, idle timeout, close timeout; time moves by hand."""

from __future__ import annotations

from core_helpers import OK, REGISTER, action, close_body, closed, frame, open_server, sent_close_code, state

from sansio_wss import Cause, Config, State, TransportAction

CLOSE, PING, PONG = 8, 9, 10


def test_keepalive_ping_after_silence_and_pong_clears_it() -> None:
    conn = open_server(Config(ping_interval=30.0, pong_timeout=10.0))
    assert conn.get_timer() == 30.0
    conn.receive_data(frame(1, REGISTER), 12.0)
    conn.events()
    assert conn.get_timer() == 42.0
    conn.handle_timer(41.9)
    assert conn.data_to_send() == b""
    conn.handle_timer(42.0)
    assert conn.data_to_send() == b"\x89\x00"
    assert conn.get_timer() == 52.0
    conn.handle_timer(45.0)
    assert conn.data_to_send() == b""  # one Ping outstanding at a time
    conn.receive_data(frame(PONG, b""), 50.0)
    conn.events()
    assert conn.get_timer() == 80.0


def test_missing_pong_fails_with_1011() -> None:
    conn = open_server(Config(ping_interval=5.0, pong_timeout=2.0))
    conn.handle_timer(5.0)
    conn.data_to_send()
    conn.receive_data(frame(1, REGISTER), 6.0)  # traffic is not a Pong
    conn.handle_timer(7.0)
    event = closed(conn.events()[1:])
    assert (event.code, event.cause) == (1011, Cause.PONG_TIMEOUT)
    assert sent_close_code(conn.data_to_send()) == 1011


def test_keepalive_off() -> None:
    conn = open_server(Config(ping_interval=None))
    assert conn.get_timer() is None
    conn.handle_timer(1e9)
    assert conn.data_to_send() == b"" and state(conn) is State.OPEN


def test_idle_timeout_closes_with_1001() -> None:
    conn = open_server(Config(ping_interval=None, idle_timeout=60.0))
    assert conn.get_timer() == 60.0
    conn.receive_data(frame(1, REGISTER), 10.0)
    conn.events()
    conn.send(OK, 20.0)
    conn.data_to_send()
    assert conn.get_timer() == 80.0
    conn.receive_data(frame(PING, b""), 50.0)  # a Ping is not a SIP message
    conn.events()
    conn.data_to_send()
    conn.handle_timer(80.0)
    assert sent_close_code(conn.data_to_send()) == 1001
    assert state(conn) is State.CLOSING
    conn.receive_data(frame(CLOSE, close_body(1001)), 80.1)
    event = closed(conn.events()[1:])
    assert (event.code, event.cause, event.clean) == (1001, Cause.IDLE_TIMEOUT, True)


def test_crlf_keepalive_counts_as_activity() -> None:
    conn = open_server(Config(ping_interval=None, idle_timeout=60.0))
    conn.receive_data(frame(1, b"\r\n\r\n"), 50.0)
    assert conn.get_timer() == 110.0


def test_close_timeout_when_the_peer_never_answers() -> None:
    conn = open_server(Config(close_timeout=4.0))
    conn.close(10.0, 1000, "bye")
    assert conn.get_timer() == 14.0
    conn.handle_timer(13.9)
    assert state(conn) is State.CLOSING
    conn.handle_timer(14.0)
    event = closed(conn.events())
    assert (event.code, event.reason, event.cause, event.clean) == (1000, "bye", Cause.CLOSE_TIMEOUT, False)
    assert action(conn) is TransportAction.CLOSE and conn.get_timer() is None


def test_earliest_deadline_wins() -> None:
    conn = open_server(Config(ping_interval=30.0, idle_timeout=20.0))
    assert conn.get_timer() == 20.0
