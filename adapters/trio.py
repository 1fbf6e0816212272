"""trio adapter: `connect()`, `open_connection()`, `serve()` and the transport-level `Endpoint`.

TLS runs in the shared `Driver` (memory BIOs), not in `trio.SSLStream`: the TLS handshake
timeout, the send timeout and close_notify are then implemented once for every adapter,
and this adapter only moves bytes, keeps the clock and performs the driver's transport
actions (`_trio_connection.Connection` says how it does that cheaply).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import trio

from sansio_wss import (
    ClientConnection,
    Config,
    ConnectFailed,
    ConnectionClosedError,
    Flow,
    Listener,
    ProxyPolicy,
    TLSDomain,
)

from ._driver import Driver
from ._endpoint import Dial, DialPlan, Incoming, Router, RouterView
from ._listen import accept_driver, as_listener, listen_sockets, warn_if_exposed
from ._tls import TLSContexts, client_target
from ._trio_connection import Connection, Message, raw_socket

__all__ = ["Connection", "Endpoint", "Handler", "Message", "connect", "open_connection", "serve"]

_log = logging.getLogger(__name__)

Handler = Callable[[Connection], Awaitable[object]]
"""A server's per-connection coroutine function: `async def handler(conn: Connection)`."""


# ------------------------------------------------------------------ client


async def connect(
    uri: str,
    *,
    config: Config | None = None,
    tls: TLSDomain | ssl.SSLContext | None = None,
    local_address: str | None = None,
) -> Connection:
    """Open `wss://host[:port][/resource]` and complete TLS and the upgrade; use the
    result as `async with await connect(...) as conn:` (it reads once entered).

    `tls` is the client TLS domain (or a ready SSLContext); by default the system's
    CAs verify the server, with its host name, and SNI is sent. `local_address` is
    the IP to connect from. Raises ConnectFailed when TLS or the handshake fails
    (within `tls_handshake_timeout` and `handshake_timeout`), OSError when the TCP
    connection does (TimeoutError when it takes longer than `handshake_timeout`).
    """
    config = config or Config()
    target, context = client_target(uri, config, tls)
    return await _dial(target.host, target.port, target.host, target.resource, context, config, local_address)


async def _dial(
    host: str,
    port: int,
    server_name: str,
    resource: str,
    context: ssl.SSLContext,
    config: Config,
    local_address: str | None = None,
) -> Connection:
    """Connect to `host` (a name or an IP) and `port`, naming `server_name` in SNI, the
    certificate check and the Host field; TLS and the upgrade done."""
    started = trio.current_time()
    # The core's handshake timer runs from here, TCP connect included.
    core = ClientConnection(server_name, started, port=port, resource=resource, config=config)
    timeout = config.handshake_timeout
    stream: trio.SocketStream | None = None
    with trio.move_on_at(math.inf if timeout is None else started + timeout):
        stream = await trio.open_tcp_stream(host, port, local_address=local_address)
    if stream is None:
        raise TimeoutError(f"TCP connect to {host}:{port} timed out")
    now = trio.current_time()
    conn = Connection(raw_socket(stream), Driver(context, core, now, server_hostname=server_name))
    await conn._open("connect cancelled")
    if conn.opened is None:
        conn._abort("handshake failed")
        raise conn._connect_failed()
    return conn


@asynccontextmanager
async def open_connection(
    uri: str,
    *,
    config: Config | None = None,
    tls: TLSDomain | ssl.SSLContext | None = None,
    local_address: str | None = None,
) -> AsyncIterator[Connection]:
    """`async with open_connection("wss://pbx.example.net/ws") as conn:` connects as
    `connect()` does, reads in a task of its own, and closes the connection on exit."""
    conn = await connect(uri, config=config, tls=tls, local_address=local_address)
    async with conn:
        yield conn


# ------------------------------------------------------------------ server


