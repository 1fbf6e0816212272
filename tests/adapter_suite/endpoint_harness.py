"""One endpoint harness per adapter: its `Endpoint` driven by blocking calls from the test's thread.

The async adapters' endpoints run in an event loop in a thread of their own (a `Portal`); the
blocking adapter's endpoint is called directly. An async adapter adds a `Portal` for its library
and an `EndpointHarness` that makes its endpoint.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import trio

from sansio_wss import Config, Flow, ProxyPolicy, TLSDomain
from sansio_wss.adapters import asyncio as wss_asyncio
from sansio_wss.adapters import sync as wss_sync
from sansio_wss.adapters import trio as wss_trio
from sansio_wss.adapters._endpoint import Incoming, Stats

__all__ = [
    "ENDPOINT_ADAPTERS",
    "LIMIT",
    "Destination",
    "EndpointHandle",
    "EndpointHarness",
    "Portal",
    "endpoint_harness",
]

ENDPOINT_ADAPTERS = ("asyncio", "trio", "sync")
LIMIT = 5.0  # bound on every call into an endpoint
R = TypeVar("R")

Destination = int | str | tuple[str, int]
DialConfig = Callable[[str, int], Config]


class EndpointHandle:
    """One endpoint of the adapter under test; every call blocks until done (at most LIMIT)."""

    def listen(
        self, host: str, port: int = 0, *, secure: bool = True, proxy: ProxyPolicy | None = None
    ) -> tuple[str, int]:
        """Add a listener (plain with secure=False; `proxy`: the proxies it trusts)."""
        raise NotImplementedError

    @property
    def addresses(self) -> list[tuple[str, int]]:
        raise NotImplementedError

    def send(self, message: bytes, to: Destination) -> Flow[Any]:
        raise NotImplementedError

    def send_all(
        self, messages: Sequence[bytes], to: Destination, *, together: bool
    ) -> concurrent.futures.Future[list[Flow[Any]]]:
        """Start sending `messages` to `to`, all at once (`together`) or one after the other,
        the adapter's way (threads, tasks); the future holds the flows used, in order."""
        raise NotImplementedError

    def recv(self, timeout: float = LIMIT) -> Incoming[Any]:
        """The next message; TimeoutError when none came within `timeout`."""
        raise NotImplementedError

    @property
    def stats(self) -> Stats:
        """A copy of the counters."""
        raise NotImplementedError

    @property
    def flows(self) -> list[Flow[Any]]:
        """The open flows."""
        raise NotImplementedError

    def close_flow(self, flow: Flow[Any]) -> None:
        """Close the connection of `flow` (1000) and wait until it is closed."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the endpoint (1001 to every connection); it can still be read."""
        raise NotImplementedError

    def release(self) -> None:
        """After `close()`: end what the harness runs for it."""


class EndpointHarness:
    """The adapter-specific part of an endpoint test."""

    name: str

    @contextlib.contextmanager
    def endpoint(
        self,
        *,
        tls: Sequence[TLSDomain] = (),
        config: Config | None = None,
        max_queue: int = 1024,
        dial_config: DialConfig | None = None,
    ) -> Iterator[EndpointHandle]:
        """An endpoint, closed when the block ends."""
        handle = self._open(list(tls), config, max_queue, dial_config)
        try:
            yield handle
        finally:
            try:
                handle.close()
            finally:
                handle.release()

    def _open(
        self, tls: list[TLSDomain], config: Config | None, max_queue: int, dial_config: DialConfig | None
    ) -> EndpointHandle:
        raise NotImplementedError


# ---------------------------------------------------------- async adapters


class AsyncEndpoint(Protocol):
    """What the async adapters' endpoints have in common."""

    @property
    def stats(self) -> Stats: ...

    @property
    def flows(self) -> Iterable[Flow[Any]]: ...

    @property
    def addresses(self) -> list[tuple[str, int]]: ...

    async def listen(
        self, host: str, port: int | None = None, *, secure: bool = True, proxy: ProxyPolicy | None = None
    ) -> tuple[str, int]: ...

    async def recv(self) -> Incoming[Any]: ...

    async def send(self, message: bytes | str, to: Destination) -> Flow[Any]: ...

    async def close(self, code: int = 1001, reason: str = "going away") -> None: ...


class Portal:
    """An async library's event loop in a thread of its own, and what differs between libraries."""

    def start(self, function: Callable[[], Awaitable[R]]) -> concurrent.futures.Future[R]:
        """Run `function()` in the loop; its outcome lands in the future."""
        raise NotImplementedError

    async def gather(self, functions: Sequence[Callable[[], Awaitable[R]]]) -> list[R]:
        """In the loop: run all at once, their results in order."""
        raise NotImplementedError

    async def within(self, seconds: float, function: Callable[[], Awaitable[R]]) -> R:
        """In the loop: `function()`, or TimeoutError after `seconds`."""
        raise NotImplementedError

    def stop(self) -> None:
        """End the loop and its thread."""
        raise NotImplementedError

    def run(self, function: Callable[[], Awaitable[R]], timeout: float = LIMIT) -> R:
        """`function()` in the loop, waited for from this thread."""
        return self.start(function).result(timeout + 1)

    def call(self, function: Callable[[], R]) -> R:
        """`function()` in the loop's thread (to read state the loop changes)."""

        async def call() -> R:
            return function()

        return self.run(call)


