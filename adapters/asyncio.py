"""asyncio adapter: `connect()` and `serve()` over TLS done with memory BIOs in a plain Protocol."""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

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
from sansio_wss.sip import parse_ws_uri

from ._driver import Driver
from ._tls import TLSContexts, context_for

__all__ = ["Connection", "Server", "connect", "serve"]

Message = SipMessageReceived | InvalidSipMessage
"""What `recv()` returns: a SIP message, or a message whose start line is not SIP."""

_MAX_QUEUE = 64  # received messages held for the application before we stop reading
_HIGH_WATER = 64 * 1024  # bytes queued for the socket before pause_writing()


class Connection:
    """One SIP-over-WSS connection, either role, for asyncio code.

    `recv()` (or `async for`) gives received messages in order; `send()` sends
    one; `close()` runs the closing handshake. Once the connection has ended,
    `closed` holds the core's `ConnectionClosed` event, and `recv()`/`send()`
    raise `ConnectionClosedError`.
    """

    __slots__ = ("_closed_future", "_messages", "_opened", "_protocol", "_waiter", "opened")

    def __init__(self, protocol: _Protocol) -> None:
        self._protocol = protocol
        self._messages: collections.deque[Message] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed_future: asyncio.Future[None] = protocol.loop.create_future()
        self._opened: asyncio.Future[Opened] = protocol.loop.create_future()
        self.opened: Opened | None = None
        """The handshake's `Opened` event: resource, peer headers, raw request and reply."""

    @property
    def closed(self) -> ConnectionClosed | None:
        """The terminal event, once the connection has ended."""
        return self._protocol.driver.connection.closed_event

    @property
    def remote_address(self) -> tuple[str, int]:
        """The peer's (IP, port)."""
        return self._protocol.remote

    @property
    def local_address(self) -> tuple[str, int]:
        """Our (IP, port): the listener for an accepted connection."""
        return self._protocol.local

    async def recv(self) -> Message:
        """The next received message; raises ConnectionClosedError once none will come."""
        while not self._messages:
            closed = self.closed
            if closed is not None:
                raise ConnectionClosedError(closed.code, closed.reason)
            self._waiter = self._protocol.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        message = self._messages.popleft()
        if len(self._messages) == _MAX_QUEUE // 2:
            self._protocol.resume_queue()
        return message

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        while True:
            try:
                yield await self.recv()
            except ConnectionClosedError:
                return

    async def send(self, message: bytes | str) -> None:
        """Send one SIP message; waits while the socket's buffer is full (bounded by
        `send_timeout`). Raises ConnectionClosedError once closing."""
        protocol = self._protocol
        protocol.driver.send(message, protocol.loop.time())
        protocol.flush()
        if protocol.write_paused:
            await protocol.drained()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Run the closing handshake and wait until the transport is closed."""
        protocol = self._protocol
        protocol.driver.close(protocol.loop.time(), code, reason)
        protocol.flush()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the transport is closed."""
        await asyncio.shield(self._closed_future)

    # called by the protocol
    def _deliver(self, message: Message) -> None:
        self._messages.append(message)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _ended(self) -> None:
        self._wake()
        if not self._closed_future.done():
            self._closed_future.set_result(None)


class _Protocol(asyncio.Protocol):
    """The glue: socket callbacks in, driver actions out; no protocol logic."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        make_driver: Callable[[_Protocol, float], Driver | None],
        on_open: Callable[[Connection], None] | None = None,
    ) -> None:
        self.loop = loop
        self._make_driver = make_driver
        self._on_open = on_open
        self.transport: asyncio.Transport | None = None
        self.driver: Driver = None  # type: ignore[assignment]  # set in connection_made
        self.conn = Connection.__new__(Connection)
        self.remote: tuple[str, int] = ("", 0)
        self.local: tuple[str, int] = ("", 0)
        self.write_paused = False
        self._queue_paused = False
        self._drain: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._half_closed = False
        self._rejected: HandshakeRejected | None = None
        self._live = False

    # --------------------------------------------------------------- socket side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.remote = transport.get_extra_info("peername")[:2]
        self.local = transport.get_extra_info("sockname")[:2]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=_HIGH_WATER)
        now = self.loop.time()
        driver = self._make_driver(self, now)
        if driver is None:  # no TLS domain serves this listener
            transport.abort()
            return
        self.driver = driver
        self._live = True
        Connection.__init__(self.conn, self)
        driver.start(now)
        self.flush()

    def data_received(self, data: bytes) -> None:
        self.driver.receive(data, self.loop.time())
        self.flush()

    def eof_received(self) -> bool:
        self.driver.receive_eof(self.loop.time())
        self.flush()
        return True  # we close when the core says so

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._live:
            return
        now = self.loop.time()
        if exc is not None:
            self.driver.failed(now, f"{type(exc).__name__}: {exc}")
        else:
            self.driver.receive_eof(now)
        self.driver.data_to_send()
        self._dispatch()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self.conn._ended()

    def pause_writing(self) -> None:
        self.write_paused = True
        self.driver.send_blocked(self.loop.time())
        self._arm()
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self.driver.send_blocked(None)
        if self.transport is not None and not self._queue_paused:
            self.transport.resume_reading()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # ------------------------------------------------------------ driver side

    def flush(self) -> None:
        """Write, deliver, apply the transport action, re-arm the timer."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        data = self.driver.data_to_send()
        if data:
            transport.write(data)
        self._dispatch()
        action = self.driver.transport_action
        if action is TransportAction.CLOSE:
            transport.close()
        elif action is TransportAction.HALF_CLOSE and not self._half_closed:
            self._half_closed = True
            if transport.can_write_eof():
                transport.write_eof()
        self._arm()

    def _dispatch(self) -> None:
        conn = self.conn
        for event in self.driver.events():
            if isinstance(event, (SipMessageReceived, InvalidSipMessage)):
                conn._deliver(event)
                if len(conn._messages) >= _MAX_QUEUE and not self._queue_paused:
                    self._queue_paused = True
                    if self.transport is not None:
                        self.transport.pause_reading()
            elif isinstance(event, Opened):
                conn.opened = event
                if not conn._opened.done():
                    conn._opened.set_result(event)
                if self._on_open is not None:
                    self._on_open(conn)
            elif isinstance(event, ConnectionClosed):
                if not conn._opened.done():
                    conn._opened.set_exception(ConnectFailed(event, self._rejected))
                    conn._opened.exception()  # retrieved: no "never retrieved" warning
                conn._wake()
            elif isinstance(event, HandshakeRejected):
                self._rejected = event

    def resume_queue(self) -> None:
        self._queue_paused = False
        if self.transport is not None and not self.write_paused:
            self.transport.resume_reading()

    async def drained(self) -> None:
        if self._drain is None or self._drain.done():
            self._drain = self.loop.create_future()
        await self._drain

    def _arm(self) -> None:
        deadline = self.driver.get_timer()
        if deadline is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
                self._timer_at = None
            return
        # Keep a timer that fires earlier: when it does, the core ignores what is not
        # due yet and we re-arm. This avoids re-arming on every read.
        if self._timer is not None and self._timer_at is not None and self._timer_at <= deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self.loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        self.driver.handle_timer(self.loop.time())
        self.flush()


