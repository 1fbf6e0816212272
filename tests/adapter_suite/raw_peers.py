"""Peers that speak TLS, HTTP and WebSocket by hand, to do what no real client or server would."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from adapter_helpers import REGISTER, client_ssl_context, server_ssl_context
from wire import CLOSE, PING, PONG, TEXT, close_body, frame, reply_101, request

__all__ = ["Healthy", "Raw", "Sealed", "Stage", "client_hello", "healthy_client", "stub_server"]


class Raw:
    """A TLS client that speaks WebSocket by hand, with the stdlib's ssl and socket."""

    def __init__(
        self,
        port: int,
        *,
        host: str = "127.0.0.1",
        server_hostname: str = "localhost",
        context: ssl.SSLContext | None = None,
        rcvbuf: int | None = None,
    ) -> None:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(5)
        try:
            sock.connect((host, port))
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
        chunk = self.sock.recv(262144)
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
        """One whole data message (opcode, payload), or a control frame."""
        fin, opcode, payload = self.frame()
        while not fin:
            fin, _, more = self.frame()
            payload += more
        return opcode, payload

    def until_eof(self) -> bytes:
        """What the server sends until it ends its direction (close_notify or FIN, or a reset)."""
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


class Sealed:
    """A TLS client over memory BIOs on a plain socket: the ciphertext is ours to send whole,
    cut inside a record, or corrupt. `upgrade()` as `Raw`'s; then `seal(plaintext)` gives the
    records to write with `sock.sendall`."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), 5)
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = client_ssl_context().wrap_bio(self._incoming, self._outgoing, server_hostname="localhost")
        try:
            while True:
                try:
                    self.tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    self.sock.sendall(self._outgoing.read())
                    self._more()
            self.sock.sendall(self._outgoing.read())
        except BaseException:
            self.sock.close()
            raise

    def __enter__(self) -> Sealed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def _more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self._incoming.write(data)

    def seal(self, plaintext: bytes) -> bytes:
        """The TLS records that carry `plaintext` (not sent)."""
        self.tls.write(plaintext)
        return self._outgoing.read()

    def upgrade(self) -> None:
        self.sock.sendall(self.seal(request()))
        head = b""
        while b"\r\n\r\n" not in head:
            try:
                head += self.tls.read(65536)
            except ssl.SSLWantReadError:
                self._more()
        assert head.startswith(b"HTTP/1.1 101 "), head

    def reset(self) -> None:
        """End with a TCP reset instead of close_notify and FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.sock.close()


@dataclass
class Healthy:
    """What a healthy client saw: how long each round trip took, and what went wrong."""

    latencies: list[float] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def report(self) -> str:
        return f"{len(self.latencies)} round trips, slowest {max(self.latencies, default=0) * 1000:.0f} ms"

    def wait_round_trips(self, count: int, timeout: float) -> None:
        """Until `count` round trips are done, one failed, or `timeout` seconds passed."""
        deadline = time.monotonic() + timeout
        while len(self.latencies) < count and not self.errors and time.monotonic() < deadline:
            time.sleep(0.01)


@contextlib.contextmanager
def healthy_client(port: int) -> Iterator[Healthy]:
    """A `Raw` client doing REGISTER round trips (an echo server answers each), 10 ms apart,
    in a thread of its own until the block ends, answering Pings; then, when nothing went
    wrong, a clean closing handshake."""
    healthy = Healthy()
    stop = threading.Event()
    raw = Raw(port)
    raw.upgrade()

    def loop() -> None:
        try:
            while not stop.is_set():
                start = time.monotonic()
                raw.send(frame(TEXT, REGISTER))
                opcode, payload = raw.message()
                while opcode == PING:  # keepalive: answer and wait on
                    raw.send(frame(PONG, payload))
                    opcode, payload = raw.message()
                healthy.latencies.append(time.monotonic() - start)
                assert (opcode, payload) == (TEXT, REGISTER)
                stop.wait(0.01)
        except BaseException as exc:
            healthy.errors.append(exc)

    thread = threading.Thread(target=loop, name="healthy client")
    thread.start()
    try:
        yield healthy
    finally:
        stop.set()
        thread.join(10)
        with raw:
            if not healthy.errors and not thread.is_alive():
                raw.send(frame(CLOSE, close_body(1000)))
                assert raw.message() == (CLOSE, close_body(1000))
                assert raw.until_eof() == b""
    assert not thread.is_alive(), "the healthy client is stuck"


def client_hello(server_hostname: str = "localhost") -> bytes:
    """The first flight of a stdlib TLS client (its ClientHello), to send by hand over plain TCP."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_ssl_context().wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


Stage = Literal["tcp", "request", "upgrade"]


@contextlib.contextmanager
def stub_server(stage: Stage) -> Iterator[int]:
    """A server on 127.0.0.1 that goes as far as `stage` with each client, then holds the
    connection without a word until the block ends: accepting TCP (no TLS), reading the
    upgrade request (no reply), or answering it with a 101 (nothing after). Yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(sock)
            if stage == "tcp":
                continue
            sock.settimeout(5)
            with contextlib.suppress(OSError):
                tls = server_ssl_context().wrap_socket(sock, server_side=True)
                held.append(tls)
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                if stage == "upgrade":
                    fields = (line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
                    key = next(v.strip() for k, v in fields if k.lower() == b"sec-websocket-key")
                    tls.sendall(reply_101(key.decode()))

    thread = threading.Thread(target=serve, name=f"stub server ({stage})", daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for sock in held:
            sock.close()
        listener.close()
