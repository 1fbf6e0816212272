"""Faults from one peer, each while a healthy client goes on undisturbed, on every adapter's server.

Each case ends within its configured bound (plus SLACK: other CPU-heavy jobs share the
machine), the process's peak RSS grows by less than MEMORY, and the server side's
`ConnectionClosed` has the exact cause and code. Failures before the upgrade never reach a
handler: trio and the blocking adapter log their cause, asyncio's `serve()` reports none, so
there only the peer's view and the timing are checked.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import random
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from adapter_helpers import REGISTER, wait_for
from harness import ADAPTERS, FLOOD_ME, Harness, Running, harness_for
from raw_peers import Healthy, Raw, Sealed, client_hello, healthy_client
from wire import BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT, close_body, frame, request

from sansio_wss import Cause, Config

SLACK = 1.5
"""Seconds a bound may be overrun on a loaded 2-core machine (still far below any default timeout)."""
ROUND_TRIP = 1.0
"""Bound on each of the healthy client's round trips while a fault goes on."""
MEMORY = 50 * 2**20
"""Bound on the growth of the process's peak RSS during one case (server, clients and test)."""
GARBAGE = 10 * 2**20
QUIET = Config(ping_interval=None)


@pytest.fixture(params=ADAPTERS)
def harness(request: pytest.FixtureRequest) -> Harness:
    """The adapter's harness (conftest.py checks that the test left no thread or socket)."""
    return harness_for(request.param)


def _not_healthy(server: Running) -> list[bytes]:
    """What the server's handlers received, but for the healthy client's REGISTERs."""
    return [message.message for message in server.seen if message.message != REGISTER]


# ---------------------------------------------------------------- what every case measures


def _status(name: str) -> int:
    """A `/proc/self/status` figure, in bytes."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith(name + ":"))


@dataclass
class PeakRss:
    """The growth of the process's peak RSS since the block began (VmHWM, reset at the start)."""

    start: int = 0
    growth: int = 0


@contextlib.contextmanager
def peak_rss() -> Iterator[PeakRss]:
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # resets VmHWM to the current RSS
    memory = PeakRss(_status("VmRSS"))
    yield memory
    memory.growth = _status("VmHWM") - memory.start


@contextlib.contextmanager
def undisturbed(server: Running) -> Iterator[Healthy]:
    """A healthy client's round trips throughout the block (and 3 more after it: the server
    still serves); each must be answered within ROUND_TRIP, and its close be clean on both sides."""
    with healthy_client(server.port) as healthy:
        healthy.wait_round_trips(1, ROUND_TRIP)
        yield healthy
        healthy.wait_round_trips(len(healthy.latencies) + 3, 3 * ROUND_TRIP)
        ended = len(server.closed) + 1
    assert healthy.errors == []
    assert len(healthy.latencies) >= 4, healthy.report()
    assert max(healthy.latencies) < ROUND_TRIP, healthy.report()
    closed = server.wait_closed(ended)
    assert (closed.cause, closed.code, closed.clean) == (Cause.PEER_CLOSED, 1000, True)


def _logged(caplog: pytest.LogCaptureFixture, harness: Harness, cause: Cause) -> None:
    """The adapter logged a connection that failed before its handler with `cause` (asyncio logs none)."""
    if harness.logger is None:
        return
    deadline = time.monotonic() + SLACK
    while True:
        logged = [r.getMessage() for r in caplog.records if r.name == harness.logger]
        if any(f": {cause.value} " in message for message in logged):
            return
        assert time.monotonic() < deadline, logged
        time.sleep(0.01)


def _report(harness: Harness, case: str, elapsed: float, memory: PeakRss, healthy: Healthy) -> None:
    print(
        f"\n{harness.name:8} {case:28} {elapsed:6.2f} s  peak RSS +{memory.growth / 2**20:5.1f} MB"
        f"  healthy: {healthy.report()}"
    )


def _wait_eof(sock: socket.socket | Raw, limit: float) -> None:
    """Read and drop what comes until the peer ends the connection (close_notify, FIN or reset)."""
    raw = sock.sock if isinstance(sock, Raw) else sock
    raw.settimeout(limit)
    with contextlib.suppress(ConnectionResetError):
        while raw.recv(65536):
            pass


# (a) ---------------------------------------------------------------- slow handshake


SLOW = {
    # with the chunk limit out of the way, the handshake timer drops the slow-loris
    "timeout": (Config(handshake_timeout=1.0, max_msg_chunks=1 << 16), Cause.HANDSHAKE_TIMEOUT),
    # with the default limit of 4 reads, the 4th read of an incomplete request drops it first
    "chunk-limit": (Config(handshake_timeout=1.0), Cause.CHUNK_LIMIT),
}


