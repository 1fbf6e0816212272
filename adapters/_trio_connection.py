"""The trio adapter's `Connection`: one raw socket, the shared Driver, a reader task, one timer.

TLS runs in the shared `Driver` (memory BIOs), not in `trio.SSLStream`: the TLS handshake
timeout, the send timeout and close_notify are then implemented once for every adapter, and
this module only moves bytes, keeps the clock and performs the driver's transport actions.
"""

from __future__ import annotations

import collections
import logging
import math
import socket
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType

import trio

from sansio_wss import (
    ConnectFailed,
    ConnectionClosed,
    ConnectionClosedError,
    HandshakeRejected,
    InvalidSipMessage,
    Opened,
    SipMessageReceived,
    State,
    TransportAction,
)

from ._driver import AsyncMessages, ConnectionView, Driver, Message

__all__ = ["Connection", "Message", "raw_socket"]

"""What `recv()` returns: a SIP message, or a message whose start line is not SIP."""

_READ = 262144  # one read takes all that is available: one chunk for max_msg_chunks
_MAX_QUEUE = 64  # received messages held for the application before we stop reading
_FAIR_TURNS = 16  # calls of send()/recv() that did not wait, between two yields

_log = logging.getLogger("sansio_wss.adapters.trio")


class Connection(ConnectionView, AsyncMessages):
    """One SIP-over-WSS connection, either role, for trio code.

    `recv()` (or `async for`) gives received messages in order; `send()` sends one;
    `close()` runs the closing handshake. Once the connection has ended, `closed` holds
    the core's `ConnectionClosed` event, and `recv()`/`send()` raise `ConnectionClosedError`.

    Connections are made by `open_connection()`, `connect()` and `serve()`. One from
    `connect()` reads from its peer (and runs its timers) only once entered with
    `async with`; the context closes it on exit.
    """

    # Why raw sockets and not trio's SocketStream: a SocketStream read or write always
    # passes through trio's scheduler, even when the socket is ready, and that trip costs
    # more than the rest of a SIP message's handling. Here a write the kernel takes at
    # once does not yield, a read waits for readiness once, and the one timer is a
    # cancel scope re-armed only when the driver's deadline moves earlier (a deadline
    # that moved later fires once, finds nothing due, and is re-armed).
    #
    # Fairness: `send()` and `recv()` are always cancellation points, but schedule points
    # only when they wait, or once every _FAIR_TURNS calls when they do not, so that a
    # handler busy on one connection still lets the others run.

    __slots__ = (
        "_arrival",
        "_backlog",
        "_broken",
        "_done",
        "_drained",
        "_driver",
        "_half_closed",
        "_messages",
        "_nursery_manager",
        "_on_end",
        "_read_scope",
        "_reader_scope",
        "_reading",
        "_rejected",
        "_room",
        "_sock",
        "_sock_closed",
        "_started",
        "_turns",
        "_write_scope",
        "_writing",
        "opened",
    )

    def __init__(self, sock: socket.socket, driver: Driver) -> None:
        self._sock = sock
        self._driver = driver
        remote: tuple[str, int] = ("", 0)
        local: tuple[str, int] = ("", 0)
        try:
            remote = sock.getpeername()[:2]
            local = sock.getsockname()[:2]
        except OSError:  # already reset: the first read says so
            pass
        driver.set_addresses(remote, local, trio.current_time())
        self._messages: collections.deque[Message] = collections.deque()
        self._arrival = trio.lowlevel.ParkingLot()  # recv() waits here
        self._room = trio.lowlevel.ParkingLot()  # the reader waits here while the queue is full
        self._drained = trio.lowlevel.ParkingLot()  # writers wait here for a blocked write
        self._done = trio.Event()  # the transport is closed
        self._backlog: bytes | memoryview | None = None  # taken from the driver, not yet by the socket
        self._writing = False  # a task waits for the socket to take the backlog
        self._read_scope: trio.CancelScope | None = None
        self._write_scope: trio.CancelScope | None = None
        self._reader_scope: trio.CancelScope | None = None
        self._nursery_manager: AbstractAsyncContextManager[trio.Nursery] | None = None
        self._reading = False
        self._started = False
        self._sock_closed = False
        self._broken = False
        self._half_closed = False
        self._turns = 0
        self._rejected: HandshakeRejected | None = None
        self._on_end: Callable[[Connection], object] | None = None  # the endpoint's, if any
        self.opened: Opened | None = None
        """The handshake's `Opened` event: resource, peer headers, raw request and reply."""

    # ----------------------------------------------------------------- public

    async def recv(self) -> Message:
        """The next received message; raises ConnectionClosedError once none will come."""
        if not self._started:
            raise RuntimeError("enter the connection first: async with await connect(...) as conn")
        await trio.lowlevel.checkpoint_if_cancelled()
        if not self._messages:
            while not self._messages:
                closed = self.closed
                if closed is not None:
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    raise ConnectionClosedError(closed.code, closed.reason)
                await self._arrival.park()
        else:
            await self._fair_turn()
        message = self._messages.popleft()  # a message taken is never lost: no checkpoint follows
        if len(self._messages) == _MAX_QUEUE // 2 and self._room:
            self._room.unpark_all()
        return message

    async def send(self, message: bytes | str, *, binary: bool | None = None) -> None:
        """Send one SIP message. Raises ConnectionClosedError once closing.

        The message is written at once when the socket takes it; otherwise `send()` waits
        until it is written, so a peer that stops reading slows senders down, and a write
        blocked for `send_timeout` fails the connection. Cancelling a `send()` that waits
        takes effect once its bytes are written: half a frame would break the connection."""
        await trio.lowlevel.checkpoint_if_cancelled()
        self._driver.send(message, trio.current_time(), binary)
        if self._writing or not self._write_ready():
            await self._flush()
            await trio.lowlevel.checkpoint_if_cancelled()  # a cancellation met while waiting
        else:
            await self._fair_turn()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Run the closing handshake and wait until the transport is closed (bounded by
        `close_timeout`, plus `send_timeout` when the peer stops reading). Safe to call at
        any time, any number of times."""
        self._driver.close(trio.current_time(), code, reason)
        await self._flush()
        if not self._started and not self._reading and not self._sock_closed:
            await self._run()  # nobody reads: read the peer's Close and EOF here
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the transport is closed."""
        await self._done.wait()

    async def __aenter__(self) -> Connection:
        """Start reading in a task of our own; `__aexit__` closes and waits for it."""
        if self._started:
            raise RuntimeError("a connection can be entered once")
        self._started = True
        manager = trio.open_nursery()
        nursery = await manager.__aenter__()
        self._nursery_manager = manager
        await nursery.start(self._background)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close (1000; 1011 after an exception, 1001 when cancelled), then end the reader.

        The body's exception propagates as it was raised, never inside an ExceptionGroup:
        the reader task catches its own errors and the nursery never sees the body's.
        """
        code = 1000 if exc is None else 1011 if isinstance(exc, Exception) else 1001
        config = self._driver.connection.config
        try:
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + config.close_timeout + config.send_timeout
                await self.close(code)
        finally:
            self._abort("closed by the application")  # only if the bound above was reached
            manager, self._nursery_manager = self._nursery_manager, None
            if manager is not None:
                await manager.__aexit__(None, None, None)

    # ------------------------------------------------------------- reading

    async def _background(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        # The reader ends with the transport, not with the caller's cancellation: that
        # one reaches the application, whose context then closes the connection.
        with trio.CancelScope(shield=True) as scope:
            self._reader_scope = scope
            task_status.started()
            await self._run()
        self._abort("reader stopped")

    async def _open(self, if_cancelled: str) -> None:
        """Run TLS and the opening handshake; a cancellation aborts the connection."""
        try:
            self._driver.start(trio.current_time())
            await self._flush()
            await self._run(until_open=True)
        except BaseException:
            self._abort(if_cancelled)
            raise

    async def _run(self, *, until_open: bool = False) -> None:
        """Read, feed the driver and act, until the transport is closed (or, with
        `until_open`, until the handshake is over either way)."""
        self._reading = True
        try:
            while not self._sock_closed and not (until_open and self._handshake_over()):
                with trio.CancelScope(deadline=self._deadline()) as scope:
                    self._read_scope = scope
                    try:
                        await self._read(until_open)
                    finally:
                        self._read_scope = None
                if scope.cancelled_caught and not self._sock_closed:
                    self._driver.handle_timer(trio.current_time())  # due, or moved later: re-armed
                    await self._flush()
        except Exception as exc:  # a bug of ours: fail this connection, not the caller's nursery
            _log.exception("sansio_wss trio adapter: internal error")
            self._abort(f"internal error: {type(exc).__name__}: {exc}")
        finally:
            self._reading = False

    async def _read(self, until_open: bool) -> None:
        driver = self._driver
        sock = self._sock
        while not self._sock_closed and not (until_open and self._handshake_over()):
            if len(self._messages) >= _MAX_QUEUE and driver.connection.state is State.OPEN:
                await self._room.park()  # the application is behind: stop reading
                continue
            try:
                await trio.lowlevel.wait_readable(sock)
                data = sock.recv(_READ)
            except BlockingIOError:
                continue
            except trio.ClosedResourceError:  # closed by another task meanwhile
                return
            except OSError as exc:
                driver.failed(trio.current_time(), f"{type(exc).__name__}: {exc}")
            else:
                if data:
                    driver.receive(data, trio.current_time())
                else:
                    driver.receive_eof(trio.current_time())
            await self._flush()

    def _handshake_over(self) -> bool:
        return self.opened is not None or self.closed is not None

    # ------------------------------------------------------------- writing

    async def _flush(self) -> None:
        """Write what the driver has, in order (waiting while the socket is full), then
        apply its transport action."""
        self._dispatch()
        if self._writing or not self._write_ready():
            await self._wait_written()
        action = self._driver.transport_action
        if action is TransportAction.CLOSE:
            if not self._sock_closed:
                self._close_socket()
                self._ended()
        elif action is TransportAction.HALF_CLOSE and not self._half_closed:
            self._half_closed = True
            if not self._broken:
                try:
                    self._sock.shutdown(socket.SHUT_WR)  # TLS close_notify already written; keep reading
                except OSError:
                    self._broken = True
        self._dispatch()
        self._rearm()

    def _write_ready(self) -> bool:
        """Write, without waiting, what the driver has; False while the socket cannot take it all."""
        backlog = self._backlog
        while True:
            if backlog is None:
                data = self._driver.data_to_send()
                if not data or self._sock_closed or self._broken:
                    return True
                backlog = data
            try:
                sent = self._sock.send(backlog)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                self._broken = True
                self._backlog = None
                self._driver.failed(trio.current_time(), f"write failed: {type(exc).__name__}: {exc}")
                self._driver.data_to_send()  # never to be written
                return True
            if sent < len(backlog):
                self._backlog = memoryview(backlog)[sent:]
                return False
            backlog = self._backlog = None

    async def _wait_written(self) -> None:
        """Wait until the socket has taken every byte taken from the driver, or the send
        timeout has dropped them. Those bytes must reach the wire whole and in order: the
        caller's cancellation waits, and the driver's timers bound the wait."""
        with trio.CancelScope(shield=True):
            if self._writing:  # another task writes for us, then wakes us (or the socket closes)
                await self._drained.park()
                return
            driver = self._driver
            self._writing = True
            driver.send_blocked(trio.current_time())
            try:
                while True:
                    with trio.CancelScope(deadline=self._deadline()) as scope:
                        self._write_scope = scope
                        try:
                            await trio.lowlevel.wait_writable(self._sock)
                        except trio.ClosedResourceError:  # aborted meanwhile
                            return
                        finally:
                            self._write_scope = None
                    now = trio.current_time()
                    if not scope.cancelled_caught:
                        if self._write_ready():
                            return
                        driver.send_blocked(now)  # progress: the send timeout starts again
                        continue
                    driver.handle_timer(now)  # the send timeout, or a core timer (a Ping, a Close)
                    self._dispatch()
                    if driver.must_abort:
                        self._broken = True  # what is left will never be read: drop it
                        self._backlog = None
                        driver.data_to_send()
                        return
            finally:
                self._writing = False
                driver.send_blocked(None)
                self._drained.unpark_all()

    # ------------------------------------------------------------- glue

    async def _fair_turn(self) -> None:
        """Yield to other tasks once every _FAIR_TURNS calls that did not wait."""
        self._turns += 1
        if self._turns >= _FAIR_TURNS:
            self._turns = 0
            await trio.lowlevel.cancel_shielded_checkpoint()

    def _deadline(self) -> float:
        """The one timer, the driver's (once the transport is to be closed, it bounds the
        last write by `send_timeout`)."""
        deadline = self._driver.get_timer()
        return math.inf if deadline is None else deadline

    def _rearm(self) -> None:
        deadline = self._deadline()
        for scope in (self._read_scope, self._write_scope):
            if scope is not None and deadline < scope.deadline:
                scope.deadline = deadline
        if self._room:
            self._room.unpark_all()  # re-check the queue limit (closing lifts it)

    def _dispatch(self) -> None:
        for event in self._driver.events():
            if isinstance(event, (SipMessageReceived, InvalidSipMessage)):
                self._messages.append(event)
                if self._arrival:
                    self._arrival.unpark_all()
            elif isinstance(event, Opened):
                self.opened = event
            elif isinstance(event, HandshakeRejected):
                self._rejected = event
            elif isinstance(event, ConnectionClosed):
                self._arrival.unpark_all()

    def _ended(self) -> None:
        if self._on_end is not None:
            self._on_end(self)
        self._done.set()
        self._arrival.unpark_all()
        self._room.unpark_all()
        self._drained.unpark_all()

    def _close_socket(self) -> None:
        self._sock_closed = True
        trio.lowlevel.notify_closing(self._sock)  # wakes a task waiting on it
        self._sock.close()

    def _abort(self, detail: str) -> None:
        """Close the socket now, without writing (cancellation, bugs, the exit bound)."""
        if self._reader_scope is not None:
            self._reader_scope.cancel()
        if self._sock_closed:
            return
        self._driver.failed(trio.current_time(), detail)
        self._driver.data_to_send()
        self._backlog = None
        self._dispatch()
        self._close_socket()
        self._ended()

    def _connect_failed(self) -> ConnectFailed:
        closed = self.closed
        assert closed is not None
        return ConnectFailed(closed, self._rejected)


def raw_socket(stream: trio.SocketStream) -> socket.socket:
    """The stdlib socket under a connected SocketStream, which gives it up."""
    tsock = stream.socket
    sock = socket.socket(tsock.family, tsock.type, tsock.proto, fileno=tsock.detach())
    sock.setblocking(False)
    return sock
