"""Blocking-socket adapter: `connect()` and `serve()`, one I/O thread per connection, TLS over memory BIOs."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType

from sansio_wss import (
    ClientConnection,
    Config,
    ConnectFailed,
    ConnectionClosedError,
    ServerConnection,
    TLSDomain,
)

from ._driver import Driver
from ._sync_io import _READABLE, Connection, Message, _Selector, _Waker, listen_sockets, logger
from ._tls import TLSContexts, client_target

__all__ = ["Connection", "Handler", "Message", "Server", "connect", "logger", "serve"]

Handler = Callable[["Connection"], object]
"""A server's per-connection function; it runs in its own thread."""


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
            sockets += listen_sockets(host, port, backlog)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return Server(sockets, handler, contexts, config)
