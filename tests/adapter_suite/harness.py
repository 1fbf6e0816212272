"""One harness per adapter: its server in a background thread, its client as a plain call."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import queue
import ssl
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

import trio
from adapter_helpers import REGISTER, client_domain, server_domain

from sansio_wss import (
    Config,
    ConnectFailed,
    ConnectionClosed,
    ConnectionClosedError,
    InvalidSipMessage,
    Opened,
    SipMessageReceived,
    TLSDomain,
)
from sansio_wss.adapters import asyncio as wss_asyncio
from sansio_wss.adapters import sync as wss_sync
from sansio_wss.adapters import trio as wss_trio

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

    listeners: list[tuple[str, int]]
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
        listeners: Sequence[tuple[str, int]] = (LISTENER,),
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


# ---------------------------------------------------------------- async adapters


async def _serve_async(
    conn: AsyncConnection, mode: Mode, running: Running, sleep: Callable[[float], Awaitable[None]]
) -> None:
    """The suite's server handler for the async adapters (see `Mode`)."""
    try:
        if mode in ("flood", "burst"):
            running.flood_started.append(time.monotonic())
            for _ in itertools.repeat(None) if mode == "flood" else range(BURST):
                await conn.send(FLOOD)
            return  # the adapter closes the connection
        if mode == "late":
            await sleep(LATE)
        async for message in conn:
            running.seen.append(message)
            if RAISE_ME in message.message:
                raise RuntimeError("the handler fails, as asked")
            if FLOOD_ME in message.message:
                running.flood_started.append(time.monotonic())
                while True:
                    await conn.send(FLOOD)
            await conn.send(message.message)
            if CLOSE_ME in message.message:
                await conn.close()
    except ConnectionClosedError:
        pass
    await conn.wait_closed()
    _record(running, conn.closed)


