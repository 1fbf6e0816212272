"""Blocking-socket adapter: `connect()` and `serve()`, one I/O thread per connection, TLS over memory BIOs."""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import selectors
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType

from sansio_wss import (
    ClientConnection,
    Config,
    ConnectFailed,
    ConnectionClosed,
    ConnectionClosedError,
    HandshakeRejected,
    InvalidSipMessage,
    Opened,
    ServerConnection,
    SipMessageReceived,
    TLSDomain,
    TransportAction,
)

from ._driver import Driver
from ._tls import TLSContexts, client_target

__all__ = ["Connection", "Handler", "Message", "Server", "connect", "serve"]

Message = SipMessageReceived | InvalidSipMessage
"""What `recv()` returns: a SIP message, or a message whose start line is not SIP."""

Handler = Callable[["Connection"], object]
"""A server's per-connection function; it runs in its own thread."""

logger = logging.getLogger(__name__)
"""Connection ends (DEBUG when clean, INFO otherwise, with peer address, cause and detail)
and handler exceptions."""

_READ = 256 * 1024  # one recv takes everything available: one chunk for max_msg_chunks
_MAX_QUEUE = 64  # received messages held for the application before we stop reading
_HIGH_WATER = 64 * 1024  # bytes queued for the socket before send() waits
_READABLE = selectors.EVENT_READ
_WRITABLE = selectors.EVENT_WRITE
# poll() holds no file descriptor of its own (epoll would: one more per connection).
_Selector: type[selectors.BaseSelector] = getattr(selectors, "PollSelector", selectors.SelectSelector)


class _Waker:
    """Wakes a thread blocked in select(): an eventfd on Linux, a socket pair elsewhere."""

    __slots__ = ("_fd", "_pair")

    def __init__(self) -> None:
        self._pair: tuple[socket.socket, socket.socket] | None = None
        if sys.platform == "linux":
            self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:
            self._pair = socket.socketpair()
            for sock in self._pair:
                sock.setblocking(False)
            self._fd = self._pair[0].fileno()

    def fileno(self) -> int:
        return self._fd

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            if self._pair is None:
                os.eventfd_write(self._fd, 1)
            else:
                self._pair[1].send(b"\0")

    def drain(self) -> None:
        with contextlib.suppress(OSError):
            if self._pair is None:
                os.eventfd_read(self._fd)
            else:
                self._pair[0].recv(4096)

    def close(self) -> None:
        if self._pair is None:
            os.close(self._fd)
        else:
            for sock in self._pair:
                sock.close()


def _prepare(sock: socket.socket) -> tuple[tuple[str, int], tuple[str, int]]:
    """Non-blocking, no Nagle; returns (local, remote) addresses."""
    sock.setblocking(False)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    local = sock.getsockname()
    remote = sock.getpeername()
    return (local[0], local[1]), (remote[0], remote[1])


