"""The asyncio and trio harnesses: each server in a thread with its own loop, our client in a new one."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import queue
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager

import trio
from adapter_helpers import REGISTER, client_domain
from harness import (
    BURST,
    CLOSE_ME,
    FLOOD,
    FLOOD_ME,
    LATE,
    LIMIT,
    RAISE_ME,
    TLS,
    AsyncConnection,
    Exchange,
    Harness,
    Message,
    Mode,
    R,
    Running,
    _Dialling,
    _join,
    _record,
    _Serving,
    _thread,
    _uri,
)

from sansio_wss import (
    Config,
    ConnectionClosedError,
)
from sansio_wss.adapters import asyncio as wss_asyncio
from sansio_wss.adapters import trio as wss_trio


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
