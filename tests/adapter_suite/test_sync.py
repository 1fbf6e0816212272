"""The blocking adapter beyond the conformance suite: calls that time out, a handler's send that
meets the end of its connection, and replies held back to leave together."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import pytest
from adapter_helpers import OK, REGISTER, client_domain, server_domain
from raw_peers import Raw
from wire import TEXT, frame

from sansio_wss import Cause, Config, ConnectionClosed, SipMessageReceived
from sansio_wss.adapters import _sync_io
from sansio_wss.adapters import sync as wss

FLOOD = b"MESSAGE sip:a@b SIP/2.0\r\n\r\n" + b"x" * 60_000


def echo_ok(conn: wss.Connection) -> None:
    for message in conn:
        if isinstance(message, SipMessageReceived):
            conn.send(OK)


@contextlib.contextmanager
def serving(handler: wss.Handler = echo_ok, config: Config | None = None) -> Iterator[int]:
    """Our server on an ephemeral port of 127.0.0.1 until the block ends."""
    with wss.serve(handler, [("127.0.0.1", 0)], tls=[server_domain()], config=config) as server:
        yield server.addresses[0][1]


def test_blocking_calls_time_out() -> None:
    with serving() as port, wss.connect(f"wss://localhost:{port}/", tls=client_domain()) as conn:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            conn.recv(timeout=0.1)
        assert not conn.wait_closed(0.1)
        assert 0.2 <= time.monotonic() - started < 1.0
        conn.send(REGISTER)
        assert conn.recv(timeout=5) == SipMessageReceived(OK, False)  # still open


def test_a_send_that_meets_the_end_of_its_connection_is_no_handler_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A handler's send() raises ConnectionClosedError once the connection has failed (here, the
    peer stopped reading); passed on by the handler, it is not logged as a handler failure."""
    ended: list[ConnectionClosed | None] = []
    done = threading.Event()

    def flood(conn: wss.Connection) -> None:
        try:
            while True:
                conn.send(FLOOD)
        finally:
            ended.append(conn.closed)
            done.set()

    with serving(flood, Config(send_timeout=0.3, ping_interval=None)) as port, Raw(port, rcvbuf=4096) as raw:
        raw.upgrade()  # and never read again
        assert done.wait(5)
    closed = ended[0]
    assert closed is not None and closed.cause is Cause.SEND_TIMEOUT
    assert not any("handler failed" in r.getMessage() for r in caplog.records)


def test_replies_to_queued_requests_leave_in_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Five requests in one read, five replies: one socket write (one TLS record), not five."""
    writes: list[int] = []
    real_write = _sync_io.Connection._write

    def counting_write(self: _sync_io.Connection, now: float) -> None:
        writes.append(len(self._out))
        real_write(self, now)

    with serving() as port, Raw(port) as raw:
        raw.upgrade()
        monkeypatch.setattr(_sync_io.Connection, "_write", counting_write)
        raw.send(frame(TEXT, REGISTER) * 5)
        assert [raw.message() for _ in range(5)] == [(TEXT, OK)] * 5
        assert len(writes) == 1, writes


def test_held_replies_leave_while_their_handlers_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reply held for the replies to queued requests goes out after the hold time, even if
    the handler then blocks instead of answering them; one flusher thread serves every
    connection (the hold time is made longer here, for it to serve both at once)."""
    monkeypatch.setattr(_sync_io, "_HOLD_TIME", 0.05)
    release = threading.Event()

    def handler(conn: wss.Connection) -> None:
        conn.recv()
        conn.send(OK)  # held: a second request is queued
        release.wait(5)
        for _ in conn:
            conn.send(OK)

    with serving(handler) as port, Raw(port) as first, Raw(port) as second:
        first.upgrade()
        second.upgrade()
        started = time.monotonic()
        first.send(frame(TEXT, REGISTER) * 2)
        time.sleep(0.02)  # the flusher's first turn sends the first reply and keeps the second
        second.send(frame(TEXT, REGISTER) * 2)
        for raw in (first, second):
            assert raw.message() == (TEXT, OK)
        assert time.monotonic() - started < 0.3  # the handlers block for 5 s
        release.set()
        for raw in (first, second):
            assert raw.message() == (TEXT, OK)
