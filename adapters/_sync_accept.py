"""The blocking adapter's listening sockets, and the thread that accepts on them."""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Callable

from sansio_wss import Config, Listener

from ._listen import accept_driver
from ._sync_io import Connection, Message, Selector, Waker, logger
from ._tls import TLSContexts

__all__ = ["Acceptor"]


class Acceptor:
    """Listening sockets and the thread that accepts on them; it owns every connection it
    made, and the threads given to it, until `close()` has ended them all."""

    def __init__(
        self,
        listeners: list[tuple[socket.socket, Listener]],
        contexts: TLSContexts,
        config: Config,
        *,
        on_open: Callable[[Connection], None] | None = None,
        on_end: Callable[[Connection], None] | None = None,
        deliver: Callable[[Connection, Message], bool] | None = None,
    ) -> None:
        """Start accepting on `listeners` (sockets non-blocking, bound, listening, each with the
        `Listener` it serves); hooks as `Connection`'s."""
        self._listeners = dict(listeners)
        self.addresses: list[tuple[str, int]] = [
            (s.getsockname()[0], s.getsockname()[1]) for s, _ in listeners
        ]
        """The (IP, port) of every listening socket."""
        self._contexts = contexts
        self._config = config
        self._on_open = on_open
        self._on_end = on_end
        self._deliver = deliver
        self._lock = threading.Lock()
        self._connections: set[Connection] = set()
        self._threads: set[threading.Thread] = set()  # I/O threads, and those given by add_thread
        self._closing = False
        self._waker = Waker()
        self._thread = threading.Thread(target=self._accept_loop, name="sansio-wss accept", daemon=True)
        self._thread.start()

    def connections(self) -> list[Connection]:
        """The connections accepted and not yet ended."""
        with self._lock:
            return list(self._connections)

    def add_thread(self, thread: threading.Thread) -> None:
        """A thread that `close()` must join (a handler's)."""
        with self._lock:
            self._threads.add(thread)

    def stop(self) -> None:
        """Stop accepting and close the listening sockets; connections stay open."""
        with self._lock:
            first = not self._closing
            self._closing = True
        if first:
            self._waker.wake()
            self._thread.join()
            for sock in self._listeners:
                sock.close()
            self._waker.close()

    def close(self, code: int, reason: str) -> None:
        """Stop accepting, close every connection with `code`, and join every thread."""
        self.stop()
        connections = self.connections()
        for conn in connections:
            conn._begin_close(code, reason)
        for conn in connections:
            conn.wait_closed()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join()

    # --------------------------------------------------------------- internals

    def _accept_loop(self) -> None:
        selector = Selector()
        try:
            selector.register(self._waker.fileno(), selectors.EVENT_READ)
            for sock in self._listeners:
                selector.register(sock, selectors.EVENT_READ)
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
            time.sleep(0.1)
            return
        try:
            local = sock.getsockname()
            now = time.monotonic()
            driver = accept_driver(self._listeners[listener], self._contexts, self._config, local[:2], now)
            if driver is None:  # no TLS domain serves this listener
                sock.close()
                return
            conn = Connection(sock, driver, on_open=self._on_open, on_end=self._ended, deliver=self._deliver)
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

    def _ended(self, conn: Connection) -> None:
        with self._lock:
            self._connections.discard(conn)
        if self._on_end is not None:
            self._on_end(conn)
