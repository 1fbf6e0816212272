"""asyncio adapter: `connect()`, `serve()` and `Endpoint`, with TLS over memory BIOs in a plain protocol."""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, cast

from sansio_wss import (
    ClientConnection,
    Config,
    ConnectFailed,
    ConnectionClosed,
    ConnectionClosedError,
    Flow,
    HandshakeRejected,
    InvalidSipMessage,
    Listener,
    Opened,
    ProxyPolicy,
    SipMessageReceived,
    TLSDomain,
    TransportAction,
)

from ._driver import AsyncMessages, ConnectionView, Driver, Message
from ._endpoint import Dial, DialPlan, Incoming, Router, RouterView
from ._listen import accept_driver, as_listener, warn_if_exposed
from ._tls import TLSContexts, client_target

__all__ = ["Connection", "Endpoint", "Incoming", "Server", "connect", "serve"]

_log = logging.getLogger("sansio_wss.adapters.asyncio")

"""What `recv()` returns: a SIP message, or a message whose start line is not SIP."""

_MAX_QUEUE = 64  # received messages held for the application before we stop reading
_HIGH_WATER = 64 * 1024  # bytes queued for the socket before pause_writing()
# Reading goes on while writes are paused (a peer reading slowly must still get its Close
# frame read), unless this much is queued: only the core's answers to what we read (Pongs)
# can pile up past _HIGH_WATER, since senders wait there.
_BACKLOG_LIMIT = 4 * _HIGH_WATER


_READ = 262144  # one read takes all that is available: one chunk for max_msg_chunks
_buffers = threading.local()


def _read_buffer() -> memoryview:
    view: memoryview | None = getattr(_buffers, "view", None)
    if view is None:
        view = _buffers.view = memoryview(bytearray(_READ))
    return view


class Connection(ConnectionView, AsyncMessages):
    """One SIP-over-WSS connection, either role, for asyncio code.

    `recv()` (or `async for`) gives received messages in order; `send()` sends
    one; `close()` runs the closing handshake. Once the connection has ended,
    `closed` holds the core's `ConnectionClosed` event, and `recv()`/`send()`
    raise `ConnectionClosedError`.
    """

    __slots__ = ("_closed_future", "_driver", "_messages", "_opened", "_protocol", "_waiter", "opened")

    def __init__(self, protocol: _Protocol) -> None:
        self._protocol = protocol
        self._driver = protocol.driver
        self._messages: collections.deque[Message] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed_future: asyncio.Future[None] = protocol.loop.create_future()
        self._opened: asyncio.Future[Opened] = protocol.loop.create_future()
        self.opened: Opened | None = None
        """The handshake's `Opened` event: resource, peer headers, raw request and reply."""

    async def recv(self) -> Message:
        """The next received message; raises ConnectionClosedError once none will come."""
        while not self._messages:
            closed = self.closed
            if closed is not None:
                raise ConnectionClosedError(closed.code, closed.reason)
            protocol = self._protocol
            if protocol._flush_pending:  # the replies to what we had: out before we wait
                protocol.flush()
            self._waiter = protocol.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        message = self._messages.popleft()
        if len(self._messages) == _MAX_QUEUE // 2:
            self._protocol.resume_queue()
        return message

    async def send(self, message: bytes | str, *, binary: bool | None = None) -> None:
        """Send one SIP message; waits while the socket's buffer is full (bounded by
        `send_timeout`). Raises ConnectionClosedError once closing."""
        protocol = self._protocol
        protocol.driver.send(message, protocol.loop.time(), binary)
        protocol.unflushed += len(message)
        if protocol.unflushed > _HIGH_WATER:  # a sender that never yields still hits backpressure
            protocol.flush()
        else:
            protocol.flush_soon()
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


