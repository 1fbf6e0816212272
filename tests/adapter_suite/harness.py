"""One harness per adapter: its server in a background thread, its client as a plain call."""

from __future__ import annotations

import contextlib
import queue
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

from adapter_helpers import client_domain, server_domain

from sansio_wss import (
    Config,
    ConnectFailed,
    ConnectionClosed,
    InvalidSipMessage,
    Listener,
    Opened,
    SipMessageReceived,
    TLSDomain,
)

__all__ = [
    "ADAPTERS",
    "BURST",
    "CLOSE_ME",
    "FLOOD",
    "FLOOD_ME",
    "LIMIT",
    "LISTENER",
    "RAISE_ME",
    "Exchange",
    "Harness",
    "Message",
    "Mode",
    "Running",
    "TLS",
    "harness_for",
]

Message = SipMessageReceived | InvalidSipMessage
Mode = Literal["echo", "late", "flood", "burst"]
"""What the server's handler does: echo each message (`late`: after a pause in which it reads
nothing), send FLOOD until the connection fails (`flood`) or BURST times and return (`burst`)."""
TLS = TLSDomain | ssl.SSLContext | None
R = TypeVar("R")

ADAPTERS = ("asyncio", "trio", "sync")
CLOSE_ME = b"X-Close-Me: now"
"""A message holding this is echoed, then the server handler closes the connection."""
RAISE_ME = b"X-Raise-Me: now"
"""A message holding this makes the server handler raise instead of echoing it."""
FLOOD_ME = b"X-Flood-Me: now"
"""A message holding this makes the server handler send FLOOD until the connection fails
(so one connection can stop reading while others are echoed)."""
FLOOD = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 60000\r\n\r\n" + b"x" * 60_000
BURST = 80  # 80 x 60 kB: far more than the socket buffers between us hold
LATE = 0.2  # seconds a `late` handler reads nothing: time for more than its queue to arrive
LIMIT = 5.0  # bound on every client call and on server start and stop
LISTENER = ("127.0.0.1", 0)


@dataclass
class Running:
    """A server in a background thread: where it listens, what its handler saw."""

    addresses: list[tuple[str, int]]
    seen: list[Message] = field(default_factory=list)
    closed: list[ConnectionClosed] = field(default_factory=list)
    flood_started: list[float] = field(default_factory=list)

    @property
    def port(self) -> int:
        """The first listener's port."""
        return self.addresses[0][1]

    def wait_closed(self, count: int = 1, timeout: float = LIMIT) -> ConnectionClosed:
        """The `count`-th server connection's final event, once its handler has ended."""
        deadline = time.monotonic() + timeout
        while len(self.closed) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.closed)} server connections ended, wanted {count}")
            time.sleep(0.01)
        return self.closed[count - 1]


@dataclass
class Exchange:
    """What our client saw of one connection."""

    replies: list[Message]
    closed: ConnectionClosed
    opened: Opened
    local_address: tuple[str, int]
    remote_address: tuple[str, int]
    raised: list[Exception]
    """What `recv()` and then `send()` raised once the connection had ended (a second
    `close()` then must raise nothing)."""


@dataclass(frozen=True)
class _Serving:
    """What `Harness.serve` was asked for."""

    listeners: list[Listener | tuple[str, int]]
    tls: list[TLSDomain]
    config: Config | None
    mode: Mode


@dataclass(frozen=True)
class _Dialling:
    """What `Harness.exchange` was asked for."""

    uri: str
    host: str
    config: Config | None
    tls: TLS
    close: bool
    idle: float


def _record(running: Running, closed: ConnectionClosed | None) -> None:
    assert closed is not None, "handler ended before its connection did"
    running.closed.append(closed)


class AsyncConnection(Protocol):
    """What the asyncio and trio adapters' connections have in common, for one handler and one client."""

    @property
    def closed(self) -> ConnectionClosed | None: ...

    @property
    def local_address(self) -> tuple[str, int]: ...

    @property
    def remote_address(self) -> tuple[str, int]: ...

    opened: Opened | None

    def __aiter__(self) -> AsyncIterator[Message]: ...

    async def recv(self) -> Message: ...

    async def send(self, message: bytes | str) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...

    async def wait_closed(self) -> None: ...


def _uri(host: str, port: int) -> str:
    return f"wss://[{host}]:{port}/ws" if ":" in host else f"wss://{host}:{port}/ws"


def _thread(target: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def _join(thread: threading.Thread) -> None:
    thread.join(LIMIT * 2)
    assert not thread.is_alive(), f"{thread.name} did not stop"


class Harness:
    """The adapter-specific part of a conformance test."""

    name: str
    logger: str | None
    """The logger on which the adapter reports failed handshakes, with their cause (asyncio: none)."""

    @contextlib.contextmanager
    def serve(
        self,
        *,
        config: Config | None = None,
        tls: Sequence[TLSDomain] | None = None,
        mode: Mode = "echo",
        listeners: Sequence[Listener | tuple[str, int]] = (LISTENER,),
    ) -> Iterator[Running]:
        """Run the adapter's server in a thread until the block ends (or raise what `serve` raised)."""
        ready: queue.Queue[Running | BaseException] = queue.Queue()
        domains = list(tls) if tls is not None else [server_domain()]
        stop = self._start(_Serving(list(listeners), domains, config, mode), ready)
        try:
            got = ready.get(timeout=LIMIT)
            if isinstance(got, BaseException):
                raise got
            yield got
        finally:
            stop()

    def _start(self, asked: _Serving, ready: queue.Queue[Running | BaseException]) -> Callable[[], None]:
        raise NotImplementedError

    def exchange(
        self,
        port: int,
        messages: Sequence[bytes],
        *,
        config: Config | None = None,
        tls: TLS = None,
        close: bool = True,
        host: str = "127.0.0.1",
        idle: float = 0.0,
    ) -> Exchange:
        """Our client, from `host` to `host`: after `idle` seconds send each message and read one
        reply to it, then close (with close=False: read until the server closes). A connection
        ended by the server meanwhile ends the exchange early."""
        asked = _Dialling(_uri(host, port), host, config, tls or client_domain(), close, idle)
        return self._exchange(messages, asked)

    def _exchange(self, messages: Sequence[bytes], asked: _Dialling) -> Exchange:
        raise NotImplementedError

    def send_together(self, port: int, batches: Sequence[Sequence[bytes]]) -> list[Message]:
        """Our client: send each batch from a sender of its own (a task or a thread), all at
        once; then, after reading nothing for LATE seconds, read one reply per message and close."""
        raise NotImplementedError

    def connect_error(self, uri: str, *, config: Config | None = None, tls: TLS = None) -> Exception:
        """What our client's connect to `uri` raised (with tls=None: the system's CAs)."""
        raise NotImplementedError

    def connect_fails(self, port: int, *, config: Config | None = None, tls: TLS = None) -> ConnectFailed:
        """Our client's connect to the server at `port`, expected to raise ConnectFailed."""
        error = self.connect_error(_uri("127.0.0.1", port), config=config, tls=tls or client_domain())
        assert isinstance(error, ConnectFailed), repr(error)
        return error


def harness_for(name: str) -> Harness:
    """The harness of the adapter called `name` (one of ADAPTERS)."""
    from harness_async import AsyncioHarness, TrioHarness  # noqa: PLC0415 (they build on this module)
    from harness_sync import SyncHarness  # noqa: PLC0415

    (harness,) = [kind for kind in (AsyncioHarness, TrioHarness, SyncHarness) if kind.name == name]
    return harness()
