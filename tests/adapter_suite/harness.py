"""One harness per adapter: its server in a background thread, its client as a plain call."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import trio
from adapter_helpers import client_domain, server_domain

from sansio_wss import (
    Config,
    ConnectFailed,
    ConnectionClosed,
    ConnectionClosedError,
    InvalidSipMessage,
    SipMessageReceived,
    TLSDomain,
)
from sansio_wss.adapters import asyncio as wss_asyncio
from sansio_wss.adapters import sync as wss_sync
from sansio_wss.adapters import trio as wss_trio

__all__ = ["ADAPTERS", "CLOSE_ME", "FLOOD", "Harness", "Message", "Mode", "Running", "harness_for"]

Message = SipMessageReceived | InvalidSipMessage
Mode = Literal["echo", "flood"]

ADAPTERS = ("asyncio", "trio", "sync")
CLOSE_ME = b"X-Close-Me: now"
"""A message holding this is echoed, then the server handler closes the connection."""
FLOOD = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 60000\r\n\r\n" + b"x" * 60_000
LIMIT = 5.0  # bound on every client call and on server start and stop


@dataclass
class Running:
    """A server in a background thread: where it listens, what its handler saw."""

    port: int
    seen: list[Message] = field(default_factory=list)
    closed: list[ConnectionClosed] = field(default_factory=list)
    flood_started: list[float] = field(default_factory=list)

    def wait_closed(self, count: int = 1, timeout: float = LIMIT) -> ConnectionClosed:
        """The `count`-th server connection's final event, once its handler has ended."""
        deadline = time.monotonic() + timeout
        while len(self.closed) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.closed)} server connections ended, wanted {count}")
            time.sleep(0.01)
        return self.closed[count - 1]


def _record(running: Running, closed: ConnectionClosed | None) -> None:
    assert closed is not None, "handler ended before its connection did"
    running.closed.append(closed)


class AsyncConnection(Protocol):
    """What the asyncio and trio adapters' connections have in common, for one handler."""

    @property
    def closed(self) -> ConnectionClosed | None: ...

    def __aiter__(self) -> AsyncIterator[Message]: ...

    async def send(self, message: bytes | str) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...

    async def wait_closed(self) -> None: ...


async def _serve_async(conn: AsyncConnection, mode: Mode, running: Running) -> None:
    """The suite's server handler for the async adapters: echo (closing on request), or flood."""
    try:
        if mode == "flood":
            running.flood_started.append(time.monotonic())
            while True:
                await conn.send(FLOOD)
        async for message in conn:
            running.seen.append(message)
            await conn.send(message.message)
            if CLOSE_ME in message.message:
                await conn.close()
    except ConnectionClosedError:
        pass
    await conn.wait_closed()
    _record(running, conn.closed)


class Harness:
    """The adapter-specific part of a conformance test."""

    name: str

    @contextlib.contextmanager
    def serve(
        self, *, config: Config | None = None, tls: Sequence[TLSDomain] | None = None, mode: Mode = "echo"
    ) -> Iterator[Running]:
        """Run the adapter's server on 127.0.0.1 in a thread until the block ends."""
        ready: queue.Queue[int | BaseException] = queue.Queue()
        domains = list(tls) if tls is not None else [server_domain()]
        holder: list[Running] = []
        stop = self._start(domains, config, mode, ready, holder)
        try:
            got = ready.get(timeout=LIMIT)
            if isinstance(got, BaseException):
                raise got
            yield holder[0]
        finally:
            stop()

    def _start(
        self,
        tls: list[TLSDomain],
        config: Config | None,
        mode: Mode,
        ready: queue.Queue[int | BaseException],
        holder: list[Running],
    ) -> Callable[[], None]:
        raise NotImplementedError

    def exchange(
        self,
        port: int,
        messages: Sequence[bytes],
        *,
        config: Config | None = None,
        tls: TLSDomain | None = None,
        close: bool = True,
    ) -> tuple[list[Message], ConnectionClosed]:
        """Our client: send each message and read one reply to it, then close (or, with
        close=False, wait for the server to close); returns the replies and the final event."""
        raise NotImplementedError

    def connect_fails(
        self, port: int, *, config: Config | None = None, tls: TLSDomain | None = None
    ) -> ConnectFailed:
        """Our client's connect, expected to raise ConnectFailed."""
        raise NotImplementedError