async def connect(
    uri: str,
    *,
    config: Config | None = None,
    tls: TLSDomain | ssl.SSLContext | None = None,
    local_address: tuple[str, int] | None = None,
) -> Connection:
    """Open `wss://host[:port][/resource]` and complete TLS and the upgrade.

    `tls` is the client TLS domain (or a ready SSLContext); by default the
    system's CAs verify the server, with its host name, and SNI is sent. Raises
    ConnectFailed when TLS or the handshake fails (within `tls_handshake_timeout`
    and `handshake_timeout`), OSError when the TCP connection does.
    """
    config = config or Config()
    target = parse_ws_uri(uri, config.port, config.resource)
    if not target.secure:
        raise ValueError("the asyncio adapter speaks wss:// only")
    if isinstance(tls, ssl.SSLContext):
        context = tls
    elif tls is not None:
        context = context_for(tls)
    else:
        context = ssl.create_default_context()
    loop = asyncio.get_running_loop()

    def make_driver(protocol: _Protocol, now: float) -> Driver:
        conn = ClientConnection(target.host, now, port=target.port, resource=target.resource, config=config)
        return Driver(context, conn, now, server_hostname=target.host)

    timeout = config.handshake_timeout
    _, protocol = await asyncio.wait_for(
        loop.create_connection(
            lambda: _Protocol(loop, make_driver), target.host, target.port, local_addr=local_address
        ),
        timeout,
    )
    conn = protocol.conn
    await conn._opened
    return conn


Handler = Callable[[Connection], Awaitable[Any]]


class Server:
    """Listeners serving SIP over WSS; `close()` stops accepting and closes every connection."""

    def __init__(self, servers: list[asyncio.Server], connections: set[Connection]) -> None:
        self._servers = servers
        self._connections = connections

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The (IP, port) of every listening socket (useful with port 0)."""
        return [sock.getsockname()[:2] for server in self._servers for sock in server.sockets]

    async def close(self, code: int = 1001, reason: str = "going away") -> None:
        """Stop listening, close every open connection, and wait until they are gone."""
        for server in self._servers:
            server.close()
        await asyncio.gather(*(c.close(code, reason) for c in list(self._connections)))
        for server in self._servers:
            await server.wait_closed()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def serve(
    handler: Handler,
    listeners: Iterable[tuple[str, int]],
    *,
    tls: Iterable[TLSDomain] | TLSContexts,
    config: Config | None = None,
    backlog: int = 1024,
) -> Server:
    """Listen on every (host, port) in `listeners` and run `handler(connection)` for each
    connection once its handshake succeeds; the connection is closed when the handler
    returns. Server TLS domains are chosen by listener and SNI."""
    config = config or Config()
    contexts = tls if isinstance(tls, TLSContexts) else TLSContexts(tls)
    loop = asyncio.get_running_loop()
    connections: set[Connection] = set()
    tasks: set[asyncio.Task[None]] = set()

    def make_driver(protocol: _Protocol, now: float) -> Driver | None:
        context = contexts.server_context(protocol.local)
        if context is None:
            return None
        return Driver(context, ServerConnection(now, config), now)

    async def run(conn: Connection) -> None:
        connections.add(conn)
        try:
            await handler(conn)
        finally:
            connections.discard(conn)
            await conn.close()

    def on_open(conn: Connection) -> None:
        task = loop.create_task(run(conn))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    servers = []
    for host, port in listeners:
        servers.append(
            await loop.create_server(
                lambda: _Protocol(loop, make_driver, on_open), host, port, backlog=backlog, reuse_address=True
            )
        )
    return Server(servers, connections)
