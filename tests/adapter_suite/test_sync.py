"""The blocking adapter over real TLS on 127.0.0.1 (and ::1), against itself, websockets and raw peers."""

from __future__ import annotations

import base64
import contextlib
import gc
import hashlib
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from adapter_helpers import (
    OK,
    REGISTER,
    certs,
    client_domain,
    client_ssl_context,
    server_domain,
    server_ssl_context,
)
from websockets.sync.client import connect as ws_connect
from websockets.sync.server import ServerConnection as WsServerConnection
from websockets.sync.server import serve as ws_serve
from websockets.typing import Origin, Subprotocol

from sansio_wss import (
    Cause,
    Config,
    ConnectFailed,
    ConnectionClosedError,
    InvalidSipMessage,
    SipMessageReceived,
    TLSDomain,
)
from sansio_wss.adapters import _sync_io
from sansio_wss.adapters import sync as wss

ORIGIN = "https://app.example.com"
LOGGER = "sansio_wss.adapters.sync"


def open_fds() -> int:
    """Open file descriptors of this process (Linux); -1 where /proc is missing."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Every test ends with the threads and file descriptors it started with."""
    threads = threading.active_count()
    fds = open_fds()
    yield
    assert wait_for(lambda: threading.active_count() <= threads), threading.enumerate()
    assert wait_for(lambda: open_fds() <= fds), f"{open_fds()} fds open, {fds} before"


def echo_ok(conn: wss.Connection) -> None:
    for message in conn:
        if isinstance(message, SipMessageReceived):
            conn.send(OK)


def closed_causes(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and " closed: " in r.getMessage()]