class Connection:
    """One SIP-over-WSS connection, either role, for blocking code.

    `recv()` (or iteration) gives received messages in order; `send()` sends one,
    from any thread; `close()` runs the closing handshake. Once the connection has
    ended, `closed` holds the core's `ConnectionClosed` event, and `recv()`/`send()`
    raise `ConnectionClosedError`.

    Made by `connect()` and `serve()`, not directly. Each connection has one I/O
    thread that reads the socket, runs the timer and writes what could not be
    written at once; every call into the driver holds the connection's lock.
    """

    __slots__ = (
        "_armed_at",
        "_armed_events",
        "_blocked_since",
        "_broken",
        "_cond",
        "_driver",
        "_ended",
        "_half_closed",
        "_local",
        "_lock",
        "_messages",
        "_on_end",
        "_on_open",
        "_out",
        "_queue_paused",
        "_reader",
        "_reader_ident",
        "_rejected",
        "_remote",
        "_sock",
        "_sock_closed",
        "_waker",
        "opened",
    )

    def __init__(
        self,
        sock: socket.socket,
        driver: Driver,
        *,
        on_open: Callable[[Connection], None] | None = None,
        on_end: Callable[[Connection], None] | None = None,
    ) -> None:
        """Internal: wrap a connected socket and its driver (see `connect()` and `serve()`)."""
        self._local, self._remote = _prepare(sock)
        self._sock = sock
        self._driver = driver
        self._on_open = on_open
        self._on_end = on_end
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._messages: collections.deque[Message] = collections.deque()
        self._out = bytearray()  # ciphertext the socket did not take yet
        self._blocked_since: float | None = None
        self._broken = False  # a write failed: drop whatever comes after
        self._half_closed = False
        self._queue_paused = False
        self._sock_closed = False
        self._ended = threading.Event()
        self._waker = _Waker()
        self._armed_at: float | None = None  # what the I/O thread waits for right now
        self._armed_events = 0
        self._reader: threading.Thread | None = None
        self._reader_ident: int | None = None
        self._rejected: HandshakeRejected | None = None
        self.opened: Opened | None = None
        """The handshake's `Opened` event: resource, peer headers, raw request and reply."""

    # ------------------------------------------------------------------ public

    @property
    def closed(self) -> ConnectionClosed | None:
        """The terminal event, once the connection has ended."""
        return self._driver.connection.closed_event

    @property
    def remote_address(self) -> tuple[str, int]:
        """The peer's (IP, port)."""
        return self._remote

    @property
    def local_address(self) -> tuple[str, int]:
        """Our (IP, port): the listener for an accepted connection."""
        return self._local

    def recv(self, timeout: float | None = None) -> Message:
        """The next received message, waiting at most `timeout` seconds (None: no limit).

        Raises ConnectionClosedError once no message will come, TimeoutError when
        none came in time.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._messages:
                closed = self._driver.connection.closed_event
                if closed is not None:
                    raise ConnectionClosedError(closed.code, closed.reason)
                if deadline is None:
                    self._cond.wait()
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError("no message received in time")
                    self._cond.wait(remaining)
            message = self._messages.popleft()
            if self._queue_paused and len(self._messages) <= _MAX_QUEUE // 2:
                self._queue_paused = False
                self._maybe_wake()
            return message

    def __iter__(self) -> Iterator[Message]:
        """Received messages until the connection ends."""
        while True:
            try:
                yield self.recv()
            except ConnectionClosedError:
                return

    def send(self, message: bytes | str) -> None:
        """Send one SIP message, from any thread; waits while too much is queued for the socket
        (bounded by `send_timeout`). Raises ConnectionClosedError once closing."""
        with self._cond:
            now = time.monotonic()
            self._driver.send(message, now)
            self._flush(now)
            while len(self._out) > _HIGH_WATER and not self._sock_closed:
                self._cond.wait()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Run the closing handshake and wait until the socket is closed (bounded by
        `close_timeout`, and `send_timeout` while the peer does not read). Never raises
        once the connection is closing or closed, except for a code or reason that may
        not be sent (LocalProtocolError)."""
        self._begin_close(code, reason)
        self.wait_closed()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until the socket is closed; False if it is still open after `timeout` seconds."""
        if not self._ended.wait(timeout):
            return False
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join()
        return True

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------- used by connect/serve

    def _start(self, name: str) -> None:
        """Begin TLS, then hand the socket to the I/O thread."""
        self._command(self._driver.start)
        self._reader = threading.Thread(target=self._run, name=name, daemon=True)
        try:
            self._reader.start()
        except BaseException:  # no thread to be had: give the socket back
            self._reader = None
            self._finish()
            raise

    def _command(self, command: Callable[[float], None]) -> None:
        """Run one driver command under the lock, then write and re-arm."""
        with self._cond:
            now = time.monotonic()
            command(now)
            self._flush(now)

    def _begin_close(self, code: int, reason: str) -> None:
        """Start the closing handshake without waiting."""
        self._command(lambda now: self._driver.close(now, code, reason))

    def _abort(self, detail: str) -> None:
        """Fail the connection at once and wait for its socket to close."""
        self._command(lambda now: self._driver.failed(now, detail))
        self.wait_closed()

    # ------------------------------------------------------------ under the lock

    def _flush(self, now: float) -> None:
        """Write, deliver, half-close when asked, and wake the I/O thread if its wait changed."""
        driver = self._driver
        data = driver.data_to_send()
        if data and not self._broken and not self._sock_closed:
            self._out += data
            self._write(now)
        self._dispatch()
        if (
            driver.transport_action is TransportAction.HALF_CLOSE
            and not self._half_closed
            and not self._out
            and not self._sock_closed
        ):
            self._half_closed = True
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_WR)  # after the close_notify; we keep reading
        if threading.get_ident() != self._reader_ident:
            self._maybe_wake()

    def _write(self, now: float) -> None:
        out = self._out
        before = len(out)
        try:
            while out:
                del out[: self._sock.send(out)]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            self._broken = True
            out.clear()
            self._driver.failed(now, f"write failed: {type(exc).__name__}: {exc}")
        # The send timeout runs from the last write that made no progress at all.
        if out and (self._blocked_since is None or len(out) < before):
            self._blocked_since = now
            self._driver.send_blocked(now)
        elif not out and self._blocked_since is not None:
            self._blocked_since = None
            self._driver.send_blocked(None)

    def _read(self, now: float) -> None:
        try:
            data = self._sock.recv(_READ)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._driver.failed(now, f"read failed: {type(exc).__name__}: {exc}")
            return
        if data:
            self._driver.receive(data, now)
        else:
            self._driver.receive_eof(now)

    def _dispatch(self) -> None:
        events = self._driver.events()
        if not events:
            return
        for event in events:
            if isinstance(event, (SipMessageReceived, InvalidSipMessage)):
                self._messages.append(event)
                if len(self._messages) >= _MAX_QUEUE:
                    self._queue_paused = True
            elif isinstance(event, Opened):
                self.opened = event
                if self._on_open is not None:
                    self._on_open(self)
            elif isinstance(event, HandshakeRejected):
                self._rejected = event
        self._cond.notify_all()

    def _plan(self, now: float) -> tuple[float | None, int] | None:
        """What the I/O thread waits for: (deadline, socket events); None once it is done."""
        driver = self._driver
        if driver.transport_action is TransportAction.CLOSE:
            # Write then close; the driver bounds a blocked last write by send_timeout.
            if not self._out or driver.must_abort:
                return None
            return driver.get_timer(), _WRITABLE
        if self._out:  # the peer is not reading: neither do we
            return driver.get_timer(), _WRITABLE
        return driver.get_timer(), 0 if self._queue_paused else _READABLE

    def _maybe_wake(self) -> None:
        """Another thread changed what the I/O thread must wait for: wake it if it matters."""
        if self._sock_closed:
            return
        plan = self._plan(time.monotonic())
        if plan is None:
            self._waker.wake()
            return
        deadline, events = plan
        armed = self._armed_at
        if events != self._armed_events or (deadline is not None and (armed is None or deadline < armed)):
            self._waker.wake()

    # ---------------------------------------------------------------- I/O thread

    def _run(self) -> None:
        self._reader_ident = threading.get_ident()
        sock = self._sock
        waker = self._waker
        driver = self._driver
        selector = _Selector()
        registered = 0
        try:
            selector.register(waker.fileno(), _READABLE)
            while True:
                with self._lock:
                    plan = self._plan(time.monotonic())
                    if plan is None:
                        break
                    deadline, events = plan
                    self._armed_at, self._armed_events = deadline, events
                if events != registered:
                    if not registered:
                        selector.register(sock, events)
                    elif not events:
                        selector.unregister(sock)
                    else:
                        selector.modify(sock, events)
                    registered = events
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                ready = 0
                for key, mask in selector.select(timeout):
                    if key.fileobj is sock:
                        ready = mask
                    else:
                        waker.drain()
                with self._cond:
                    now = time.monotonic()
                    if ready & _WRITABLE and self._out and not self._broken:
                        self._write(now)
                    if ready & _READABLE:
                        self._read(now)
                    if deadline is not None and now >= deadline:
                        driver.handle_timer(now)
                    self._flush(now)
                    self._cond.notify_all()
        except Exception:
            logger.exception("sansio-wss: I/O thread of %s failed", self._remote)
        finally:
            selector.close()
            self._finish()

    def _finish(self) -> None:
        """Close the socket and the waker, wake every waiter; the I/O thread's last act."""
        driver = self._driver
        with self._cond:
            if driver.transport_action is not TransportAction.CLOSE:  # only after a bug of ours
                driver.failed(time.monotonic(), "adapter error")
            driver.data_to_send()
            self._dispatch()
            closed = driver.connection.closed_event
            if closed is not None:
                logger.log(
                    logging.DEBUG if closed.clean else logging.INFO,
                    "sansio-wss: %s:%s closed: %s code=%s (%s)",
                    self._remote[0],
                    self._remote[1],
                    closed.cause.value,
                    closed.code,
                    closed.detail,
                )
            self._sock_closed = True
            self._out.clear()
            self._sock.close()
            self._waker.close()
            self._cond.notify_all()
        self._ended.set()
        if self._on_end is not None:
            self._on_end(self)