class _Protocol(asyncio.BufferedProtocol):
    """The glue: socket callbacks in, driver actions out; no protocol logic."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        make_driver: Callable[[_Protocol, float], Driver | None],
        on_open: Callable[[Connection], None] | None = None,
        on_closed: Callable[[Connection, ConnectionClosed], None] | None = None,
    ) -> None:
        self.loop = loop
        self._make_driver = make_driver
        self._on_open = on_open
        self._on_closed = on_closed
        self.transport: asyncio.Transport | None = None
        self.driver: Driver = None  # type: ignore[assignment]  # set in connection_made
        self.conn = Connection.__new__(Connection)
        self.remote: tuple[str, int] = ("", 0)
        self.local: tuple[str, int] = ("", 0)
        self.write_paused = False
        self._queue_paused = False
        self._backlog_paused = False
        self._drain: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._half_closed = False
        self._rejected: HandshakeRejected | None = None
        self._live = False
        self._abort_later: asyncio.TimerHandle | None = None
        self._flush_pending = False
        self.unflushed = 0

    # --------------------------------------------------------------- socket side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
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
        driver.set_addresses(self.remote, self.local, now)
        driver.start(now)
        self.flush()

    def get_buffer(self, sizehint: int) -> memoryview:
        # One read buffer for every connection of this thread: the transport fills it and
        # calls buffer_updated() at once, and the driver copies the bytes into TLS.
        return _read_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self.driver.receive(_read_buffer()[:nbytes], self.loop.time())
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
        if self._abort_later is not None:
            self._abort_later.cancel()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self.conn._ended()

    def pause_writing(self) -> None:
        self.write_paused = True
        self.driver.send_blocked(self.loop.time())
        self._arm()

    def resume_writing(self) -> None:
        self.write_paused = False
        self.driver.send_blocked(None)
        if self._backlog_paused:
            self._backlog_paused = False
            if self.transport is not None and not self._queue_paused:
                self.transport.resume_reading()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # ------------------------------------------------------------ driver side

    def flush_soon(self) -> None:
        """Flush once the current loop iteration is over, so that every message the
        application sends meanwhile goes out in one TLS write and one syscall."""
        if not self._flush_pending:
            self._flush_pending = True
            self.loop.call_soon(self._flush_if_pending)

    def _flush_if_pending(self) -> None:
        if self._flush_pending:  # not flushed meanwhile by a recv() about to wait
            self.flush()

    def flush(self) -> None:
        """Write, deliver, apply the transport action, re-arm the timer."""
        self._flush_pending = False
        self.unflushed = 0
        transport = self.transport
        if transport is None or transport.is_closing():
            # A write failed (a reset): the loop has not told us yet (connection_lost comes
            # later, and a sender that never waits never lets it run). Fail the core now, so
            # that send() raises instead of queueing without bound.
            if self._live and self.driver.connection.closed_event is None:
                self.driver.failed(self.loop.time(), "the transport closed")
                self.driver.data_to_send()
                self._dispatch()
            return
        data = self.driver.data_to_send()
        if data:
            transport.write(data)
            if not self._backlog_paused and transport.get_write_buffer_size() > _BACKLOG_LIMIT:
                self._backlog_paused = True
                transport.pause_reading()
        self._dispatch()
        action = self.driver.transport_action
        if action is TransportAction.CLOSE:
            if self.driver.must_abort:
                transport.abort()
            else:
                transport.close()  # flushes first; a peer that never reads gets close_timeout
                self._abort_later = self.loop.call_later(
                    self.driver.connection.config.close_timeout, transport.abort
                )
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
                if self._on_closed is not None:
                    self._on_closed(conn, event)
            elif isinstance(event, HandshakeRejected):
                self._rejected = event

    def resume_queue(self) -> None:
        self._queue_paused = False
        if self.transport is not None and not self._backlog_paused:
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


async def _dial(
    address: tuple[str, int],
    host: str,
    resource: str,
    context: ssl.SSLContext,
    config: Config,
    local_address: tuple[str, int] | None = None,
    on_closed: Callable[[Connection, ConnectionClosed], None] | None = None,
) -> Connection:
    """Connect to `address`, naming `host` in SNI, certificate checks and the Host field."""
    loop = asyncio.get_running_loop()

    def make_driver(protocol: _Protocol, now: float) -> Driver:
        conn = ClientConnection(host, now, port=address[1], resource=resource, config=config)
        return Driver(context, conn, now, server_hostname=host)

    _, protocol = await asyncio.wait_for(
        loop.create_connection(
            lambda: _Protocol(loop, make_driver, on_closed=on_closed),
            address[0],
            address[1],
            local_addr=local_address,
        ),
        config.handshake_timeout,
    )
    conn = protocol.conn
    try:
        await conn._opened
    except BaseException:  # failed, or cancelled (by the caller, or an endpoint's close)
        if protocol.transport is not None:
            protocol.transport.abort()
        raise
    return conn


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
    target, context = client_target(uri, config, tls)
    return await _dial(
        (target.host, target.port), target.host, target.resource, context, config, local_address
    )


async def _listen(
    listener: Listener,
    contexts: TLSContexts,
    config: Config,
    on_open: Callable[[Connection], None],
    on_closed: Callable[[Connection, ConnectionClosed], None] | None = None,
    backlog: int = 1024,
    reuse_port: bool = False,
) -> asyncio.Server:
    """The sockets of one listener; TLS domain by listener and SNI, or plain."""
    loop = asyncio.get_running_loop()

    def make_driver(protocol: _Protocol, now: float) -> Driver | None:
        return accept_driver(listener, contexts, config, protocol.local, now)

    server = await loop.create_server(
        lambda: _Protocol(loop, make_driver, on_open, on_closed),
        listener.host or None,
        listener.port_with(config),
        backlog=backlog,
        reuse_address=True,
        reuse_port=reuse_port or None,
    )
    warn_if_exposed(listener, (sock.getsockname()[:2] for sock in server.sockets), _log)
    return server


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
    listeners: Iterable[Listener | tuple[str, int]],
    *,
    tls: Iterable[TLSDomain] | TLSContexts,
    config: Config | None = None,
    backlog: int = 1024,
) -> Server:
    """Listen on every `Listener` (or (host, port): `wss`) in `listeners` and run
    `handler(connection)` for each connection once its handshake succeeds; the connection is
    closed when the handler returns. Server TLS domains are chosen by listener and SNI."""
    config = config or Config()
    contexts = tls if isinstance(tls, TLSContexts) else TLSContexts(tls)
    loop = asyncio.get_running_loop()
    connections: set[Connection] = set()
    tasks: set[asyncio.Task[None]] = set()

    async def run(conn: Connection) -> None:
        connections.add(conn)
        code, reason = 1000, ""
        try:
            await handler(conn)
        except Exception:
            _log.exception("sansio_wss asyncio adapter: handler failed for %s", conn.remote_address)
            code, reason = 1011, "handler error"
        finally:
            connections.discard(conn)
            await conn.close(code, reason)

    def on_open(conn: Connection) -> None:
        task = loop.create_task(run(conn))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    servers = [
        await _listen(as_listener(item), contexts, config, on_open, backlog=backlog) for item in listeners
    ]
    return Server(servers, connections)


class Endpoint(RouterView[Connection]):
    """The transport level, like an OpenSIPS `proto_wss` socket: listeners, and SIP messages
    to and from any destination over connections reused by remote address (and TLS domain
    with `cert_check_on_conn_reuse`).

    Received messages come from `recv()` or `async for` with their flow (id, remote and
    local addresses); `send(message, to)` takes a flow id, a `sip:`/`sips:` URI with
    `transport=ws(s)`, a `wss://` URI or a (host, port) pair and returns the flow used.
    `dial_config(host, port)`, when given, chooses the Config of each connection the endpoint
    opens (say, to offer permessage-deflate only to peers known to handle it); by default
    every connection gets `config`.
    """

    def __init__(
        self,
        *,
        tls: Iterable[TLSDomain] | TLSContexts = (),
        config: Config | None = None,
        max_queue: int = 1024,
        dial_config: Callable[[str, int], Config] | None = None,
    ) -> None:
        self.config = config or Config()
        contexts = tls if isinstance(tls, TLSContexts) else TLSContexts(tls)
        self._router: Router[Connection] = Router(self.config, contexts, dial_config)
        self._incoming: asyncio.Queue[Incoming[Connection]] = asyncio.Queue(max_queue)
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._dialing: dict[tuple[str, int, str | None], asyncio.Future[Flow[Connection]]] = {}
        self._open: set[Connection] = set()
        self._dials: set[asyncio.Future[Connection]] = set()
        self._closed: tuple[int, str] | None = None

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The (IP, port) of every listening socket."""
        return [sock.getsockname()[:2] for server in self._servers for sock in server.sockets]

    async def listen(
        self,
        host: str,
        port: int | None = None,
        *,
        secure: bool = True,
        proxy: ProxyPolicy | None = None,
        reuse_port: bool = False,
    ) -> tuple[str, int]:
        """Add a listener (port: `Config.port` by default, 80 for plain, 0 for any); returns its
        address. `secure=False` serves plain `ws` (behind a TLS proxy); `proxy` names the
        trusted proxies and what of theirs to believe; `reuse_port`: several processes may
        listen on the port (SO_REUSEPORT)."""
        if self._closed is not None:
            raise ConnectionClosedError(*self._closed)
        server = await _listen(
            Listener(host, port, secure, proxy),
            self._router.contexts,
            self.config,
            self._accepted,
            self._ended,
            reuse_port=reuse_port,
        )
        self._servers.append(server)
        host_bound, port_bound = next(iter(server.sockets)).getsockname()[:2]
        return str(host_bound), int(port_bound)

    async def recv(self) -> Incoming[Connection]:
        """The next message received on any connection, with its flow."""
        return await self._incoming.get()

    def __aiter__(self) -> AsyncIterator[Incoming[Connection]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Incoming[Connection]]:
        while True:
            yield await self.recv()

    async def send(
        self, message: bytes | str, to: int | str | tuple[str, int], *, binary: bool | None = None
    ) -> Flow[Connection]:
        """Send one SIP message; reuse or open the connection. Raises NoRoute, ConnectFailed,
        OSError, or ConnectionClosedError when the flow closed meanwhile."""
        if self._closed is not None:
            raise ConnectionClosedError(*self._closed)
        target = self._router.target(to)
        flow = target if isinstance(target, Flow) else await self._flow_for(target)
        await flow.connection.send(message, binary=binary)
        self.stats.sent(len(message))
        return flow

    async def close(self, code: int = 1001, reason: str = "going away") -> None:
        """Stop listening, drop dials under way, and close every connection with `code`."""
        if self._closed is None:
            self._closed = (code, reason)
        for server in self._servers:
            server.close()
        for dial in self._dials:
            dial.cancel()
        await asyncio.gather(*self._dials, return_exceptions=True)
        await asyncio.gather(*(c.close(code, reason) for c in list(self._open)), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()

    async def __aenter__(self) -> Endpoint:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---------------------------------------------------------------- internals

    async def _flow_for(self, dial: Dial) -> Flow[Connection]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(dial.host, dial.port, type=socket.SOCK_STREAM)
        addresses = [(str(info[4][0]), int(info[4][1])) for info in infos]
        plan = self._router.plan(dial, addresses)
        if isinstance(plan, Flow):
            return plan
        key = plan.key
        pending = self._dialing.get(key)
        if pending is not None:  # another send is dialling the same destination: share it
            return await asyncio.shield(pending)
        future: asyncio.Future[Flow[Connection]] = loop.create_future()
        self._dialing[key] = future
        try:
            flow = await self._dial_any(addresses, dial, plan)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        else:
            future.set_result(flow)
            return flow
        finally:
            del self._dialing[key]

    async def _dial_any(
        self, addresses: list[tuple[str, int]], dial: Dial, plan: DialPlan
    ) -> Flow[Connection]:
        """Try each resolved address in turn (IPv6 and IPv4 alike) until one connects."""
        error: OSError | None = None
        for address in addresses:
            # The dial is a task of its own, so that close() can drop it without cancelling
            # the caller, who gets ConnectionClosedError instead.
            task = asyncio.ensure_future(
                _dial(address, dial.host, dial.resource, plan.context, plan.config, on_closed=self._ended)
            )
            self._dials.add(task)
            try:
                await asyncio.wait((task,))
            finally:
                self._dials.discard(task)
                task.cancel()  # when the caller was cancelled; a no-op once done
            if task.cancelled():
                raise ConnectionClosedError(*(self._closed or (1001, "going away")))
            try:
                conn = task.result()
            except OSError as exc:
                error = exc
                continue
            flow = self._router.opened(
                conn, address, conn.local_address, accepted=False, tls_domain=plan.tls_domain
            )
            self._started(conn, flow)
            return flow
        assert error is not None
        raise error

    def _accepted(self, conn: Connection) -> None:
        flow = self._router.opened(conn, conn.remote_address, conn.local_address, accepted=True)
        self._started(conn, flow)

    def _started(self, conn: Connection, flow: Flow[Connection]) -> None:
        self._open.add(conn)
        task = asyncio.get_running_loop().create_task(self._read(conn, flow))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read(self, conn: Connection, flow: Flow[Connection]) -> None:
        async for message in conn:
            self.stats.received(message)
            await self._incoming.put(Incoming(message, flow))

    def _ended(self, conn: Connection, event: ConnectionClosed) -> None:
        self._open.discard(conn)
        self._router.ended(conn, event)
