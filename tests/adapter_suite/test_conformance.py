"""One conformance suite, each scenario run against the asyncio, trio and blocking adapters."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator

import pytest
from adapter_helpers import REGISTER, certs, client_domain, client_ssl_context, server_domain
from harness import ADAPTERS, CLOSE_ME, FLOOD, Harness, harness_for
from wire import BINARY, CLOSE, CONTINUATION, PING, TEXT, close_body, frame, request

from sansio_wss import Cause, Config, SipMessageReceived, TLSDomain

BINARY_SIP = (
    b"MESSAGE sip:bob@example.com SIP/2.0\r\nCSeq: 2 MESSAGE\r\nContent-Length: 3\r\n\r\n\xff\xfe\x00"
)
BIG = (
    b"MESSAGE sip:bob@example.com SIP/2.0\r\nCSeq: 3 MESSAGE\r\nContent-Length: 60000\r\n\r\n" + b"y" * 60_000
)


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture(params=ADAPTERS)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """The adapter's harness; afterwards, every thread and socket the test opened must be gone."""
    before = set(threading.enumerate())
    fds = _open_fds()
    yield harness_for(request.param)
    deadline = time.monotonic() + 3
    while (new := set(threading.enumerate()) - before) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not new, f"threads left behind: {sorted(t.name for t in new)}"
    assert threading.active_count() <= len(before)
    left = {
        fd: os.readlink(f"/proc/self/fd/{fd}")
        for fd in _open_fds() - fds
        if os.path.exists(f"/proc/self/fd/{fd}")
    }
    assert not left, f"file descriptors left open: {left}"