def connect(
    uri: str,
    *,
    config: Config | None = None,
    tls: TLSDomain | ssl.SSLContext | None = None,
    local_address: tuple[str, int] | None = None,
    timeout: float | None = None,
) -> Connection:
    """Open `wss://host[:port][/resource]` and complete TLS and the upgrade.

    `tls` is the client TLS domain (or a ready SSLContext); by default the system's
    CAs verify the server, with its host name, and SNI is sent. `timeout` bounds the
    TCP connection (None: `handshake_timeout`); TLS and the upgrade are bounded by
    `tls_handshake_timeout` and `handshake_timeout`. Raises ConnectFailed when TLS
    or the handshake fails, OSError when the TCP connection does.
    """
    config = config or Config()
    target, context = client_target(uri, config, tls)
    if timeout is None:
        timeout = config.handshake_timeout
    sock = socket.create_connection((target.host, target.port), timeout, source_address=local_address)
    try:
        now = time.monotonic()
        core = ClientConnection(target.host, now, port=target.port, resource=target.resource, config=config)
        conn = Connection(sock, Driver(context, core, now, server_hostname=target.host))
    except BaseException:
        sock.close()
        raise
    conn._start(f"sansio-wss client {target.host}:{target.port}")
    try:
        with conn._cond:
            while conn.opened is None and conn.closed is None:
                conn._cond.wait()
    except BaseException:
        conn._abort("connect() interrupted")
        raise
    if conn.opened is None:
        conn.wait_closed()
        closed = conn.closed
        assert closed is not None
        raise ConnectFailed(closed, conn._rejected)
    return conn