class _AsyncEndpoint(EndpointHandle):
    def __init__(self, portal: Portal, make: Callable[[], Awaitable[AsyncEndpoint]]) -> None:
        """`make()` runs in the portal's loop and returns the endpoint."""
        self._portal = portal
        self._closed = False
        try:
            self._endpoint = portal.run(make)
        except BaseException:
            portal.stop()
            raise

    def listen(
        self, host: str, port: int = 0, *, secure: bool = True, proxy: ProxyPolicy | None = None
    ) -> tuple[str, int]:
        return self._portal.run(lambda: self._endpoint.listen(host, port, secure=secure, proxy=proxy))

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return self._portal.call(lambda: self._endpoint.addresses)

    def send(self, message: bytes, to: Destination) -> Flow[Any]:
        return self._portal.run(lambda: self._endpoint.send(message, to))

    def send_all(
        self, messages: Sequence[bytes], to: Destination, *, together: bool
    ) -> concurrent.futures.Future[list[Flow[Any]]]:
        endpoint, portal = self._endpoint, self._portal

        def sender(message: bytes) -> Callable[[], Awaitable[Flow[Any]]]:
            return lambda: endpoint.send(message, to)

        async def send_all() -> list[Flow[Any]]:
            if together:
                return await portal.gather([sender(m) for m in messages])
            return [await endpoint.send(m, to) for m in messages]

        return portal.start(send_all)

    def recv(self, timeout: float = LIMIT) -> Incoming[Any]:
        return self._portal.run(lambda: self._portal.within(timeout, self._endpoint.recv), timeout)

    @property
    def stats(self) -> Stats:
        return self._portal.call(self._endpoint.stats.copy)

    @property
    def flows(self) -> list[Flow[Any]]:
        return self._portal.call(lambda: list(self._endpoint.flows))

    def close_flow(self, flow: Flow[Any]) -> None:
        self._portal.run(flow.connection.close)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._portal.run(self._endpoint.close)

    def release(self) -> None:
        self._portal.stop()


class AsyncioPortal(Portal):
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="harness asyncio", daemon=True)
        self._thread.start()

    def start(self, function: Callable[[], Awaitable[R]]) -> concurrent.futures.Future[R]:
        async def run() -> R:
            return await function()

        return asyncio.run_coroutine_threadsafe(run(), self.loop)

    async def gather(self, functions: Sequence[Callable[[], Awaitable[R]]]) -> list[R]:
        return list(await asyncio.gather(*(f() for f in functions)))

    async def within(self, seconds: float, function: Callable[[], Awaitable[R]]) -> R:
        try:
            return await asyncio.wait_for(function(), seconds)
        except asyncio.TimeoutError:  # not TimeoutError itself before Python 3.11
            raise TimeoutError("no message received in time") from None

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(LIMIT)
        assert not self._thread.is_alive(), "the harness loop did not stop"
        self.loop.close()


class AsyncioEndpointHarness(EndpointHarness):
    name = "asyncio"

    def _open(
        self, tls: list[TLSDomain], config: Config | None, max_queue: int, dial_config: DialConfig | None
    ) -> EndpointHandle:
        async def make() -> AsyncEndpoint:
            return wss_asyncio.Endpoint(tls=tls, config=config, max_queue=max_queue, dial_config=dial_config)

        return _AsyncEndpoint(AsyncioPortal(), make)


class TrioPortal(Portal):
    def __init__(self) -> None:
        started = threading.Event()
        self._stop = trio.Event()

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                self.token = trio.lowlevel.current_trio_token()
                started.set()
                await self._stop.wait()
                nursery.cancel_scope.cancel()

        self._thread = threading.Thread(target=trio.run, args=(main,), name="harness trio", daemon=True)
        self._thread.start()
        assert started.wait(LIMIT), "the harness trio loop did not start"

    def start(self, function: Callable[[], Awaitable[R]]) -> concurrent.futures.Future[R]:
        future: concurrent.futures.Future[R] = concurrent.futures.Future()

        async def run() -> None:
            try:
                future.set_result(await function())
            except Exception as exc:
                future.set_exception(exc)

        self.token.run_sync_soon(self.nursery.start_soon, run)
        return future

    async def gather(self, functions: Sequence[Callable[[], Awaitable[R]]]) -> list[R]:
        results: dict[int, R] = {}

        async def one(index: int, function: Callable[[], Awaitable[R]]) -> None:
            results[index] = await function()

        async with trio.open_nursery() as nursery:
            for index, function in enumerate(functions):
                nursery.start_soon(one, index, function)
        return [results[index] for index in range(len(functions))]

    async def within(self, seconds: float, function: Callable[[], Awaitable[R]]) -> R:
        try:
            with trio.fail_after(seconds):
                return await function()
        except trio.TooSlowError:
            raise TimeoutError("no message received in time") from None

    def stop(self) -> None:
        self.token.run_sync_soon(self._stop.set)
        self._thread.join(LIMIT)
        assert not self._thread.is_alive(), "the harness trio loop did not stop"