def raw_tls(port: int, *, rcvbuf: int | None = None, server_hostname: str = "localhost") -> ssl.SSLSocket:
    """A TLS client socket, blocking, with a 5 s timeout."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(5)
    try:
        sock.connect(("127.0.0.1", port))
        return client_ssl_context().wrap_socket(sock, server_hostname=server_hostname)
    except BaseException:
        sock.close()
        raise


def upgrade(sock: ssl.SSLSocket) -> tuple[bytes, bytes]:
    """Send a SIP WebSocket upgrade request; the reply head, and the bytes that followed it."""
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: sip\r\nOrigin: {ORIGIN}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, head
        head += chunk
    head, _, rest = head.partition(b"\r\n\r\n")
    return head, rest


class Frames:
    """Reads the server's (unmasked) WebSocket frames from a raw TLS socket."""

    def __init__(self, sock: ssl.SSLSocket, buffered: bytes = b"") -> None:
        self.sock = sock
        self.buf = buffered

    def _need(self, n: int) -> None:
        while len(self.buf) < n:
            chunk = self.sock.recv(262144)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def next(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next frame; EOFError at the end of the stream."""
        self._need(2)
        n, offset = self.buf[1] & 0x7F, 2
        if n >= 126:
            offset = 4 if n == 126 else 10
            self._need(offset)
            n = int.from_bytes(self.buf[2:offset], "big")
        self._need(offset + n)
        opcode, payload = self.buf[0] & 0x0F, self.buf[offset : offset + n]
        self.buf = self.buf[offset + n :]
        return opcode, payload


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One masked client frame (payload under 126 bytes)."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


def io_threads() -> list[str]:
    """Names of the adapter's connection threads still alive (the accept thread aside)."""
    return [
        t.name
        for t in threading.enumerate()
        if t.name.startswith("sansio-wss") and "accept" not in t.name and "flusher" not in t.name
    ]


def read_until_eof(sock: ssl.SSLSocket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, ssl.SSLError):
        pass
    return data


# --------------------------------------------------------------------------- both ends ours


def test_our_client_our_server_ipv4_and_ipv6() -> None:
    listeners = [("127.0.0.1", 0), ("::1", 0)]
    with wss.serve(echo_ok, listeners, tls=[server_domain()]) as server:
        assert [a[0] for a in server.addresses] == ["127.0.0.1", "::1"]
        for host, port in server.addresses:
            name = f"[{host}]" if ":" in host else host
            local = (host, 0)
            with wss.connect(f"wss://{name}:{port}/ws", tls=client_domain(), local_address=local) as conn:
                assert conn.opened is not None and conn.opened.subprotocol == "sip"
                assert conn.opened.resource == "/ws"
                assert conn.remote_address == (host, port) and conn.local_address[0] == host
                for _ in range(5):
                    conn.send(REGISTER)
                    assert conn.recv(timeout=5) == SipMessageReceived(OK, False)
                assert not conn.wait_closed(0.01)
            assert conn.closed is not None and conn.closed.clean
            assert conn.closed.cause is Cause.LOCAL_CLOSED
            with pytest.raises(ConnectionClosedError):
                conn.recv()
            with pytest.raises(ConnectionClosedError):
                conn.send(REGISTER)
            conn.close()  # again: nothing to do


def test_sends_from_many_threads_and_a_full_receive_queue() -> None:
    """200 sends from 4 threads on one connection; the server answers each while the
    client reads nothing for a while (the queue fills, reading pauses, then resumes)."""
    with wss.serve(echo_ok, [("127.0.0.1", 0)], tls=[server_domain()]) as server:
        port = server.addresses[0][1]
        with wss.connect(f"wss://localhost:{port}/", tls=client_domain()) as conn:

            def sender() -> None:
                for _ in range(50):
                    conn.send(REGISTER)

            senders = [threading.Thread(target=sender) for _ in range(4)]
            for thread in senders:
                thread.start()
            for thread in senders:
                thread.join()
            time.sleep(0.2)
            answers = [conn.recv(timeout=5) for _ in range(200)]
            assert answers == [SipMessageReceived(OK, False)] * 200
            with pytest.raises(TimeoutError):
                conn.recv(timeout=0.05)


def test_keepalive_pings_keep_an_idle_connection_open() -> None:
    """The timer wakes the blocked I/O threads: both ends ping and answer pongs."""
    config = Config(ping_interval=0.1, pong_timeout=0.5)
    with wss.serve(echo_ok, [("127.0.0.1", 0)], tls=[server_domain()], config=config) as server:
        port = server.addresses[0][1]
        with wss.connect(f"wss://localhost:{port}/", tls=client_ssl_context(), config=config) as conn:
            with pytest.raises(TimeoutError):
                conn.recv(timeout=0.8)
            still_open = conn.closed is None
            assert still_open
            conn.send(REGISTER)
            assert conn.recv(timeout=5) == SipMessageReceived(OK, False)
        assert conn.closed is not None and conn.closed.clean


def test_server_closes_cleanly_and_client_sees_it() -> None:
    def close_at_once(conn: wss.Connection) -> None:
        conn.close(4000, "bye")
        assert conn.closed is not None and conn.closed.clean and conn.closed.cause is Cause.LOCAL_CLOSED

    with wss.serve(close_at_once, [("127.0.0.1", 0)], tls=[server_domain()]) as server:
        port = server.addresses[0][1]
        conn = wss.connect(f"wss://localhost:{port}/", tls=client_domain())
        with pytest.raises(ConnectionClosedError) as info:
            conn.recv(timeout=5)
        assert info.value.code == 4000 and info.value.reason == "bye"
        assert conn.wait_closed(5)
        assert conn.closed is not None and conn.closed.clean and conn.closed.cause is Cause.PEER_CLOSED


def test_client_close_reaches_the_handler() -> None:
    seen: list[object] = []

    def handler(conn: wss.Connection) -> None:
        for message in conn:
            seen.append(message)
        seen.append(conn.closed)

    with wss.serve(handler, [("127.0.0.1", 0)], tls=[server_domain()]) as server:
        port = server.addresses[0][1]
        conn = wss.connect(f"wss://localhost:{port}/", tls=client_domain())
        conn.send(b"\xffnot sip")
        conn.close(1001, "leaving")
        assert wait_for(lambda: len(seen) == 2)
    assert isinstance(seen[0], InvalidSipMessage) and seen[0].binary
    closed = seen[1]
    assert closed is not None and getattr(closed, "cause", None) is Cause.PEER_CLOSED
    assert getattr(closed, "code", None) == 1001


def test_server_close_closes_open_connections() -> None:
    server = wss.serve(echo_ok, [("127.0.0.1", 0)], tls=[server_domain()])
    port = server.addresses[0][1]
    conns = [wss.connect(f"wss://localhost:{port}/", tls=client_domain()) for _ in range(3)]
    stopper = threading.Thread(target=server.serve_forever)
    stopper.start()
    server.close()
    server.close()  # again: nothing to do
    stopper.join(5)
    assert not stopper.is_alive()
    for conn in conns:
        with pytest.raises(ConnectionClosedError) as info:
            conn.recv(timeout=5)
        assert info.value.code == 1001
        assert conn.wait_closed(5)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), 1).close()