class _AsyncHarness(Harness):
    """The client side of the asyncio and trio harnesses, written once."""

    def _run(self, main: Callable[[], Awaitable[R]]) -> R:
        """Run `main()` in a new event loop, bounded by LIMIT."""
        raise NotImplementedError

    def _connection(
        self, uri: str, config: Config | None, tls: TLS, host: str | None
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        """Our client's connection to `uri` (from `host`), closed when the block ends."""
        raise NotImplementedError

    async def _sleep(self, seconds: float) -> None:
        raise NotImplementedError

    async def _together(self, functions: Sequence[Callable[[], Awaitable[None]]]) -> None:
        raise NotImplementedError

    def _exchange(self, messages: Sequence[bytes], asked: _Dialling) -> Exchange:
        async def main() -> Exchange:
            async with self._connection(asked.uri, asked.config, asked.tls, asked.host) as conn:
                assert conn.opened is not None
                await self._sleep(asked.idle)
                replies: list[Message] = []
                with contextlib.suppress(ConnectionClosedError):
                    for message in messages:
                        await conn.send(message)
                        replies.append(await conn.recv())
                    if asked.close:
                        await conn.close()
                    replies.extend([message async for message in conn])
                await conn.wait_closed()
                raised: list[Exception] = []
                for call in (conn.recv, functools.partial(conn.send, REGISTER)):
                    try:
                        await call()
                    except Exception as exc:
                        raised.append(exc)
                await conn.close()
                assert conn.closed is not None
                return Exchange(
                    replies, conn.closed, conn.opened, conn.local_address, conn.remote_address, raised
                )

        return self._run(main)

    def send_together(self, port: int, batches: Sequence[Sequence[bytes]]) -> list[Message]:
        async def main() -> list[Message]:
            async with self._connection(_uri("127.0.0.1", port), None, client_domain(), None) as conn:

                def sender(batch: Sequence[bytes]) -> Callable[[], Awaitable[None]]:
                    async def send() -> None:
                        for message in batch:
                            await conn.send(message)

                    return send

                await self._together([sender(batch) for batch in batches])
                await self._sleep(LATE)
                return [await conn.recv() for batch in batches for _ in batch]

        return self._run(main)

    def connect_error(self, uri: str, *, config: Config | None = None, tls: TLS = None) -> Exception:
        async def main() -> Exception:
            try:
                async with self._connection(uri, config, tls, None):
                    pass
            except Exception as exc:
                return exc
            raise AssertionError("connect succeeded")

        return self._run(main)


class AsyncioHarness(_AsyncHarness):
    name = "asyncio"
    logger = None

    def _start(self, asked: _Serving, ready: queue.Queue[Running | BaseException]) -> Callable[[], None]:
        control: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        holder: list[Running] = []

        async def handler(conn: wss_asyncio.Connection) -> None:
            await _serve_async(conn, asked.mode, holder[0], asyncio.sleep)

        async def main() -> None:
            try:
                server = await wss_asyncio.serve(handler, asked.listeners, tls=asked.tls, config=asked.config)
            except BaseException as exc:
                ready.put(exc)
                return
            async with server:
                stop = asyncio.Event()
                control.append((asyncio.get_running_loop(), stop))
                holder.append(Running(server.addresses))
                ready.put(holder[0])
                await stop.wait()

        thread = _thread(lambda: asyncio.run(main()), "harness asyncio server")

        def stop() -> None:
            if control:
                loop, event = control[0]
                loop.call_soon_threadsafe(event.set)
            _join(thread)

        return stop

    def _run(self, main: Callable[[], Awaitable[R]]) -> R:
        return asyncio.run(asyncio.wait_for(main(), LIMIT))

    @contextlib.asynccontextmanager
    async def _connection(
        self, uri: str, config: Config | None, tls: TLS, host: str | None
    ) -> AsyncIterator[AsyncConnection]:
        local = None if host is None else (host, 0)
        conn = await wss_asyncio.connect(uri, config=config, tls=tls, local_address=local)
        try:
            yield conn
        finally:
            await conn.close()

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def _together(self, functions: Sequence[Callable[[], Awaitable[None]]]) -> None:
        await asyncio.gather(*(function() for function in functions))


class TrioHarness(_AsyncHarness):
    name = "trio"
    logger = "sansio_wss.adapters.trio"

    def _start(self, asked: _Serving, ready: queue.Queue[Running | BaseException]) -> Callable[[], None]:
        control: list[tuple[trio.lowlevel.TrioToken, trio.CancelScope]] = []
        holder: list[Running] = []

        async def handler(conn: wss_trio.Connection) -> None:
            await _serve_async(conn, asked.mode, holder[0], trio.sleep)

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                try:
                    addresses = await nursery.start(
                        functools.partial(
                            wss_trio.serve, handler, asked.listeners, tls=asked.tls, config=asked.config
                        )
                    )
                except BaseException as exc:
                    ready.put(exc)
                    return
                control.append((trio.lowlevel.current_trio_token(), nursery.cancel_scope))
                holder.append(Running(addresses))
                ready.put(holder[0])

        thread = _thread(lambda: trio.run(main), "harness trio server")

        def stop() -> None:
            if control:
                token, scope = control[0]
                with contextlib.suppress(trio.RunFinishedError):
                    trio.from_thread.run_sync(scope.cancel, trio_token=token)
            _join(thread)

        return stop

    def _run(self, main: Callable[[], Awaitable[R]]) -> R:
        async def bounded() -> R:
            with trio.fail_after(LIMIT):
                return await main()

        return trio.run(bounded)

    def _connection(
        self, uri: str, config: Config | None, tls: TLS, host: str | None
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        return wss_trio.open_connection(uri, config=config, tls=tls, local_address=host)

    async def _sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)

    async def _together(self, functions: Sequence[Callable[[], Awaitable[None]]]) -> None:
        async with trio.open_nursery() as nursery:
            for function in functions:
                nursery.start_soon(function)


# ---------------------------------------------------------------------- sync


class SyncHarness(Harness):
    name = "sync"
    logger = "sansio_wss.adapters.sync"

    def _start(self, asked: _Serving, ready: queue.Queue[Running | BaseException]) -> Callable[[], None]:
        holder: list[Running] = []

        def handler(conn: wss_sync.Connection) -> None:
            """The suite's server handler for the blocking adapter (see `Mode`)."""
            running = holder[0]
            try:
                if asked.mode in ("flood", "burst"):
                    running.flood_started.append(time.monotonic())
                    for _ in itertools.repeat(None) if asked.mode == "flood" else range(BURST):
                        conn.send(FLOOD)
                    return  # the adapter closes the connection
                if asked.mode == "late":
                    time.sleep(LATE)
                for message in conn:
                    running.seen.append(message)
                    if RAISE_ME in message.message:
                        raise RuntimeError("the handler fails, as asked")
                    if FLOOD_ME in message.message:
                        running.flood_started.append(time.monotonic())
                        while True:
                            conn.send(FLOOD)
                    conn.send(message.message)
                    if CLOSE_ME in message.message:
                        conn.close()
            except ConnectionClosedError:
                pass
            assert conn.wait_closed(LIMIT)
            _record(running, conn.closed)

        try:
            server = wss_sync.serve(handler, asked.listeners, tls=asked.tls, config=asked.config)
        except BaseException as exc:
            ready.put(exc)
            return lambda: None
        holder.append(Running(server.addresses))

        def run() -> None:
            with server:  # closed once more on the way out: nothing more happens
                ready.put(holder[0])
                server.serve_forever()

        thread = _thread(run, "harness sync server")

        def stop() -> None:
            server.close()
            _join(thread)

        return stop

    def _exchange(self, messages: Sequence[bytes], asked: _Dialling) -> Exchange:
        local = (asked.host, 0)
        with wss_sync.connect(
            asked.uri, config=asked.config, tls=asked.tls, local_address=local, timeout=LIMIT
        ) as conn:
            assert conn.opened is not None
            time.sleep(asked.idle)
            replies: list[Message] = []
            with contextlib.suppress(ConnectionClosedError):
                for message in messages:
                    conn.send(message)
                    replies.append(conn.recv(timeout=LIMIT))
                if asked.close:
                    conn.close()
                while True:
                    replies.append(conn.recv(timeout=LIMIT))
            assert conn.wait_closed(LIMIT)
            raised: list[Exception] = []
            for call in (conn.recv, functools.partial(conn.send, REGISTER)):
                try:
                    call()
                except Exception as exc:
                    raised.append(exc)
        assert conn.closed is not None
        return Exchange(replies, conn.closed, conn.opened, conn.local_address, conn.remote_address, raised)

    def send_together(self, port: int, batches: Sequence[Sequence[bytes]]) -> list[Message]:
        uri = _uri("127.0.0.1", port)
        with wss_sync.connect(uri, tls=client_domain(), timeout=LIMIT) as conn:

            def send(batch: Sequence[bytes]) -> None:
                for message in batch:
                    conn.send(message)

            senders = [threading.Thread(target=send, args=(batch,)) for batch in batches]
            for thread in senders:
                thread.start()
            for thread in senders:
                _join(thread)
            time.sleep(LATE)
            return [conn.recv(timeout=LIMIT) for batch in batches for _ in batch]

    def connect_error(self, uri: str, *, config: Config | None = None, tls: TLS = None) -> Exception:
        try:
            conn = wss_sync.connect(uri, config=config, tls=tls, timeout=LIMIT)
        except Exception as exc:
            return exc
        conn.close()
        raise AssertionError("connect succeeded")


def harness_for(name: str) -> Harness:
    """The harness of the adapter called `name` (one of ADAPTERS)."""
    (harness,) = [kind for kind in (AsyncioHarness, TrioHarness, SyncHarness) if kind.name == name]
    return harness()