@pytest.mark.parametrize("case", list(SLOW))
def test_slow_handshake_one_byte_every_50_ms(
    harness: Harness, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    caplog.set_level(logging.INFO)
    config, cause = SLOW[case]
    assert config.handshake_timeout is not None
    with harness.serve(config=config) as server, undisturbed(server) as healthy, peak_rss() as memory:
        start = time.monotonic()
        with Raw(server.port) as raw:
            raw.sock.settimeout(0.05)
            sent = 0
            for byte in request():
                raw.send(bytes([byte]))
                sent += 1
                try:  # a TLS 1.3 session ticket is read and skipped, no plaintext comes
                    assert raw.sock.recv(100) == b"", "a reply"  # nothing: dropped
                except TimeoutError:
                    continue  # 50 ms passed: the next byte
                except ConnectionResetError:
                    pass
                break
            else:
                raise AssertionError("the whole request went through")
        elapsed = time.monotonic() - start
        if cause is Cause.HANDSHAKE_TIMEOUT:
            assert config.handshake_timeout - 0.05 < elapsed < config.handshake_timeout + SLACK
            assert 5 < sent < 25
        else:  # 4 reads of 1 byte each, 50 ms apart: long before the timeout
            # (a server thread late by over 50 ms reads 2 bytes at once: 1 more byte)
            assert 0.15 < elapsed < config.handshake_timeout - 0.1
            assert config.max_msg_chunks <= sent <= config.max_msg_chunks + 3
        _logged(caplog, harness, cause)
        assert _not_healthy(server) == [] and server.closed == []
    _report(harness, f"(a) slow handshake {case}", elapsed, memory, healthy)
    assert memory.growth < MEMORY


# (b) ---------------------------------------------------------------- TLS handshake stops


@pytest.mark.parametrize("where", ["inside-client-hello", "after-client-hello"])
def test_tls_handshake_that_stops_half_way(
    harness: Harness, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    caplog.set_level(logging.INFO)
    config = Config(tls_handshake_timeout=1.0)
    hello = client_hello()
    with harness.serve(config=config) as server, undisturbed(server) as healthy, peak_rss() as memory:
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port), 5) as sock:
            sock.sendall(hello[: len(hello) // 2] if where == "inside-client-hello" else hello)
            _wait_eof(sock, config.tls_handshake_timeout + SLACK)  # the server's flight, then nothing
        elapsed = time.monotonic() - start
        assert config.tls_handshake_timeout - 0.05 < elapsed < config.tls_handshake_timeout + SLACK
        _logged(caplog, harness, Cause.TLS_HANDSHAKE_TIMEOUT)
        assert _not_healthy(server) == [] and server.closed == []
    _report(harness, f"(b) TLS stops {where}", elapsed, memory, healthy)
    assert memory.growth < MEMORY


# (c) ---------------------------------------------------------------- a peer that stops reading


def test_a_peer_that_stops_reading_while_we_send(harness: Harness) -> None:
    config = Config(send_timeout=1.0, ping_interval=None)
    with harness.serve(config=config) as server, undisturbed(server) as healthy, peak_rss() as memory:
        with Raw(server.port, rcvbuf=4096) as raw:
            raw.upgrade()
            raw.send(frame(TEXT, REGISTER.replace(b"CSeq", FLOOD_ME + b"\r\nCSeq")))  # then reads nothing
            closed = server.wait_closed(timeout=config.send_timeout + SLACK + 1.0)
            elapsed = time.monotonic() - server.flood_started[0]
        assert (closed.cause, closed.code, closed.clean) == (Cause.SEND_TIMEOUT, 1006, False)
        assert config.send_timeout - 0.05 < elapsed < config.send_timeout + SLACK
    _report(harness, "(c) peer stops reading", elapsed, memory, healthy)
    assert memory.growth < MEMORY


# (d) ---------------------------------------------------------------- a reset inside a frame


@pytest.mark.parametrize("where", ["frame", "tls-record"])
def test_a_tcp_reset_in_the_middle_of_a_frame(harness: Harness, where: str) -> None:
    """Half a WebSocket frame in whole TLS records, or half of the TLS record that carries a
    frame; then a reset."""
    whole = frame(TEXT, REGISTER + b"x" * 1000)
    with harness.serve(config=QUIET) as server, undisturbed(server) as healthy, peak_rss() as memory:
        with Sealed(server.port) as peer:
            peer.upgrade()
            if where == "frame":
                peer.sock.sendall(peer.seal(whole[: len(whole) // 2]))
            else:
                records = peer.seal(whole)
                peer.sock.sendall(records[: len(records) // 2])
            time.sleep(0.1)  # the server has read the half and waits for the rest
            start = time.monotonic()
            peer.reset()
        closed = server.wait_closed(timeout=SLACK)
        elapsed = time.monotonic() - start
        assert (closed.cause, closed.code, closed.clean) == (Cause.TRANSPORT_ERROR, 1006, False)
        assert _not_healthy(server) == []
    _report(harness, f"(d) reset mid-{where}", elapsed, memory, healthy)
    assert memory.growth < MEMORY


def test_a_corrupt_tls_record(harness: Harness) -> None:
    """A TLS record whose ciphertext was changed on the way fails the connection at once."""
    with harness.serve(config=QUIET) as server, undisturbed(server) as healthy, peak_rss() as memory:
        with Sealed(server.port) as peer:
            peer.upgrade()
            records = bytearray(peer.seal(frame(TEXT, REGISTER)))
            records[-1] ^= 0x01  # the last byte of the authentication tag
            start = time.monotonic()
            peer.sock.sendall(records)
            _wait_eof(peer.sock, SLACK)
        closed = server.wait_closed(timeout=SLACK)
        elapsed = time.monotonic() - start
        assert (closed.cause, closed.code, closed.clean) == (Cause.TLS_FAILED, 1006, False)
        assert elapsed < SLACK and _not_healthy(server) == []
    _report(harness, "(d) corrupt TLS record", elapsed, memory, healthy)
    assert memory.growth < MEMORY


# (e) ---------------------------------------------------------------- half-open


HALF_OPEN = {
    # our Ping after 0.3 s of silence, no Pong within 0.5 s: Close 1011, then 0.5 s for its Close
    "pong-timeout": (
        Config(ping_interval=0.3, pong_timeout=0.5, close_timeout=0.5),
        Cause.PONG_TIMEOUT,
        1011,
    ),
    # no SIP message either way for 1 s: Close 1001; no Close back within 0.5 s, so the
    # cause is the closing handshake's (IDLE_TIMEOUT only once it completes); the code says why
    "idle-timeout": (
        Config(ping_interval=None, idle_timeout=1.0, close_timeout=0.5),
        Cause.CLOSE_TIMEOUT,
        1001,
    ),
}


@pytest.mark.parametrize("case", list(HALF_OPEN))
def test_a_half_open_connection_is_reaped(harness: Harness, case: str) -> None:
    """The peer vanishes without FIN or reset: it stops all I/O (its kernel still ACKs)."""
    config, cause, code = HALF_OPEN[case]
    bound = (config.ping_interval or 0) + (config.idle_timeout or config.pong_timeout) + config.close_timeout
    with harness.serve(config=config) as server, undisturbed(server) as healthy, peak_rss() as memory:
        with Raw(server.port) as raw:
            raw.upgrade()
            start = time.monotonic()
            closed = server.wait_closed(timeout=bound + SLACK)
            elapsed = time.monotonic() - start
        assert (closed.cause, closed.code, closed.clean) == (cause, code, False)
        assert bound - 0.1 < elapsed < bound + SLACK
    _report(harness, f"(e) half-open {case}", elapsed, memory, healthy)
    assert memory.growth < MEMORY


# (f) ---------------------------------------------------------------- 10 MB of garbage


def _garbage() -> Iterator[bytes]:
    """10 MB of random bytes (fixed seed), 64 kB at a time."""
    chunk = random.Random(5).randbytes(65536)
    assert chunk[0] & 0x70  # reserved bits set: not a frame anyone may send
    for _ in range(GARBAGE // len(chunk)):
        yield chunk


GARBAGE_AFTER_UPGRADE = {
    # random bytes: the first has reserved bits set
    "random": (_garbage, Cause.PROTOCOL_ERROR, 1002),
    # one valid masked frame header announcing 10 MB: refused from the header, before its payload
    "one-10MB-frame": (
        lambda: itertools.chain([frame(BINARY, b"", length=GARBAGE)], _garbage()),
        Cause.MESSAGE_TOO_BIG,
        1009,
    ),
}


@pytest.mark.parametrize("kind", list(GARBAGE_AFTER_UPGRADE))
def test_garbage_after_the_upgrade(harness: Harness, kind: str) -> None:
    make, cause, code = GARBAGE_AFTER_UPGRADE[kind]
    config = Config(ping_interval=None, close_timeout=0.5)
    with harness.serve(config=config) as server, undisturbed(server) as healthy, peak_rss() as memory:
        with Raw(server.port) as raw:
            raw.upgrade()
            start = time.monotonic()
            garbage = make()
            raw.send(next(garbage))
            opcode, payload = raw.message()  # at once: the server does not wait for the rest
            assert (opcode, payload[:2]) == (CLOSE, close_body(code))
            failed_after = time.monotonic() - start
            sent = 0
            with contextlib.suppress(OSError):  # the rest: discarded, then reset
                for chunk in garbage:
                    raw.send(chunk)
                    sent += len(chunk)
            closed = server.wait_closed(timeout=config.close_timeout + SLACK)
            elapsed = time.monotonic() - start
            _wait_eof(raw, SLACK)
        assert (closed.cause, closed.code, closed.clean) == (cause, code, False)
        assert failed_after < SLACK / 3 and elapsed < config.close_timeout + SLACK
        assert _not_healthy(server) == []
    _report(harness, f"(f) {kind} after upgrade ({sent / 2**20:.1f} MB more)", elapsed, memory, healthy)
    assert memory.growth < GARBAGE // 2  # nothing near the 10 MB was held


def test_garbage_instead_of_a_client_hello(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with harness.serve(config=QUIET) as server, undisturbed(server) as healthy, peak_rss() as memory:
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port), 5) as sock:
            sent = 0
            with contextlib.suppress(OSError):  # reset once the server is gone
                for chunk in _garbage():
                    sock.sendall(chunk)
                    sent += len(chunk)
            _wait_eof(sock, SLACK)
        elapsed = time.monotonic() - start
        assert elapsed < SLACK
        _logged(caplog, harness, Cause.TLS_FAILED)
        assert _not_healthy(server) == [] and server.closed == []
    _report(harness, f"(f) garbage for TLS ({sent >> 20} MB)", elapsed, memory, healthy)
    assert memory.growth < GARBAGE // 2  # nothing near the 10 MB was held


# (g) ---------------------------------------------------------------- a Ping flood

PINGS = 10_000


def _ping(i: int) -> bytes:
    return b"%05d" % i + b"p" * 120  # 125 bytes: the largest a control frame may carry


def test_a_flood_of_pings_from_a_peer_that_reads(harness: Harness) -> None:
    """Each of 10,000 Pings (sent 500 at a time, then their Pongs read) is answered, in order."""
    batch = 500
    with harness.serve(config=QUIET) as server, undisturbed(server) as healthy, peak_rss() as memory:
        start = time.monotonic()
        with Raw(server.port) as raw:
            raw.upgrade()
            for first in range(0, PINGS, batch):
                raw.send(b"".join(frame(PING, _ping(i)) for i in range(first, first + batch)))
                for i in range(first, first + batch):
                    assert raw.frame() == (True, PONG, _ping(i))
            raw.send(frame(CLOSE, close_body(1000)))
            assert raw.message() == (CLOSE, close_body(1000))
            closed = server.wait_closed()
        elapsed = time.monotonic() - start
        assert (closed.cause, closed.code, closed.clean) == (Cause.PEER_CLOSED, 1000, True)
        assert elapsed < 5.0 + SLACK
    _report(harness, "(g) 10,000 pings, read", elapsed, memory, healthy)
    assert memory.growth < MEMORY


def test_a_flood_of_pings_from_a_peer_that_reads_late(harness: Harness) -> None:
    """10,000 Pings at once from a peer that reads nothing (4 kB receive buffer) for longer
    than the send timeout, then reads: either every Pong comes, in order, and the connection
    is still open, or the send timeout dropped the peer and what came is a prefix, in order.
    Which one depends on how much the kernel buffers between us hold: both are bounded."""
    config = Config(send_timeout=1.0, ping_interval=None)
    with harness.serve(config=config) as server, undisturbed(server) as healthy, peak_rss() as memory:
        start = time.monotonic()
        with Raw(server.port, rcvbuf=4096) as raw:
            raw.upgrade()
            with contextlib.suppress(OSError):
                raw.send(b"".join(frame(PING, _ping(i)) for i in range(PINGS)))
            dropped = wait_for(lambda: len(server.closed) == 1, config.send_timeout + SLACK)
            elapsed = time.monotonic() - start
            answered = 0
            with contextlib.suppress(EOFError, ConnectionResetError):
                for i in range(PINGS):
                    assert raw.frame() == (True, PONG, _ping(i))
                    answered += 1
            if dropped:
                closed = server.wait_closed()
                assert (closed.cause, closed.code, closed.clean) == (Cause.SEND_TIMEOUT, 1006, False)
                assert config.send_timeout - 0.05 < elapsed < config.send_timeout + SLACK
                outcome = f"dropped by send_timeout, {answered} Pongs read"
            else:
                assert answered == PINGS
                raw.send(frame(CLOSE, close_body(1000)))
                assert raw.message() == (CLOSE, close_body(1000))
                closed = server.wait_closed()
                assert (closed.cause, closed.code, closed.clean) == (Cause.PEER_CLOSED, 1000, True)
                outcome = "every Ping answered"
    _report(harness, f"(g) 10,000 pings, read late: {outcome}", elapsed, memory, healthy)
    assert memory.growth < MEMORY


# (h) ---------------------------------------------------------------- 10,000 fragments

FRAGMENTS = 10_000
_HEAD = b"MESSAGE sip:bob@example.com SIP/2.0\r\nCSeq: 7 MESSAGE\r\nContent-Length: %05d\r\n\r\n"
LONG = _HEAD % (FRAGMENTS - len(_HEAD % 0)) + b"f" * (FRAGMENTS - len(_HEAD % 0))


def _fragments(message: bytes) -> list[bytes]:
    """`message` as one frame per byte: a Text frame, then Continuations, the last with FIN."""
    last = len(message) - 1
    return [
        frame(TEXT if i == 0 else CONTINUATION, message[i : i + 1], fin=i == last)
        for i in range(len(message))
    ]


def test_ten_thousand_fragments_with_the_default_chunk_limit(harness: Harness) -> None:
    """Sent in up to 8 writes 100 ms apart, so that they take more than 4 reads (even if a
    loaded server reads two writes at once): the 4th read leaves the message incomplete and
    breaks the default limit of 4 (Close 1008), whatever the fragment count."""
    config = Config(ping_interval=None, close_timeout=1.0)
    assert len(LONG) == FRAGMENTS and config.max_msg_chunks == 4
    data = b"".join(_fragments(LONG))
    writes = 2 * config.max_msg_chunks
    step = -(-len(data) // writes)
    with harness.serve(config=config) as server, undisturbed(server) as healthy, peak_rss() as memory:
        start = time.monotonic()
        with Raw(server.port) as raw:
            raw.upgrade()
            raw.sock.settimeout(0.1)
            for taken in range(1, writes + 1):
                raw.send(data[(taken - 1) * step : taken * step])
                try:  # 100 ms for the server's Close before the next write
                    opcode, payload = raw.message()
                    break
                except TimeoutError:
                    continue
            else:
                raise AssertionError("the whole message went through")
            assert (opcode, payload[:2]) == (CLOSE, close_body(1008))
            assert config.max_msg_chunks <= taken < writes  # failed at the 4th read
            raw.sock.settimeout(5)
            raw.send(frame(CLOSE, payload[:2]))  # the closing handshake, which the server awaits
            assert raw.until_eof() == b""
            closed = server.wait_closed()
        elapsed = time.monotonic() - start
        assert (closed.cause, closed.code, closed.clean) == (Cause.CHUNK_LIMIT, 1008, False)  # a failure
        assert _not_healthy(server) == []
        assert elapsed < writes * 0.1 + SLACK
    _report(harness, "(h) 10,000 fragments, limit 4", elapsed, memory, healthy)
    assert memory.growth < MEMORY


def test_ten_thousand_fragments_with_the_chunk_limit_raised(harness: Harness) -> None:
    """One TLS record per fragment and max_msg_chunks=10,000: however the reads fall, the
    message is assembled whole and delivered once."""
    config = Config(ping_interval=None, max_msg_chunks=FRAGMENTS)
    with harness.serve(config=config) as server, undisturbed(server) as healthy, peak_rss() as memory:
        start = time.monotonic()
        with Raw(server.port) as raw:
            raw.upgrade()
            for fragment in _fragments(LONG):
                raw.send(fragment)
            assert raw.message() == (TEXT, LONG)
            raw.send(frame(CLOSE, close_body(1000)))
            assert raw.message() == (CLOSE, close_body(1000))
            closed = server.wait_closed()
        elapsed = time.monotonic() - start
        assert (closed.cause, closed.code, closed.clean) == (Cause.PEER_CLOSED, 1000, True)
        assert _not_healthy(server) == [LONG]
        assert elapsed < 3.0 + SLACK
    _report(harness, "(h) 10,000 fragments, limit 10k", elapsed, memory, healthy)
    assert memory.growth < MEMORY