def test_handler_exception_closes_with_1011(caplog: pytest.LogCaptureFixture) -> None:
    def broken(conn: wss.Connection) -> None:
        raise RuntimeError("boom")

    with wss.serve(broken, [("127.0.0.1", 0)], tls=[server_domain()]) as server:
        port = server.addresses[0][1]
        with wss.connect(f"wss://localhost:{port}/", tls=client_domain()) as conn:
            with pytest.raises(ConnectionClosedError) as info:
                conn.recv(timeout=5)
            assert info.value.code == 1011
    assert any("handler failed" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- websockets


def test_websockets_client_against_our_server() -> None:
    seen: list[object] = []

    def handler(conn: wss.Connection) -> None:
        for message in conn:
            seen.append(message)
            conn.send(OK)

    with wss.serve(handler, [("127.0.0.1", 0)], tls=[server_domain()]) as server:
        port = server.addresses[0][1]
        with ws_connect(
            f"wss://localhost:{port}/",
            ssl=client_ssl_context(),
            subprotocols=[Subprotocol("sip")],
            origin=Origin(ORIGIN),
        ) as ws:
            assert ws.subprotocol == "sip"
            ws.send(REGISTER.decode())
            assert ws.recv(timeout=5) == OK.decode()
            ws.send(b"\xffnot sip")
            assert ws.recv(timeout=5) == OK.decode()
    assert seen[0] == SipMessageReceived(REGISTER, False)
    assert isinstance(seen[1], InvalidSipMessage) and seen[1].binary


def test_our_client_against_websockets_server() -> None:
    def handler(ws: WsServerConnection) -> None:
        for message in ws:
            ws.send(OK.decode() if isinstance(message, str) else OK)

    with ws_serve(
        handler,
        "127.0.0.1",
        0,
        ssl=server_ssl_context(),
        subprotocols=[Subprotocol("sip")],
    ) as ws_server:
        runner = threading.Thread(target=ws_server.serve_forever)
        runner.start()
        try:
            port = ws_server.socket.getsockname()[1]
            with wss.connect(f"wss://localhost:{port}/sip", tls=client_domain()) as conn:
                conn.send(REGISTER)
                assert conn.recv(timeout=5) == SipMessageReceived(OK, False)
            assert conn.closed is not None and conn.closed.clean
        finally:
            ws_server.shutdown()
            runner.join()
            gc.collect()  # websockets' serve_forever() leaves its selector (an epoll fd) in a cycle


# --------------------------------------------------------------------------- failures


def test_rejection_and_tls_failure_raise_connect_failed() -> None:
    config = Config(resources=frozenset({"/sip"}))
    with wss.serve(echo_ok, [("127.0.0.1", 0)], tls=[server_domain()], config=config) as server:
        port = server.addresses[0][1]
        with pytest.raises(ConnectFailed) as info:
            wss.connect(f"wss://localhost:{port}/other", tls=client_domain())
        assert info.value.closed.cause is Cause.HANDSHAKE_REJECTED and info.value.closed.status == 404
        assert info.value.rejected is not None and info.value.rejected.status == 404
        with pytest.raises(ConnectFailed) as info:
            wss.connect(f"wss://localhost:{port}/sip")  # the system's CAs do not know ours
        assert info.value.closed.cause is Cause.TLS_FAILED
        wrong_ca = TLSDomain(name="c", side="client", ca_list=certs().other_ca)
        with pytest.raises(ConnectFailed) as info:
            wss.connect(f"wss://localhost:{port}/sip", tls=wrong_ca)
        assert info.value.closed.cause is Cause.TLS_FAILED
    with pytest.raises(OSError):
        wss.connect(f"wss://127.0.0.1:{port}/sip", tls=client_domain())  # nobody listens now
    with pytest.raises(ValueError):
        wss.connect(f"ws://127.0.0.1:{port}/sip")


def test_sni_picks_the_server_domain() -> None:
    other = TLSDomain(
        name="other", side="server", certificate=certs().other_server, names=frozenset({"other.example.com"})
    )
    with wss.serve(echo_ok, [("127.0.0.1", 0)], tls=[server_domain(), other]) as server:
        port = server.addresses[0][1]
        for name in ("other.example.com", "localhost"):
            with raw_tls(port, server_hostname=name) as sock:
                assert sock.getpeercert() is not None  # verified for that name
                assert b" 101 " in upgrade(sock)[0]


def test_tls_handshake_timeout(caplog: pytest.LogCaptureFixture) -> None:
    """A TCP client that never speaks TLS is dropped after tls_handshake_timeout."""
    caplog.set_level(logging.INFO, LOGGER)
    config = Config(tls_handshake_timeout=0.5)
    with wss.serve(echo_ok, [("127.0.0.1", 0)], tls=[server_domain()], config=config) as server:
        with socket.create_connection(server.addresses[0], 5) as sock:
            start = time.monotonic()
            assert sock.recv(100) == b""
            assert 0.4 < time.monotonic() - start < 1.5
        assert wait_for(lambda: any("tls_handshake_timeout" in m for m in closed_causes(caplog)))


def test_websocket_handshake_timeout(caplog: pytest.LogCaptureFixture) -> None:
    """TLS done, no upgrade request: dropped after handshake_timeout."""
    caplog.set_level(logging.INFO, LOGGER)
    config = Config(handshake_timeout=0.5)
    with wss.serve(echo_ok, [("127.0.0.1", 0)], tls=[server_domain()], config=config) as server:
        port = server.addresses[0][1]
        with raw_tls(port) as sock:
            start = time.monotonic()
            assert read_until_eof(sock) == b""
            assert 0.4 < time.monotonic() - start < 1.5
        assert wait_for(lambda: any("handshake_timeout" in m for m in closed_causes(caplog)))


def test_send_timeout_when_the_peer_stops_reading() -> None:
    """The server keeps sending to a TLS client that never reads: SEND_TIMEOUT, the thread ends."""
    config = Config(send_timeout=0.5, ping_interval=None)
    result: list[object] = []
    done = threading.Event()
    big = b"MESSAGE sip:a@b SIP/2.0\r\n\r\n" + b"x" * 60_000

    def flood(conn: wss.Connection) -> None:
        start = time.monotonic()
        try:
            while True:
                conn.send(big)  # raises ConnectionClosedError once failed; serve() expects that
        finally:
            result.extend([conn.closed, time.monotonic() - start])
            done.set()

    with wss.serve(flood, [("127.0.0.1", 0)], tls=[server_domain()], config=config) as server:
        port = server.addresses[0][1]
        with raw_tls(port, rcvbuf=4096) as sock:
            assert b" 101 " in upgrade(sock)[0]
            assert done.wait(5)
            closed, elapsed = result
            assert getattr(closed, "cause", None) is Cause.SEND_TIMEOUT
            assert isinstance(elapsed, float) and elapsed < config.send_timeout + 1.5
            assert wait_for(lambda: not io_threads()), io_threads()


def test_replies_to_queued_requests_leave_in_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Five requests in one read, five replies: one socket write (one TLS record), not five."""
    writes: list[int] = []
    real_write = _sync_io.Connection._write

    def counting_write(self: _sync_io.Connection, now: float) -> None:
        writes.append(len(self._out))
        real_write(self, now)

    with wss.serve(echo_ok, [("127.0.0.1", 0)], tls=[server_domain()]) as server:
        sock = raw_tls(server.addresses[0][1])
        with sock:
            head, rest = upgrade(sock)
            assert b" 101 " in head
            monkeypatch.setattr(_sync_io.Connection, "_write", counting_write)
            sock.sendall(b"".join(client_frame(0x1, REGISTER[:120]) for _ in range(5)))
            frames = Frames(sock, rest)
            assert [frames.next() for _ in range(5)] == [(0x1, OK)] * 5
            assert len(writes) == 1, writes


def test_a_held_reply_leaves_while_the_handler_blocks() -> None:
    """A reply held for the replies to queued requests goes out within milliseconds, even if
    the handler then blocks instead of answering them."""
    release = threading.Event()

    def handler(conn: wss.Connection) -> None:
        conn.recv()
        conn.send(OK)  # held: a second request is queued
        release.wait(5)
        for _ in conn:
            conn.send(OK)

    with wss.serve(handler, [("127.0.0.1", 0)], tls=[server_domain()]) as server:
        sock = raw_tls(server.addresses[0][1])
        with sock:
            head, rest = upgrade(sock)
            assert b" 101 " in head
            started = time.monotonic()
            sock.sendall(client_frame(0x1, REGISTER[:120]) * 2)
            frames = Frames(sock, rest)
            assert frames.next() == (0x1, OK)
            assert time.monotonic() - started < 0.25  # the handler blocks for 5 s
            release.set()
            assert frames.next() == (0x1, OK)


def test_peer_reset_ends_the_connection() -> None:
    seen: list[object] = []

    def handler(conn: wss.Connection) -> None:
        for message in conn:
            seen.append(message)
        seen.append(conn.closed)

    with wss.serve(handler, [("127.0.0.1", 0)], tls=[server_domain()]) as server:
        port = server.addresses[0][1]
        sock = raw_tls(port)
        assert b" 101 " in upgrade(sock)[0]
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()  # RST
        assert wait_for(lambda: len(seen) == 1)
    closed = seen[0]
    assert getattr(closed, "cause", None) in (Cause.TRANSPORT_ERROR, Cause.EOF)


def test_slow_reader_gets_everything_then_a_clean_close() -> None:
    """The socket blocks while the peer does not read (send() waits, the I/O thread writes
    when it can); once the peer reads, every message and the Close arrive."""
    config = Config(send_timeout=3.0, ping_interval=None)
    big = b"MESSAGE sip:a@b SIP/2.0\r\n\r\n" + b"x" * 60_000
    count = 100  # 6 MB: more than the kernel buffers hold

    def burst(conn: wss.Connection) -> None:
        for _ in range(count):
            conn.send(big)

    with wss.serve(burst, [("127.0.0.1", 0)], tls=[server_domain()], config=config) as server:
        port = server.addresses[0][1]
        with raw_tls(port, rcvbuf=4096) as sock:
            head, rest = upgrade(sock)
            assert b" 101 " in head
            time.sleep(0.3)
            frames = Frames(sock, rest)
            for _ in range(count):
                assert frames.next() == (1, big)
            assert frames.next() == (8, (1000).to_bytes(2, "big"))
            sock.sendall(client_frame(8, (1000).to_bytes(2, "big")))
            assert read_until_eof(sock) == frames.buf == b""
        assert wait_for(lambda: not io_threads()), io_threads()


def test_pong_timeout_then_half_close(caplog: pytest.LogCaptureFixture) -> None:
    """No Pong: Close 1011, close_notify and FIN; the server still reads, and our late Close
    ends it long before close_timeout."""
    caplog.set_level(logging.INFO, LOGGER)
    config = Config(ping_interval=0.2, pong_timeout=0.3, close_timeout=5.0)
    with wss.serve(echo_ok, [("127.0.0.1", 0)], tls=[server_domain()], config=config) as server:
        port = server.addresses[0][1]
        with raw_tls(port) as sock:
            head, rest = upgrade(sock)
            assert b" 101 " in head
            start = time.monotonic()
            frames = Frames(sock, rest)
            assert frames.next()[0] == 9  # Ping, after ping_interval
            assert 0.1 < time.monotonic() - start < 1.0
            opcode, payload = frames.next()  # Close 1011, after pong_timeout
            assert (opcode, payload[:2]) == (8, (1011).to_bytes(2, "big"))
            assert 0.4 < time.monotonic() - start < 1.5
            with pytest.raises(EOFError):
                frames.next()  # close_notify: the server half-closed
            assert io_threads()  # ... and still reads
            sock.sendall(client_frame(8, (1011).to_bytes(2, "big")))
            assert wait_for(lambda: not io_threads(), 1.0), io_threads()
    assert any("pong_timeout" in m for m in closed_causes(caplog))


def test_listener_without_tls_domain_drops_connections() -> None:
    elsewhere = server_domain(addresses=frozenset({("127.0.0.2", 5061)}))
    with wss.serve(echo_ok, [("127.0.0.1", 0)], tls=[elsewhere]) as server:
        sock = socket.create_connection(server.addresses[0], 5)
        with sock, contextlib.suppress(ConnectionResetError):
            assert sock.recv(100) == b""


def test_serve_fails_when_a_port_is_taken() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        taken = busy.getsockname()
        with pytest.raises(OSError):
            wss.serve(echo_ok, [("127.0.0.1", 0), taken], tls=[server_domain()])


def test_close_is_bounded_by_close_timeout() -> None:
    """A server that answers the upgrade but never our Close: close() returns after
    close_timeout, although the I/O thread had no timer armed when close() was called."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))

    def mute_server() -> None:
        raw, _ = listener.accept()
        with server_ssl_context().wrap_socket(raw, server_side=True) as sock:
            request = b""
            while b"\r\n\r\n" not in request:
                request += sock.recv(4096)
            key = next(
                line.split(b":", 1)[1].strip()
                for line in request.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            sock.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
            )
            stop.wait(5)

    server = threading.Thread(target=mute_server)
    server.start()
    try:
        config = Config(close_timeout=0.5, ping_interval=None)
        port = listener.getsockname()[1]
        conn = wss.connect(f"wss://localhost:{port}/", tls=client_domain(), config=config)
        time.sleep(0.05)  # the I/O thread now waits for input, with no deadline
        start = time.monotonic()
        conn.close()
        assert 0.4 < time.monotonic() - start < 1.5
        assert conn.closed is not None and conn.closed.cause is Cause.CLOSE_TIMEOUT and not conn.closed.clean
    finally:
        stop.set()
        server.join()
        listener.close()
