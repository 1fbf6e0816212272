"""The blocking adapter's connection: an I/O thread with one selector and one deadline, over the driver."""

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
from collections.abc import Callable, Iterator
from types import TracebackType

from sansio_wss import (
    ClientConnection,
    Config,
    ConnectFailed,
    ConnectionClosedError,
    HandshakeRejected,
    InvalidSipMessage,
    Opened,
    SipMessageReceived,
    TransportAction,
)

from ._driver import ConnectionView, Driver, Message

__all__ = ["Connection", "Message", "Selector", "Waker", "logger", "start_client"]

"""What `recv()` returns: a SIP message, or a message whose start line is not SIP."""

logger = logging.getLogger("sansio_wss.adapters.sync")
"""Connection ends (DEBUG when clean, INFO otherwise, with peer address, cause and detail)
and handler exceptions."""


_READ = 64 * 1024  # one recv; below malloc's mmap threshold, so no mmap/munmap per read
_READ_MAX = 256 * 1024  # recvs until the socket is empty, up to this: one chunk for max_msg_chunks
_MAX_QUEUE = 64  # received messages held for the application before we stop reading
_HIGH_WATER = 64 * 1024  # bytes queued for the socket before send() waits
_HOLD = 16 * 1024  # reply bytes held back to go out together (one TLS record), at most
_HOLD_TIME = 0.001  # seconds a held reply may wait for the next one, about (the flusher's tick)
_READABLE = selectors.EVENT_READ
_WRITABLE = selectors.EVENT_WRITE
# poll() holds no file descriptor of its own (epoll would: one more per connection).
Selector: type[selectors.BaseSelector] = getattr(selectors, "PollSelector", selectors.SelectSelector)


class Waker:
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