async def _accept(
    stream: trio.SocketStream, listener: Listener, contexts: TLSContexts, config: Config
) -> Connection | None:
    """PROXY header, TLS and the upgrade on a stream accepted on `listener`. None when no TLS
    domain serves the listener; a connection whose handshake failed has lingered as the core
    said (so that our error reply is read, not reset) and is closed."""
    now = trio.current_time()
    try:
        driver = accept_driver(listener, contexts, config, stream.socket.getsockname()[:2], now)
    except OSError:  # reset before we looked
        driver = None
    if driver is None:
        await trio.aclose_forcefully(stream)
        return None
    conn = Connection(raw_socket(stream), driver)
    await conn._open("server stopped")
    if conn.opened is None:
        closed = conn.closed
        if closed is not None:
            _log.info(
                "connection from %s:%s failed: %s (%s)",
                *conn.remote_address,
                closed.cause.value,
                closed.detail,
            )
        try:
            await conn._run()
        finally:
            conn._abort("server stopped")
    return conn


async def serve(
    handler: Handler,
    listeners: Iterable[Listener | tuple[str, int]],
    *,
    tls: Iterable[TLSDomain] | TLSContexts,
    config: Config | None = None,
    backlog: int | None = None,
    task_status: trio.TaskStatus[list[tuple[str, int]]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on every `Listener` (or (host, port): `wss`) in `listeners` and run
    `handler(connection)` for each connection once its handshake succeeds; the connection is
    closed when the handler returns (1011 if it raised: the error is logged and the server
    goes on).

    Server TLS domains are chosen by listener and SNI. Runs until cancelled, which closes
    every connection (1001, bounded by `close_timeout`). `await nursery.start(serve, ...)`
    returns the bound (IP, port) addresses, useful with port 0; `backlog` is the listen
    queue (trio's default when None). Failed handshakes are logged at INFO on the
    `sansio_wss.adapters.trio` logger with the peer's address, cause and detail.
    """
    config = config or Config()
    contexts = tls if isinstance(tls, TLSContexts) else TLSContexts(tls)
    bound: list[tuple[Listener, list[trio.SocketListener]]] = []
    try:
        for item in listeners:
            listener = as_listener(item)
            port = listener.port_with(config)
            found = await trio.open_tcp_listeners(port, host=listener.host or None, backlog=backlog)
            bound.append((listener, found))
            warn_if_exposed(listener, (s.socket.getsockname()[:2] for s in found), _log)
    except BaseException:
        for _, found in bound:
            for socket_listener in found:
                await trio.aclose_forcefully(socket_listener)
        raise

    async def serve_one(stream: trio.SocketStream, listener: Listener) -> None:
        conn = await _accept(stream, listener, contexts, config)
        if conn is None or conn.opened is None:
            return
        try:
            async with conn:
                await handler(conn)
        except Exception:
            _log.exception("handler failed for %s:%s", *conn.remote_address)

    task_status.started([s.socket.getsockname()[:2] for _, found in bound for s in found])
    async with trio.open_nursery() as nursery:
        for listener, found in bound:
            nursery.start_soon(trio.serve_listeners, functools.partial(serve_one, listener=listener), found)


# ------------------------------------------------------------------ endpoint


class Endpoint(RouterView[Connection]):
    """The transport level, like an OpenSIPS `proto_wss` socket: listeners, and SIP messages
    to and from any destination over connections reused by remote address (and TLS domain
    with `cert_check_on_conn_reuse`).

    Use it as `async with Endpoint(tls=[...]) as endpoint:` (it runs its connections in a
    nursery of its own; leaving the block closes them all with 1001). Received messages
    come from `recv()` or `async for` with their flow (id, remote and local addresses);
    `send(message, to)` takes a flow id, a `sip:`/`sips:` URI with `transport=ws(s)`, a
    `wss://` URI or a (host, port) pair and returns the flow used.

    Messages wait for `recv()` in one queue of at most `max_queue`; while it is full, a
    connection with a message for it stops reading (its peer's sends then block).
    """

    def __init__(
        self,
        *,
        tls: Iterable[TLSDomain] | TLSContexts = (),
        config: Config | None = None,
        max_queue: int = 1024,
        dial_config: Callable[[str, int], Config] | None = None,
    ) -> None:
        """`tls`: server domains for the listeners, client domains for the destinations (the
        system's CAs verify servers no client domain matches). `dial_config(host, port)`, when
        given, chooses the Config of each connection the endpoint opens (say, to offer
        permessage-deflate only to peers known to handle it); by default `config`."""
        self.config = config or Config()
        contexts = tls if isinstance(tls, TLSContexts) else TLSContexts(tls)
        self._router: Router[Connection] = Router(self.config, contexts, dial_config)
        self._queue_in, self._queue = trio.open_memory_channel[Incoming[Connection]](max_queue)
        self._listeners: list[trio.SocketListener] = []
        self._dialing: dict[tuple[str, int, str | None], trio.Event] = {}
        # Accept loops, dials and handshakes under way, each in a cancel scope of its own:
        # close() cancels them, never the nursery's scope, which holds the caller's block.
        self._scopes: set[trio.CancelScope] = set()
        self._closed: tuple[int, str] | None = None
        self._nursery: trio.Nursery | None = None
        self._nursery_manager: AbstractAsyncContextManager[trio.Nursery] | None = None

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The (IP, port) of every listening socket."""
        return [listener.socket.getsockname()[:2] for listener in self._listeners]

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
        address (the first, when `host` resolves to several). `secure=False` serves plain `ws`
        (behind a TLS proxy); `proxy` names the trusted proxies and what of theirs to believe;
        `reuse_port`: several processes may listen on the port (SO_REUSEPORT)."""
        nursery = self._running()
        spec = Listener(host, port, secure, proxy)
        sockets = await trio.to_thread.run_sync(
            functools.partial(listen_sockets, host, spec.port_with(self.config), 1024, reuse_port=reuse_port)
        )
        listeners = [trio.SocketListener(trio.socket.from_stdlib_socket(sock)) for sock in sockets]
        warn_if_exposed(spec, (listener.socket.getsockname()[:2] for listener in listeners), _log)
        self._listeners += listeners
        for listener in listeners:
            nursery.start_soon(self._accept_loop, listener, spec)
        host_bound, port_bound = listeners[0].socket.getsockname()[:2]
        return str(host_bound), int(port_bound)

    async def recv(self) -> Incoming[Connection]:
        """The next message received on any connection, with its flow. Raises
        ConnectionClosedError once the endpoint is closed and every message was taken."""
        try:
            return await self._queue.receive()
        except trio.EndOfChannel:
            raise ConnectionClosedError(*self._close_code()) from None

    def __aiter__(self) -> AsyncIterator[Incoming[Connection]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Incoming[Connection]]:
        while True:
            try:
                yield await self.recv()
            except ConnectionClosedError:
                return

    async def send(
        self, message: bytes | str, to: int | str | tuple[str, int], *, binary: bool | None = None
    ) -> Flow[Connection]:
        """Send one SIP message, reusing or opening a connection; returns the flow used.

        Raises NoRoute (a gone flow, a browser's `*.invalid` host, not a WebSocket
        destination), ConnectFailed, OSError (name resolution, TCP), or ConnectionClosedError
        when the flow closed meanwhile or the endpoint is closed."""
        self._running()
        target = self._router.target(to)
        flow = target if isinstance(target, Flow) else await self._flow_for(target)
        await flow.connection.send(message, binary=binary)
        self.stats.sent(len(message))
        return flow

    async def close(self, code: int = 1001, reason: str = "going away") -> None:
        """Stop listening, drop dials under way, and close every connection with `code`
        (each bounded by its close timeout). Messages already received can still be taken."""
        if self._closed is None:
            self._closed = (code, reason)
        for scope in self._scopes:
            scope.cancel()
        with trio.CancelScope(shield=True):
            for listener in self._listeners:
                await trio.aclose_forcefully(listener)
            self._listeners.clear()
            flows = list(self._router.table)
            async with trio.open_nursery() as closing:
                for flow in flows:
                    closing.start_soon(flow.connection.close, code, reason)
        self._queue_in.close()  # recv() takes what is left, then raises

    async def __aenter__(self) -> Endpoint:
        if self._nursery_manager is not None:
            raise RuntimeError("an endpoint can be entered once")
        manager = trio.open_nursery()
        self._nursery = await manager.__aenter__()
        self._nursery_manager = manager
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.close()
        finally:
            manager, self._nursery_manager = self._nursery_manager, None
            if manager is not None:
                await manager.__aexit__(None, None, None)

    # ---------------------------------------------------------------- internals

    def _close_code(self) -> tuple[int, str]:
        return self._closed or (1001, "going away")

    def _running(self) -> trio.Nursery:
        if self._closed is not None:
            raise ConnectionClosedError(*self._closed)
        if self._nursery is None:
            raise RuntimeError("enter the endpoint first: async with Endpoint(...) as endpoint")
        return self._nursery

    async def _flow_for(self, dial: Dial) -> Flow[Connection]:
        infos = await trio.socket.getaddrinfo(dial.host, dial.port, type=socket.SOCK_STREAM)
        addresses = [(str(info[4][0]), int(info[4][1])) for info in infos]
        plan = self._router.plan(dial, addresses)
        if isinstance(plan, Flow):
            return plan
        pending = self._dialing.get(plan.key)
        if pending is not None:  # another send is dialling the same destination: reuse its flow
            await pending.wait()
            return await self._flow_for(dial)  # (or dial ourselves if it failed)
        done = self._dialing[plan.key] = trio.Event()
        try:
            return await self._dial_any(addresses, dial, plan)
        finally:
            del self._dialing[plan.key]
            done.set()

    async def _dial_any(
        self, addresses: list[tuple[str, int]], dial: Dial, plan: DialPlan
    ) -> Flow[Connection]:
        """Try each resolved address in turn (IPv6 and IPv4 alike) until one connects."""
        nursery = self._running()
        error: OSError | None = None
        for address in addresses:
            conn: Connection | None = None
            try:
                with self._scope():
                    conn = await _dial(*address, dial.host, dial.resource, plan.context, plan.config)
            except OSError as exc:
                error = exc
                continue
            except ConnectFailed as exc:  # TLS or the upgrade
                self.stats.ended(exc.closed, was_open=False)
                raise
            if conn is None or self._closed is not None:  # the endpoint closed meanwhile
                if conn is not None:
                    await conn.close(*self._close_code())
                raise ConnectionClosedError(*self._close_code())
            flow = self._router.opened(
                conn, address, conn.local_address, accepted=False, tls_domain=plan.tls_domain
            )
            conn._on_end = self._forget
            nursery.start_soon(self._read, conn, flow)
            return flow
        assert error is not None
        raise error

    @contextlib.contextmanager
    def _scope(self) -> Iterator[None]:
        """A cancel scope that `close()` cancels."""
        with trio.CancelScope() as scope:
            self._scopes.add(scope)
            try:
                yield
            finally:
                self._scopes.discard(scope)

    async def _accept_loop(self, listener: trio.SocketListener, spec: Listener) -> None:
        with self._scope():
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:  # out of file descriptors, memory...: wait, go on
                    _log.warning("accept on %s failed: %s", listener.socket.getsockname()[:2], exc)
                    await trio.sleep(0.1)
                    continue
                self._running().start_soon(self._accepted, stream, spec)

    async def _accepted(self, stream: trio.SocketStream, spec: Listener) -> None:
        conn: Connection | None = None
        with self._scope():
            conn = await _accept(stream, spec, self._router.contexts, self.config)
        if conn is None:  # no TLS domain, or the endpoint closed meanwhile
            return
        if conn.opened is None:
            closed = conn.closed
            if closed is not None:
                self._router.ended(conn, closed)
            return
        if self._closed is not None:  # the endpoint closed as this handshake completed
            await conn.close(*self._closed)
            return
        flow = self._router.opened(conn, conn.remote_address, conn.local_address, accepted=True)
        conn._on_end = self._forget
        await self._read(conn, flow)

    async def _read(self, conn: Connection, flow: Flow[Connection]) -> None:
        try:
            async with conn:
                async for message in conn:
                    self.stats.received(message)
                    try:
                        await self._queue_in.send(Incoming(message, flow))
                    except trio.ClosedResourceError:  # the endpoint closed
                        break
        finally:
            self._forget(conn)  # (if the socket has not closed, the reader failed)

    def _forget(self, conn: Connection) -> None:
        """An opened connection has ended (its socket closed): drop its flow, count it, once."""
        closed = conn.closed
        if closed is not None and self._router.flow_of(conn) is not None:
            self._router.ended(conn, closed)