def _listen(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Listening sockets for every address `host` resolves to (IPv6 ones are IPv6-only)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            if os.name == "posix":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class Server:
    """Listeners serving SIP over WSS from an accept thread, one handler thread per connection.

    `close()` stops accepting and closes every connection; made by `serve()`.
    """

    def __init__(
        self,
        listeners: list[socket.socket],
        handler: Handler,
        contexts: TLSContexts,
        config: Config,
    ) -> None:
        """Internal: see `serve()`."""
        self._listeners = listeners
        self._addresses = [(s.getsockname()[0], s.getsockname()[1]) for s in listeners]
        self._handler = handler
        self._contexts = contexts
        self._config = config
        self._lock = threading.Lock()
        self._connections: set[Connection] = set()
        self._threads: set[threading.Thread] = set()  # I/O and handler threads
        self._closing = False
        self._stopped = threading.Event()
        self._waker = _Waker()
        self._acceptor = threading.Thread(target=self._accept_loop, name="sansio-wss accept", daemon=True)
        self._acceptor.start()

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The (IP, port) of every listening socket (useful with port 0)."""
        return list(self._addresses)

    def close(self, code: int = 1001, reason: str = "going away") -> None:
        """Stop listening, close every connection with `code`, and wait until their threads are gone.

        Handlers must return once their connection is closed (`recv()` raises then)."""
        with self._lock:
            first = not self._closing
            self._closing = True
        if first:
            self._waker.wake()
            self._acceptor.join()
            for sock in self._listeners:
                sock.close()
            self._waker.close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            conn._begin_close(code, reason)
        for conn in connections:
            conn.wait_closed()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join()
        self._stopped.set()

    def serve_forever(self) -> None:
        """Block until `close()` has run (from another thread, or a signal handler)."""
        self._stopped.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --------------------------------------------------------------- internals

    def _accept_loop(self) -> None:
        selector = _Selector()
        try:
            selector.register(self._waker.fileno(), _READABLE)
            for sock in self._listeners:
                selector.register(sock, _READABLE)
            while not self._closing:
                for key, _ in selector.select():
                    if isinstance(key.fileobj, socket.socket):
                        self._accept(key.fileobj)
                    else:
                        self._waker.drain()
        except Exception:
            logger.exception("sansio-wss: accept thread failed")
        finally:
            selector.close()

    def _accept(self, listener: socket.socket) -> None:
        try:
            sock, _ = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as exc:  # out of file descriptors, ...: do not spin
            logger.warning("sansio-wss: accept failed: %s", exc)
            self._stopped.wait(0.1)
            return
        try:
            local = sock.getsockname()
            context = self._contexts.server_context((local[0], local[1]))
            if context is None:  # no TLS domain serves this listener
                sock.close()
                return
            now = time.monotonic()
            driver = Driver(context, ServerConnection(now, self._config), now)
            conn = Connection(sock, driver, on_open=self._on_open, on_end=self._on_end)
        except OSError:  # the peer is already gone
            sock.close()
            return
        with self._lock:
            self._threads = {t for t in self._threads if t.is_alive()}
            self._connections.add(conn)
        try:
            conn._start(f"sansio-wss {conn.remote_address[0]}:{conn.remote_address[1]}")
        except RuntimeError as exc:  # out of threads: drop this one, keep accepting
            logger.warning("sansio-wss: cannot serve %s: %s", conn.remote_address, exc)
            return
        with self._lock:
            assert conn._reader is not None
            self._threads.add(conn._reader)

    def _on_open(self, conn: Connection) -> None:
        thread = threading.Thread(
            target=self._run_handler,
            args=(conn,),
            name=f"sansio-wss handler {conn.remote_address[0]}:{conn.remote_address[1]}",
            daemon=True,
        )
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _on_end(self, conn: Connection) -> None:
        with self._lock:
            self._connections.discard(conn)

    def _run_handler(self, conn: Connection) -> None:
        code = 1000
        try:
            self._handler(conn)
        except ConnectionClosedError:
            pass  # a send raced with the peer's close
        except Exception:
            logger.exception("sansio-wss: handler failed for %s", conn.remote_address)
            code = 1011
        finally:
            conn.close(code)


def serve(
    handler: Handler,
    listeners: Iterable[tuple[str, int]],
    *,
    tls: Iterable[TLSDomain] | TLSContexts,
    config: Config | None = None,
    backlog: int = 1024,
) -> Server:
    """Listen on every (host, port) in `listeners` and run `handler(connection)` in a thread
    for each connection once its handshake succeeds; the connection is closed when the
    handler returns (with 1011 if it raised). Server TLS domains are chosen by listener
    and SNI."""
    config = config or Config()
    contexts = tls if isinstance(tls, TLSContexts) else TLSContexts(tls)
    sockets: list[socket.socket] = []
    try:
        for host, port in listeners:
            sockets += _listen(host, port, backlog)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return Server(sockets, handler, contexts, config)
