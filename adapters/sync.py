"""Blocking-socket adapter: `connect()`, `serve()` and the `Endpoint`, one I/O thread per connection."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from types import TracebackType

from sansio_wss import Config, ConnectionClosedError, Listener, TLSDomain

from ._endpoint import Incoming, Stats
from ._listen import as_listener, listen_sockets, warn_if_exposed
from ._sync_accept import Acceptor
from ._sync_endpoint import Endpoint
from ._sync_io import Connection, Message, logger, start_client
from ._tls import TLSContexts, client_target

__all__ = [
    "Connection",
    "Endpoint",
    "Handler",
    "Incoming",
    "Message",
    "Server",
    "Stats",
    "connect",
    "logger",
    "serve",
]

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
    conn = start_client(
        (target.host, target.port),
        target.host,
        target.resource,
        context,
        config,
        timeout=config.handshake_timeout if timeout is None else timeout,
        local_address=local_address,
    )
    conn._wait_open()
    return conn


class Server:
    """Listeners serving SIP over WSS from an accept thread, one handler thread per connection.

    `close()` stops accepting and closes every connection; made by `serve()`.
    """

    def __init__(
        self,
        listeners: list[tuple[socket.socket, Listener]],
        handler: Handler,
        contexts: TLSContexts,
        config: Config,
    ) -> None:
        """Internal: see `serve()`."""
        self._handler = handler
        self._stopped = threading.Event()
        self._acceptor = Acceptor(listeners, contexts, config, on_open=self._on_open)

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The (IP, port) of every listening socket (useful with port 0)."""
        return list(self._acceptor.addresses)

    def close(self, code: int = 1001, reason: str = "going away") -> None:
        """Stop listening, close every connection with `code`, and wait until their threads are gone.

        Handlers must return once their connection is closed (`recv()` raises then)."""
        self._acceptor.close(code, reason)
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

    def _on_open(self, conn: Connection) -> None:
        thread = threading.Thread(
            target=self._run_handler,
            args=(conn,),
            name=f"sansio-wss handler {conn.remote_address[0]}:{conn.remote_address[1]}",
            daemon=True,
        )
        self._acceptor.add_thread(thread)
        thread.start()

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
    listeners: Iterable[Listener | tuple[str, int]],
    *,
    tls: Iterable[TLSDomain] | TLSContexts,
    config: Config | None = None,
    backlog: int = 1024,
) -> Server:
    """Listen on every `Listener` (or (host, port): `wss`) in `listeners` and run
    `handler(connection)` in a thread for each connection once its handshake succeeds; the
    connection is closed when the handler returns (with 1011 if it raised). Server TLS
    domains are chosen by listener and SNI."""
    config = config or Config()
    contexts = tls if isinstance(tls, TLSContexts) else TLSContexts(tls)
    sockets: list[tuple[socket.socket, Listener]] = []
    try:
        for item in listeners:
            listener = as_listener(item)
            found = listen_sockets(listener.host, listener.port_with(config), backlog)
            sockets += [(sock, listener) for sock in found]
            warn_if_exposed(listener, (sock.getsockname()[:2] for sock in found), logger)
    except BaseException:
        for sock, _ in sockets:
            sock.close()
        raise
    return Server(sockets, handler, contexts, config)