def _uri(port: int) -> str:
    return f"wss://127.0.0.1:{port}/ws"


def _thread(target: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def _join(thread: threading.Thread) -> None:
    thread.join(LIMIT * 2)
    assert not thread.is_alive(), f"{thread.name} did not stop"


class AsyncioHarness(Harness):
    name = "asyncio"

    def _start(
        self,
        tls: list[TLSDomain],
        config: Config | None,
        mode: Mode,
        ready: queue.Queue[int | BaseException],
        holder: list[Running],
    ) -> Callable[[], None]:
        control: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

        async def handler(conn: wss_asyncio.Connection) -> None:
            await _serve_async(conn, mode, holder[0])

        async def main() -> None:
            try:
                server = await wss_asyncio.serve(handler, [("127.0.0.1", 0)], tls=tls, config=config)
            except BaseException as exc:
                ready.put(exc)
                return
            stop = asyncio.Event()
            control.append((asyncio.get_running_loop(), stop))
            holder.append(Running(server.addresses[0][1]))
            ready.put(holder[0].port)
            await stop.wait()
            await asyncio.wait_for(server.close(), LIMIT)

        thread = _thread(lambda: asyncio.run(main()), "harness asyncio server")

        def stop() -> None:
            if control:
                loop, event = control[0]
                loop.call_soon_threadsafe(event.set)
            _join(thread)

        return stop

    def exchange(
        self,
        port: int,
        messages: Sequence[bytes],
        *,
        config: Config | None = None,
        tls: TLSDomain | None = None,
        close: bool = True,
    ) -> tuple[list[Message], ConnectionClosed]:
        async def main() -> tuple[list[Message], ConnectionClosed]:
            conn = await wss_asyncio.connect(_uri(port), config=config, tls=tls or client_domain())
            replies: list[Message] = []
            for message in messages:
                await conn.send(message)
                replies.append(await conn.recv())
            if close:
                await conn.close()
            else:
                with contextlib.suppress(ConnectionClosedError):
                    replies.append(await conn.recv())
                await conn.wait_closed()
            assert conn.closed is not None
            return replies, conn.closed

        return asyncio.run(asyncio.wait_for(main(), LIMIT))

    def connect_fails(
        self, port: int, *, config: Config | None = None, tls: TLSDomain | None = None
    ) -> ConnectFailed:
        async def main() -> ConnectFailed:
            try:
                conn = await wss_asyncio.connect(_uri(port), config=config, tls=tls or client_domain())
            except ConnectFailed as exc:
                return exc
            await conn.close()
            raise AssertionError("connect succeeded")

        return asyncio.run(asyncio.wait_for(main(), LIMIT))


class TrioHarness(Harness):
    name = "trio"

    def _start(
        self,
        tls: list[TLSDomain],
        config: Config | None,
        mode: Mode,
        ready: queue.Queue[int | BaseException],
        holder: list[Running],
    ) -> Callable[[], None]:
        control: list[tuple[trio.lowlevel.TrioToken, trio.CancelScope]] = []

        async def handler(conn: wss_trio.Connection) -> None:
            await _serve_async(conn, mode, holder[0])

        async def main() -> None:
            try:
                async with trio.open_nursery() as nursery:
                    addresses = await nursery.start(
                        functools.partial(wss_trio.serve, handler, [("127.0.0.1", 0)], tls=tls, config=config)
                    )
                    control.append((trio.lowlevel.current_trio_token(), nursery.cancel_scope))
                    holder.append(Running(addresses[0][1]))
                    ready.put(holder[0].port)
            except BaseException as exc:
                ready.put(exc)

        thread = _thread(lambda: trio.run(main), "harness trio server")

        def stop() -> None:
            if control:
                token, scope = control[0]
                with contextlib.suppress(trio.RunFinishedError):
                    trio.from_thread.run_sync(scope.cancel, trio_token=token)
            _join(thread)

        return stop

    def exchange(
        self,
        port: int,
        messages: Sequence[bytes],
        *,
        config: Config | None = None,
        tls: TLSDomain | None = None,
        close: bool = True,
    ) -> tuple[list[Message], ConnectionClosed]:
        result: list[tuple[list[Message], ConnectionClosed]] = []

        async def main() -> None:
            with trio.fail_after(LIMIT):
                async with wss_trio.open_connection(
                    _uri(port), config=config, tls=tls or client_domain()
                ) as conn:
                    replies: list[Message] = []
                    for message in messages:
                        await conn.send(message)
                        replies.append(await conn.recv())
                    if close:
                        await conn.close()
                    else:
                        with contextlib.suppress(ConnectionClosedError):
                            replies.append(await conn.recv())
                        await conn.wait_closed()
                assert conn.closed is not None
                result.append((replies, conn.closed))

        trio.run(main)
        return result[0]

    def connect_fails(
        self, port: int, *, config: Config | None = None, tls: TLSDomain | None = None
    ) -> ConnectFailed:
        failures: list[ConnectFailed] = []

        async def main() -> None:
            with trio.fail_after(LIMIT):
                try:
                    conn = await wss_trio.connect(_uri(port), config=config, tls=tls or client_domain())
                except ConnectFailed as exc:
                    failures.append(exc)
                    return
                async with conn:
                    await conn.close()
                raise AssertionError("connect succeeded")

        trio.run(main)
        return failures[0]


class SyncHarness(Harness):
    name = "sync"

    def _start(
        self,
        tls: list[TLSDomain],
        config: Config | None,
        mode: Mode,
        ready: queue.Queue[int | BaseException],
        holder: list[Running],
    ) -> Callable[[], None]:
        def handler(conn: wss_sync.Connection) -> None:
            running = holder[0]
            try:
                if mode == "flood":
                    running.flood_started.append(time.monotonic())
                    while True:
                        conn.send(FLOOD)
                for message in conn:
                    running.seen.append(message)
                    conn.send(message.message)
                    if CLOSE_ME in message.message:
                        conn.close()
            except ConnectionClosedError:
                pass
            assert conn.wait_closed(LIMIT)
            _record(running, conn.closed)

        try:
            server = wss_sync.serve(handler, [("127.0.0.1", 0)], tls=tls, config=config)
        except BaseException as exc:
            ready.put(exc)
            return lambda: None
        holder.append(Running(server.addresses[0][1]))
        ready.put(holder[0].port)
        return server.close

    def exchange(
        self,
        port: int,
        messages: Sequence[bytes],
        *,
        config: Config | None = None,
        tls: TLSDomain | None = None,
        close: bool = True,
    ) -> tuple[list[Message], ConnectionClosed]:
        conn = wss_sync.connect(_uri(port), config=config, tls=tls or client_domain(), timeout=LIMIT)
        try:
            replies: list[Message] = []
            for message in messages:
                conn.send(message)
                replies.append(conn.recv(timeout=LIMIT))
            if close:
                conn.close()
            else:
                with contextlib.suppress(ConnectionClosedError):
                    replies.append(conn.recv(timeout=LIMIT))
                assert conn.wait_closed(LIMIT)
        finally:
            conn.close()
        assert conn.closed is not None
        return replies, conn.closed

    def connect_fails(
        self, port: int, *, config: Config | None = None, tls: TLSDomain | None = None
    ) -> ConnectFailed:
        try:
            conn = wss_sync.connect(_uri(port), config=config, tls=tls or client_domain(), timeout=LIMIT)
        except ConnectFailed as exc:
            return exc
        conn.close()
        raise AssertionError("connect succeeded")


def harness_for(name: str) -> Harness:
    """The harness of the adapter called `name` (one of ADAPTERS)."""
    harnesses: dict[str, type[Harness]] = {
        "asyncio": AsyncioHarness,
        "trio": TrioHarness,
        "sync": SyncHarness,
    }
    return harnesses[name]()