class _TrioEndpoint(_AsyncEndpoint):
    """A trio Endpoint lives inside `async with`, entered and left by one task: this one."""

    def __init__(self, portal: TrioPortal, make: Callable[[], wss_trio.Endpoint]) -> None:
        self._release = trio.Event()

        async def hold(task_status: trio.TaskStatus[wss_trio.Endpoint]) -> None:
            async with make() as endpoint:
                task_status.started(endpoint)
                await self._release.wait()

        async def opened() -> wss_trio.Endpoint:
            endpoint: wss_trio.Endpoint = await portal.nursery.start(hold)
            return endpoint

        super().__init__(portal, opened)

    def release(self) -> None:
        portal = self._portal
        assert isinstance(portal, TrioPortal)
        portal.token.run_sync_soon(self._release.set)
        super().release()


class TrioEndpointHarness(EndpointHarness):
    name = "trio"

    def _open(
        self, tls: list[TLSDomain], config: Config | None, max_queue: int, dial_config: DialConfig | None
    ) -> EndpointHandle:
        return _TrioEndpoint(
            TrioPortal(),
            lambda: wss_trio.Endpoint(tls=tls, config=config, max_queue=max_queue, dial_config=dial_config),
        )


# ---------------------------------------------------------------------- sync


class _SyncEndpoint(EndpointHandle):
    def __init__(
        self, tls: list[TLSDomain], config: Config | None, max_queue: int, dial_config: DialConfig | None
    ) -> None:
        self._endpoint = wss_sync.Endpoint(
            tls=tls, config=config, max_queue=max_queue, dial_config=dial_config
        )

    def listen(
        self, host: str, port: int = 0, *, secure: bool = True, proxy: ProxyPolicy | None = None
    ) -> tuple[str, int]:
        return self._endpoint.listen(host, port, secure=secure, proxy=proxy)

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return self._endpoint.addresses

    def send(self, message: bytes, to: Destination) -> Flow[Any]:
        return self._endpoint.send(message, to)

    def send_all(
        self, messages: Sequence[bytes], to: Destination, *, together: bool
    ) -> concurrent.futures.Future[list[Flow[Any]]]:
        endpoint = self._endpoint
        result: concurrent.futures.Future[list[Flow[Any]]] = concurrent.futures.Future()
        if not together:

            def send_in_order() -> None:
                try:
                    result.set_result([endpoint.send(m, to) for m in messages])
                except BaseException as exc:
                    result.set_exception(exc)

            threading.Thread(target=send_in_order, name="harness sender", daemon=True).start()
            return result
        barrier = threading.Barrier(len(messages))
        pool = concurrent.futures.ThreadPoolExecutor(len(messages), thread_name_prefix="harness sender")

        def send(message: bytes) -> Flow[Any]:
            barrier.wait(LIMIT)
            return endpoint.send(message, to)

        futures = [pool.submit(send, m) for m in messages]

        def gather() -> None:
            try:
                result.set_result([f.result() for f in futures])
            except BaseException as exc:
                result.set_exception(exc)
            finally:
                pool.shutdown()

        threading.Thread(target=gather, name="harness gather", daemon=True).start()
        return result

    def recv(self, timeout: float = LIMIT) -> Incoming[Any]:
        return self._endpoint.recv(timeout)

    @property
    def stats(self) -> Stats:
        return self._endpoint.stats

    @property
    def flows(self) -> list[Flow[Any]]:
        return self._endpoint.flows

    def close_flow(self, flow: Flow[Any]) -> None:
        connection: wss_sync.Connection = flow.connection
        connection.close()

    def close(self) -> None:
        self._endpoint.close()


class SyncEndpointHarness(EndpointHarness):
    name = "sync"

    def _open(
        self, tls: list[TLSDomain], config: Config | None, max_queue: int, dial_config: DialConfig | None
    ) -> EndpointHandle:
        return _SyncEndpoint(tls, config, max_queue, dial_config)


def endpoint_harness(name: str) -> EndpointHarness:
    """The endpoint harness of the adapter called `name` (one of ENDPOINT_ADAPTERS)."""
    harnesses: dict[str, type[EndpointHarness]] = {
        "asyncio": AsyncioEndpointHarness,
        "trio": TrioEndpointHarness,
        "sync": SyncEndpointHarness,
    }
    return harnesses[name]()