class Raw:
    """A TLS client that speaks WebSocket by hand, with the stdlib's ssl and socket."""

    def __init__(
        self,
        port: int,
        *,
        server_hostname: str = "localhost",
        context: ssl.SSLContext | None = None,
        rcvbuf: int | None = None,
    ) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", port))
            self.sock = (context or client_ssl_context()).wrap_socket(sock, server_hostname=server_hostname)
        except BaseException:
            sock.close()
            raise
        self.buffer = b""

    def __enter__(self) -> Raw:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(self.buffer)
        self.buffer += chunk

    def _take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._more()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def head(self) -> bytes:
        """The server's HTTP reply head."""
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        return head

    def upgrade(self) -> None:
        self.send(request())
        status = self.head().split(b"\r\n")[0]
        assert status.startswith(b"HTTP/1.1 101 "), status

    def frame(self) -> tuple[bool, int, bytes]:
        """One server frame: (fin, opcode, payload); server frames are unmasked."""
        b0, b1 = self._take(2)
        assert not b1 & 0x80, "server frames are not masked"
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(self._take(2), "big")
        elif n == 127:
            n = int.from_bytes(self._take(8), "big")
        return bool(b0 & 0x80), b0 & 0x0F, self._take(n)

    def message(self) -> tuple[int, bytes]:
        """One whole data message (opcode, payload), or a Close frame."""
        fin, opcode, payload = self.frame()
        while not fin:
            fin, _, more = self.frame()
            payload += more
        return opcode, payload

    def until_eof(self) -> bytes:
        try:
            while True:
                self._more()
        except (EOFError, ConnectionResetError):
            pass
        return self.buffer

    def reset(self) -> None:
        """End with a TCP reset instead of close_notify and FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.sock.close()


# 1 ---------------------------------------------------------------- handshake and messages


def test_messages_both_ways_text_and_binary(harness: Harness) -> None:
    with harness.serve() as server:
        replies, closed = harness.exchange(server.port, [REGISTER, BINARY_SIP, REGISTER])
        assert replies == [
            SipMessageReceived(REGISTER, False),
            SipMessageReceived(BINARY_SIP, True),
            SipMessageReceived(REGISTER, False),
        ]
        assert server.seen == replies
        assert closed.clean and closed.cause is Cause.LOCAL_CLOSED and closed.code == 1000
        peer = server.wait_closed()
        assert peer.clean and peer.cause is Cause.PEER_CLOSED


# 2 ---------------------------------------------------------------- rejections


REJECTIONS = {
    "400-no-sip": (400, request(drop=("Sec-WebSocket-Protocol",))),
    "403-no-origin": (403, request(drop=("Origin",))),
    "404-resource": (404, request(line="GET /elsewhere HTTP/1.1")),
    "426-version": (426, request(replace={"Sec-WebSocket-Version": "8"})),
    "431-huge-head": (431, request(add=[("X-Padding", "p" * 20_000)])),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_rejection_status(harness: Harness, case: str) -> None:
    status, upgrade = REJECTIONS[case]
    with harness.serve(config=Config(resources=frozenset({"/ws"}))) as server, Raw(server.port) as raw:
        raw.send(upgrade)
        line = raw.head().split(b"\r\n")[0]
        assert line.startswith(f"HTTP/1.1 {status} ".encode()), line
        raw.until_eof()  # then the server ends the connection
        assert server.seen == []


def test_426_names_the_version(harness: Harness) -> None:
    with harness.serve() as server, Raw(server.port) as raw:
        raw.send(request(replace={"Sec-WebSocket-Version": "8"}))
        head = raw.head().lower()
        assert head.startswith(b"http/1.1 426 ") and b"\r\nsec-websocket-version: 13" in head


# 3 ---------------------------------------------------------------- big and fragmented


def test_large_and_fragmented_messages_arrive_whole(harness: Harness) -> None:
    # Enough chunks that a 60 KB message is never cut off by how TCP splits it.
    with harness.serve(config=Config(max_msg_chunks=64)) as server, Raw(server.port) as raw:
        raw.upgrade()
        raw.send(frame(TEXT, BIG))
        assert raw.message() == (TEXT, BIG)
        parts = [REGISTER[:20], REGISTER[20:50], REGISTER[50:]]
        raw.send(frame(TEXT, parts[0], fin=False))
        raw.send(frame(CONTINUATION, parts[1], fin=False))
        raw.send(frame(CONTINUATION, parts[2]))
        assert raw.message() == (TEXT, REGISTER)
        assert server.seen == [SipMessageReceived(BIG, False), SipMessageReceived(REGISTER, False)]


def test_large_message_through_our_client(harness: Harness) -> None:
    with harness.serve(config=Config(max_msg_chunks=64)) as server:
        replies, _ = harness.exchange(server.port, [BIG], config=Config(max_msg_chunks=64))
        assert replies == [SipMessageReceived(BIG, False)]


# 4 ---------------------------------------------------------------- chunk limit


def _send_in_writes(raw: Raw, data: bytes, writes: int) -> None:
    step = len(data) // writes
    for i in range(writes):
        raw.send(data[i * step : None if i == writes - 1 else (i + 1) * step])
        if i < writes - 1:
            time.sleep(0.1)  # separate TLS records and separate reads on the server


def test_chunk_limit(harness: Harness) -> None:
    config = Config(max_msg_chunks=2)
    with harness.serve(config=config) as server:
        with Raw(server.port) as raw:
            raw.upgrade()
            _send_in_writes(raw, frame(BINARY, BINARY_SIP), config.max_msg_chunks)
            assert raw.message() == (BINARY, BINARY_SIP)
        with Raw(server.port) as raw:
            raw.upgrade()
            _send_in_writes(raw, frame(TEXT, REGISTER), config.max_msg_chunks + 1)
            opcode, payload = raw.message()
            assert (opcode, payload[:2]) == (CLOSE, close_body(1008))
        assert server.seen == [SipMessageReceived(BINARY_SIP, True)]
        assert server.wait_closed(2).cause is Cause.CHUNK_LIMIT


# 5 ---------------------------------------------------------------- timeouts


def test_tls_handshake_timeout(harness: Harness) -> None:
    with harness.serve(config=Config(tls_handshake_timeout=0.5)) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), 5)
        with sock:
            start = time.monotonic()
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(100) == b""  # no ClientHello: dropped
            assert 0.4 < time.monotonic() - start < 2.0


def test_websocket_handshake_timeout(harness: Harness) -> None:
    with harness.serve(config=Config(handshake_timeout=0.5)) as server, Raw(server.port) as raw:
        start = time.monotonic()
        raw.send(request()[:40])
        assert raw.until_eof() == b""
        assert 0.3 < time.monotonic() - start < 2.0
        assert server.seen == []


def test_send_timeout_when_the_peer_stops_reading(harness: Harness) -> None:
    config = Config(send_timeout=0.5, ping_interval=None)
    with harness.serve(config=config, mode="flood") as server, Raw(server.port, rcvbuf=4096) as raw:
        raw.upgrade()
        closed = server.wait_closed()
        elapsed = time.monotonic() - server.flood_started[0]
        assert closed.cause is Cause.SEND_TIMEOUT and not closed.clean
        assert 0.4 < elapsed < config.send_timeout + 2.0


def test_a_slow_reader_gets_every_message_whole_and_in_order(harness: Harness) -> None:
    """Writes block and resume many times (the socket buffers hold far less than is sent);
    the send timeout, longer than any pause, never fires."""
    config = Config(send_timeout=3.0, ping_interval=None)
    with harness.serve(config=config, mode="flood") as server, Raw(server.port, rcvbuf=4096) as raw:
        raw.upgrade()
        for _ in range(80):  # 80 x 60 kB
            assert raw.message() == (TEXT, FLOOD)
            time.sleep(0.002)
        raw.send(frame(CLOSE, close_body(1000), mask=b"abcd"))
        while raw.message()[0] != CLOSE:
            pass
        closed = server.wait_closed()
        assert (closed.code, closed.cause, closed.clean) == (1000, Cause.PEER_CLOSED, True)


def test_a_ping_flood_from_a_peer_that_never_reads(harness: Harness) -> None:
    """Pongs to a peer that reads nothing cannot pile up: we stop reading its Pings (it
    cannot send them all), then the send timeout drops it."""
    config = Config(send_timeout=0.5, ping_interval=None)
    pings = 200_000  # 26 MB of Pings: more than the kernel buffers between us hold
    with harness.serve(config=config) as server, Raw(server.port, rcvbuf=4096) as raw:
        raw.upgrade()
        ping = frame(PING, b"p" * 125)
        sent = 0
        with contextlib.suppress(OSError):  # blocked, then reset
            for sent in range(pings):  # noqa: B007
                raw.send(ping)
        closed = server.wait_closed()
        assert closed.cause is Cause.SEND_TIMEOUT and not closed.clean
        assert sent < pings // 2


# 6 ---------------------------------------------------------------- closing


def test_client_closes_cleanly(harness: Harness) -> None:
    with harness.serve() as server:
        replies, closed = harness.exchange(server.port, [REGISTER])
        assert replies == [SipMessageReceived(REGISTER, False)]
        assert closed.clean and closed.cause is Cause.LOCAL_CLOSED
        peer = server.wait_closed()
        assert peer.clean and peer.cause is Cause.PEER_CLOSED and peer.code == 1000


def test_server_closes_cleanly(harness: Harness) -> None:
    bye = REGISTER.replace(b"Content-Length", CLOSE_ME + b"\r\nContent-Length")
    with harness.serve() as server:
        replies, closed = harness.exchange(server.port, [bye], close=False)
        assert replies == [SipMessageReceived(bye, False)]
        assert closed.clean and closed.cause is Cause.PEER_CLOSED and closed.code == 1000
        peer = server.wait_closed()
        assert peer.clean and peer.cause is Cause.LOCAL_CLOSED


def test_abrupt_close_by_reset(harness: Harness) -> None:
    with harness.serve() as server:
        raw = Raw(server.port)
        raw.upgrade()
        raw.send(frame(TEXT, REGISTER))
        assert raw.message() == (TEXT, REGISTER)
        raw.reset()
        closed = server.wait_closed()
        assert closed.cause in (Cause.EOF, Cause.TRANSPORT_ERROR) and not closed.clean
        assert closed.code == 1006


# 7 ---------------------------------------------------------------- client certificates, SNI


def test_require_cert(harness: Harness) -> None:
    strict = server_domain(require_cert=True, ca_list=certs().ca)
    with harness.serve(tls=[strict]) as server:
        failed = harness.connect_fails(server.port)
        assert failed.closed.cause in (Cause.TLS_FAILED, Cause.EOF, Cause.TRANSPORT_ERROR)
        assert server.seen == []
        replies, closed = harness.exchange(
            server.port, [REGISTER], tls=client_domain(certificate=certs().client)
        )
        assert replies == [SipMessageReceived(REGISTER, False)] and closed.clean


def test_sni_picks_the_server_domain(harness: Harness) -> None:
    other = TLSDomain(
        name="other", side="server", certificate=certs().other_server, names=frozenset({"other.example.com"})
    )
    with harness.serve(tls=[server_domain(), other]) as server:
        for name, absent in (("other.example.com", "localhost"), ("localhost", "other.example.com")):
            with Raw(server.port, server_hostname=name) as raw:
                cert = raw.sock.getpeercert()
                assert cert is not None
                names = cert["subjectAltName"]
                assert ("DNS", name) in names and ("DNS", absent) not in names
                raw.upgrade()