class _Flusher:
    """Sends replies held back by `Connection.send` that no later call of their connection sent:
    one thread for every connection, which runs only while replies are held, ticking every
    `_HOLD_TIME`."""

    __slots__ = ("_lock", "_thread", "_watched")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: list[Connection] = []
        self._thread: threading.Thread | None = None

    def watch(self, conn: Connection) -> bool:
        """Send `conn`'s held replies if it does not; False if that cannot be promised."""
        with self._lock:
            self._watched.append(conn)
            if self._thread is not None:
                return True
            thread = threading.Thread(target=self._run, name="sansio-wss flusher", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # no thread to be had
                self._watched.pop()
                return False
            self._thread = thread
            return True

    def _run(self) -> None:
        while True:
            time.sleep(_HOLD_TIME)
            with self._lock:
                watched, self._watched = self._watched, []
                if not watched:  # idle: end; the next held reply starts a new thread
                    self._thread = None
                    return
            now = time.monotonic()
            still = [conn for conn in watched if conn._flush_held(now)]
            if still:
                with self._lock:
                    self._watched += still


_flusher = _Flusher()


def _prepare(sock: socket.socket) -> tuple[tuple[str, int], tuple[str, int]]:
    """Non-blocking, no Nagle; returns (local, remote) addresses."""
    sock.setblocking(False)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    local = sock.getsockname()
    remote = sock.getpeername()
    return (local[0], local[1]), (remote[0], remote[1])


class Connection(ConnectionView):
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
        "_deliver",
        "_driver",
        "_ended",
        "_half_closed",
        "_held",
        "_held_since",
        "_lock",
        "_messages",
        "_on_end",
        "_on_open",
        "_out",
        "_queue_paused",
        "_reader",
        "_reader_ident",
        "_rejected",
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
        deliver: Callable[[Connection, Message], bool] | None = None,
    ) -> None:
        """Internal: wrap a connected socket and its driver (see `connect()` and `serve()`).

        `on_open` runs when the handshake succeeds and `deliver` for each received message,
        both in the I/O thread under the connection's lock; `on_end` runs once the socket is
        closed. Without `deliver`, messages wait in the connection for `recv()`."""
        local, remote = _prepare(sock)
        driver.set_addresses(remote, local, time.monotonic())
        self._sock = sock
        self._driver = driver
        self._on_open = on_open
        self._on_end = on_end
        self._deliver = deliver
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._messages: collections.deque[Message] = collections.deque()
        self._out = bytearray()  # ciphertext the socket did not take yet
        self._blocked_since: float | None = None
        self._broken = False  # a write failed: drop whatever comes after
        self._half_closed = False
        self._held = 0  # bytes of replies held back (plaintext in the core), see send()
        self._held_since: float | None = None
        self._queue_paused = False
        self._sock_closed = False
        self._ended = threading.Event()
        self._waker = Waker()
        self._armed_at: float | None = None  # what the I/O thread waits for right now
        self._armed_events = 0
        self._reader: threading.Thread | None = None
        self._reader_ident: int | None = None
        self._rejected: HandshakeRejected | None = None
        self.opened: Opened | None = None
        """The handshake's `Opened` event: resource, peer headers, raw request and reply."""

    # ------------------------------------------------------------------ public

    def recv(self, timeout: float | None = None) -> Message:
        """The next received message, waiting at most `timeout` seconds (None: no limit).

        Raises ConnectionClosedError once no message will come, TimeoutError when
        none came in time.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if not self._messages and self._held_since is not None:  # about to wait: send them now
                self._flush(time.monotonic(), sent=True)
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

    def send(self, message: bytes | str, *, binary: bool | None = None) -> None:
        """Send one SIP message, from any thread; waits while too much is queued for the socket
        (bounded by `send_timeout`). Raises ConnectionClosedError once closing.

        While received messages wait for `recv()`, a reply is held back (about a millisecond
        at most) to go out with the replies to them: one TLS record and one write for many."""
        with self._cond:
            now = time.monotonic()
            self._driver.send(message, now, binary)
            # Replies to a batch of requests leave together, as the asyncio adapter's replies of
            # one loop iteration do: a write per reply costs a syscall, a TLS record and, with
            # many threads, a hand-over of the GIL each. The batch's last reply (nothing left to
            # recv), recv() about to wait, the I/O thread's next turn or the flusher send them.
            if self._messages and not self._out and self._held + len(message) < _HOLD:
                self._held += len(message)
                if self._held_since is None:
                    self._held_since = now
                    if not _flusher.watch(self):
                        self._flush(now)
                return
            self._flush(now, sent=True)
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

    def _wait_open(self) -> None:
        """Wait for the handshake's end; raise ConnectFailed if it failed."""
        try:
            with self._cond:
                while self.opened is None and self.closed is None:
                    self._cond.wait()
        except BaseException:
            self._abort("interrupted while opening")
            raise
        if self.opened is None:
            self.wait_closed()
            closed = self.closed
            assert closed is not None
            raise ConnectFailed(closed, self._rejected)

    def _flush_held(self, now: float) -> bool:
        """For the flusher: send held replies once they are `_HOLD_TIME` old; False when none
        are held any more."""
        with self._cond:
            since = self._held_since
            if since is None:
                return False
            if now - since >= _HOLD_TIME:
                self._flush(now, sent=True)
                return False
            return True

    def _resume(self) -> None:
        """The taker given as `deliver` has room again: read on."""
        with self._cond:
            if self._queue_paused:
                self._queue_paused = False
                self._maybe_wake()

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

    def _flush(self, now: float, sent: bool = False) -> None:
        """Write, deliver, half-close when asked, and wake the I/O thread if its wait changed
        (`sent`: only messages were sent, which move no deadline earlier)."""
        driver = self._driver
        self._held = 0
        self._held_since = None
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
            if (
                sent
                and not self._out
                and driver.transport_action is TransportAction.NONE
                and self._armed_events == (0 if self._queue_paused else _READABLE)
            ):
                return  # the I/O thread waits for what it should, and no later than it should
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
        chunks: list[bytes] = []
        size = 0
        eof = False
        try:
            while size < _READ_MAX:
                data = self._sock.recv(_READ)
                if not data:
                    eof = True
                    break
                chunks.append(data)
                size += len(data)
                if len(data) < _READ:  # the socket is empty
                    break
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            self._driver.failed(now, f"read failed: {type(exc).__name__}: {exc}")
            return
        if chunks:
            self._driver.receive(chunks[0] if len(chunks) == 1 else b"".join(chunks), now)
        if eof:
            self._driver.receive_eof(now)

    def _dispatch(self) -> None:
        events = self._driver.events()
        if not events:
            return
        for event in events:
            if isinstance(event, (SipMessageReceived, InvalidSipMessage)):
                if self._deliver is not None:
                    if not self._deliver(self, event):  # the taker is full: stop reading
                        self._queue_paused = True
                    continue
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
        selector = Selector()
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
            logger.exception("sansio-wss: I/O thread of %s failed", self.remote_address)
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
                    self.remote_address[0],
                    self.remote_address[1],
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


def start_client(
    address: tuple[str, int],
    host: str,
    resource: str,
    context: ssl.SSLContext,
    config: Config,
    *,
    timeout: float | None,
    local_address: tuple[str, int] | None = None,
    on_open: Callable[[Connection], None] | None = None,
    on_end: Callable[[Connection], None] | None = None,
    deliver: Callable[[Connection, Message], bool] | None = None,
) -> Connection:
    """Connect to `address` (within `timeout`), naming `host` in SNI, certificate checks and
    the Host field, and start TLS in the connection's I/O thread; `_wait_open()` then waits
    for the upgrade. Raises OSError when the TCP connection fails."""
    sock = socket.create_connection(address, timeout, source_address=local_address)
    try:
        now = time.monotonic()
        core = ClientConnection(host, now, port=address[1], resource=resource, config=config)
        driver = Driver(context, core, now, server_hostname=host)
        conn = Connection(sock, driver, on_open=on_open, on_end=on_end, deliver=deliver)
    except BaseException:
        sock.close()
        raise
    conn._start(f"sansio-wss client {host}:{address[1]}")
    return conn
