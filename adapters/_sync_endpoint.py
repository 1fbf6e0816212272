"""The blocking adapter's transport level: an `Endpoint` with listeners, flows and connection reuse."""

from __future__ import annotations

import collections
import functools
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from types import TracebackType

from sansio_wss import Config, ConnectionClosedError, Flow, Listener, ProxyPolicy, TLSDomain

from ._endpoint import Dial, DialPlan, Incoming, Router, Stats
from ._listen import listen_sockets, warn_if_exposed
from ._sync_accept import Acceptor
from ._sync_io import Connection, Message, logger, start_client
from ._tls import TLSContexts

__all__ = ["Endpoint"]


class Endpoint:
    """The transport level, like an OpenSIPS `proto_wss` socket: listeners, and SIP messages
    to and from any destination over connections reused by remote address (and TLS domain
    with `cert_check_on_conn_reuse`).

    Received messages come from `recv()` or iteration with their flow (id, remote and local
    addresses); `send(message, to)` takes a flow id, a `sip:`/`sips:` URI with
    `transport=ws(s)`, a `wss://` URI or a (host, port) pair and returns the flow used.
    Every method may be called from any thread. Each connection has its I/O thread, each
    listener an accept thread; `close()` ends them all.

    Messages wait for `recv()` in one queue of at most `max_queue`; while it is full, a
    connection with a message for it stops reading its socket (its peer's sends then block),
    and holds what its last read carried until there is room again.
    """

    def __init__(
        self,
        *,
        tls: Iterable[TLSDomain] | TLSContexts = (),
        config: Config | None = None,
        max_queue: int = 1024,
        backlog: int = 1024,
        dial_config: Callable[[str, int], Config] | None = None,
    ) -> None:
        """`tls`: server domains for the listeners, client domains for the destinations (the
        system's CAs verify servers no client domain matches); `backlog` of each listener.
        `dial_config(host, port)`, when given, chooses the Config of each connection the
        endpoint opens (say, to offer permessage-deflate only to peers known to handle it)."""
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.config = config or Config()
        contexts = tls if isinstance(tls, TLSContexts) else TLSContexts(tls)
        self._max_queue = max_queue
        self._backlog = backlog
        # One lock for the router, the queue and the dials. A connection's I/O thread takes it
        # while holding the connection's own lock (to deliver a message, to record a flow), so
        # the endpoint never takes a connection's lock while holding its own.
        self._lock = threading.Lock()
        self._readable = threading.Condition(self._lock)
        self._router: Router[Connection] = Router(self.config, contexts, dial_config)
        self._incoming: collections.deque[Incoming[Connection]] = collections.deque()
        self._held: dict[Connection, collections.deque[Incoming[Connection]]] = {}  # paused, by age
        self._acceptors: list[Acceptor] = []
        self._outbound: set[Connection] = set()  # dialled by us and not ended
        self._dialing: dict[tuple[str, int, str | None], Future[Flow[Connection]]] = {}
        self._closed: tuple[int, str] | None = None

    # ------------------------------------------------------------------ public

    @property
    def stats(self) -> Stats:
        """A snapshot of the counters: connections accepted, connected, open, failed by cause;
        messages and bytes each way."""
        with self._lock:
            return self._router.stats.copy()

    @property
    def flows(self) -> list[Flow[Connection]]:
        """A snapshot of the open connections' flows, oldest first."""
        with self._lock:
            return list(self._router.table)

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The (IP, port) of every listening socket."""
        with self._lock:
            return [address for acceptor in self._acceptors for address in acceptor.addresses]

    def listen(
        self,
        host: str,
        port: int | None = None,
        *,
        secure: bool = True,
        proxy: ProxyPolicy | None = None,
        reuse_port: bool = False,
    ) -> tuple[str, int]:
        """Add a listener (port: `Config.port` by default, 80 for plain, 0 for any) and accept on
        it in a thread; returns its address (the first, when `host` resolves to several).
        `secure=False` serves plain `ws` (behind a TLS proxy); `proxy` names the trusted proxies
        and what of theirs to believe; `reuse_port`: several processes may listen on the port
        (SO_REUSEPORT)."""
        spec = Listener(host, port, secure, proxy)
        sockets = listen_sockets(host, spec.port_with(self.config), self._backlog, reuse_port=reuse_port)
        warn_if_exposed(spec, (sock.getsockname()[:2] for sock in sockets), logger)
        with self._lock:
            if self._closed is not None:
                for sock in sockets:
                    sock.close()
                raise ConnectionClosedError(*self._closed)
            acceptor = Acceptor(
                [(sock, spec) for sock in sockets],
                self._router.contexts,
                self.config,
                on_open=self._accepted,
                on_end=self._ended,
                deliver=self._deliver,
            )
            self._acceptors.append(acceptor)
        return acceptor.addresses[0]

    def recv(self, timeout: float | None = None) -> Incoming[Connection]:
        """The next message received on any connection, with its flow, waiting at most
        `timeout` seconds (None: no limit). Raises TimeoutError when none came in time, and
        ConnectionClosedError once the endpoint is closed and every message was taken."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._readable:
            while not self._incoming:
                if self._closed is not None:
                    raise ConnectionClosedError(*self._closed)
                if deadline is None:
                    self._readable.wait()
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError("no message received in time")
                    self._readable.wait(remaining)
            incoming = self._incoming.popleft()
            resume = self._refill() if self._held and len(self._incoming) <= self._max_queue // 2 else []
        for conn in resume:
            conn._resume()
        return incoming

    def __iter__(self) -> Iterator[Incoming[Connection]]:
        """Received messages until the endpoint is closed."""
        while True:
            try:
                yield self.recv()
            except ConnectionClosedError:
                return

    def send(
        self, message: bytes | str, to: int | str | tuple[str, int], *, binary: bool | None = None
    ) -> Flow[Connection]:
        """Send one SIP message, reusing or opening a connection; returns the flow used. Waits
        while the connection has too much queued (bounded by `send_timeout`), and while a
        connection is opened (bounded by `handshake_timeout` and `tls_handshake_timeout`).

        Raises NoRoute (a gone flow, a browser's `*.invalid` host, not a WebSocket
        destination), ConnectFailed, OSError (name resolution, TCP), or ConnectionClosedError
        when the flow closed meanwhile or the endpoint is closed."""
        with self._lock:
            if self._closed is not None:
                raise ConnectionClosedError(*self._closed)
            target = self._router.target(to)
        flow = target if isinstance(target, Flow) else self._flow_for(target)
        flow.connection.send(message, binary=binary)
        with self._lock:
            self._router.stats.sent(len(message))
        return flow

    def close(self, code: int = 1001, reason: str = "going away") -> None:
        """Stop listening, close every connection with `code`, and wait until their threads
        are gone. Messages already received can still be taken with `recv()`."""
        with self._lock:
            if self._closed is None:
                self._closed = (code, reason)
            acceptors, self._acceptors = self._acceptors, []
            self._readable.notify_all()
        for acceptor in acceptors:
            acceptor.stop()
        # From here no connection is made: a dial under way sees `_closed` and closes its own.
        with self._lock:
            connections = self._outbound | {flow.connection for flow in self._router.table}
        for acceptor in acceptors:
            connections.update(acceptor.connections())
        for conn in connections:
            conn._begin_close(code, reason)
        for conn in connections:
            conn.wait_closed()
        for acceptor in acceptors:
            acceptor.close(code, reason)

    def __enter__(self) -> Endpoint:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --------------------------------------------------------------- internals

    def _flow_for(self, dial: Dial) -> Flow[Connection]:
        infos = socket.getaddrinfo(dial.host, dial.port, type=socket.SOCK_STREAM)
        addresses = [(str(info[4][0]), int(info[4][1])) for info in infos]
        with self._lock:
            plan = self._router.plan(dial, addresses)
            if isinstance(plan, Flow):
                return plan
            future = self._dialing.get(plan.key)
            shared = future is not None
            if future is None:
                future = self._dialing[plan.key] = Future()
        if shared:  # another send is dialling the same destination: share its outcome
            return future.result()
        try:
            flow = self._dial_any(addresses, dial, plan)
        except BaseException as exc:
            future.set_exception(exc)
            raise
        else:
            future.set_result(flow)
            return flow
        finally:
            with self._lock:
                del self._dialing[plan.key]

    def _dial_any(self, addresses: list[tuple[str, int]], dial: Dial, plan: DialPlan) -> Flow[Connection]:
        """Try each resolved address in turn (IPv6 and IPv4 alike) until one connects."""
        error: OSError | None = None
        for address in addresses:
            try:
                conn = start_client(
                    address,
                    dial.host,
                    dial.resource,
                    plan.context,
                    plan.config,
                    timeout=plan.config.handshake_timeout,
                    on_open=functools.partial(self._connected, tls_domain=plan.tls_domain),
                    on_end=self._ended,
                    deliver=self._deliver,
                )
            except OSError as exc:
                error = exc
                continue
            with self._lock:
                closed = self._closed
                if closed is None:
                    self._outbound.add(conn)
            if closed is not None:
                conn.close(*closed)
                raise ConnectionClosedError(*closed)
            conn._wait_open()
            with self._lock:
                flow = self._router.flow_of(conn)
            if flow is None:  # it has ended already
                ended = conn.closed
                raise ConnectionClosedError(*((None, "") if ended is None else (ended.code, ended.reason)))
            return flow
        assert error is not None
        raise error

    # Called by connections, in their I/O threads.

    def _accepted(self, conn: Connection) -> None:
        with self._lock:
            self._router.opened(conn, conn.remote_address, conn.local_address, accepted=True)

    def _connected(self, conn: Connection, tls_domain: str | None) -> None:
        with self._lock:
            self._router.opened(
                conn, conn.remote_address, conn.local_address, accepted=False, tls_domain=tls_domain
            )

    def _deliver(self, conn: Connection, message: Message) -> bool:
        """Queue a message; False when there is no room (the connection then stops reading)."""
        with self._lock:
            flow = self._router.flow_of(conn)
            assert flow is not None, "a message before the handshake's end"
            self._router.stats.received(message)
            incoming = Incoming(message, flow)
            held = self._held.get(conn)
            if held is not None:  # older messages of this connection are waiting: keep the order
                held.append(incoming)
                return False
            if len(self._incoming) >= self._max_queue:
                self._held[conn] = collections.deque((incoming,))
                return False
            self._incoming.append(incoming)
            self._readable.notify()
            return True

    def _ended(self, conn: Connection) -> None:
        closed = conn.closed
        assert closed is not None
        with self._lock:
            self._outbound.discard(conn)
            self._router.ended(conn, closed)

    def _refill(self) -> list[Connection]:
        """Under the lock: move held messages into the queue, from the connection paused first;
        returns the connections emptied, which may read again."""
        resume: list[Connection] = []
        while self._held and len(self._incoming) < self._max_queue:
            conn, held = next(iter(self._held.items()))
            while held and len(self._incoming) < self._max_queue:
                self._incoming.append(held.popleft())
            if held:
                break
            del self._held[conn]
            resume.append(conn)
        self._readable.notify_all()
        return resume
