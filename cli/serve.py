"""`python -m sansio_wss serve`: an app (registrar or echo) on WSS listeners, through any adapter."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import logging
import multiprocessing
import os
import pathlib
import signal
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TextIO

from sansio_wss import Config, ConnectionClosedError, HttpPage, Listener, NoRoute, ProxyPolicy, TLSDomain
from sansio_wss.adapters._endpoint import Incoming, Stats

from .apps import App, Echo, Outgoing
from .certs import generate
from .tracing import ControlServer, TraceOptions, handle_switch_signals, tracing

__all__ = ["ServeOptions", "serve", "test_page"]

_log = logging.getLogger("sansio_wss.cli")
_ADAPTERS = ("asyncio", "trio", "sync")


@dataclass(frozen=True)
class ServeOptions:
    """What `serve` was asked for (the command line, parsed)."""

    listeners: tuple[Listener, ...]
    certificate: str | None
    key: str | None
    adapter: str
    app: str
    config: Config
    workers: int = 1
    """Processes serving the same listeners (SO_REUSEPORT); each has its own app state."""
    trace: TraceOptions | None = None
    """HEP tracing: each process ships its own packets; the control socket switches them all."""
    out: TextIO = sys.stdout


def test_page() -> HttpPage:
    """The browser test page, served at `/` to a plain GET."""
    body = importlib.resources.files("sansio_wss.cli").joinpath("page.html").read_bytes()
    return HttpPage("/", body)


def make_app(name: str, host: str) -> App:
    """The app called `name`: `registrar` (answering as `host`) or `echo`."""
    if name == "echo":
        return Echo()
    from .registrar import Registrar  # noqa: PLC0415 (only the registrar parses SIP)

    return Registrar(domain=None, via_host=host)


def serve(options: ServeOptions) -> int:
    """Run until SIGINT or SIGTERM, then close every connection with 1001; returns 0 (1 when
    a worker failed)."""
    if options.adapter not in _ADAPTERS:
        raise SystemExit(f"--adapter: one of {', '.join(_ADAPTERS)}")
    with _certificate(options) as domain:
        if options.workers == 1:
            _serve_one(options, domain, worker=None)
            return 0
        return _supervise(options, domain)


def _serve_one(options: ServeOptions, domain: TLSDomain | None, worker: int | None) -> None:
    runner = {"asyncio": _run_asyncio, "trio": _run_trio, "sync": _run_sync}[options.adapter]
    who = "" if worker is None else f"worker {worker} "
    trace = options.trace
    with contextlib.ExitStack() as stack:
        if trace is not None:
            tracer, collector = stack.enter_context(tracing(trace))
            options = replace(options, config=options.config.replace(tracer=tracer))
            if worker is None:  # one process: it answers trace commands itself

                def switch(on: bool) -> None:
                    tracer.on = on

                stack.enter_context(ControlServer(trace.control, lambda: tracer.on, switch))
        stats = runner(options, domain, worker)
        print(f"{who}stopped: {stats.as_dict()}", file=options.out, flush=True)
        if trace is not None:
            print(f"{who}tracing: {tracer.stats} {collector.stats}", file=options.out, flush=True)


def _supervise(options: ServeOptions, domain: TLSDomain | None) -> int:
    """Fork the workers (before any thread or event loop exists), pass SIGINT and SIGTERM on
    to them, and wait for them; answer trace commands by signalling them (SIGUSR1, SIGUSR2)."""
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_serve_one, args=(options, domain, number), name=f"serve worker {number}")
        for number in range(options.workers)
    ]

    def signal_workers(number: int) -> None:
        for process in workers:
            if process.pid is not None and process.exitcode is None:
                os.kill(process.pid, number)

    def stop(number: int, frame: object) -> None:
        signal_workers(signal.SIGTERM)

    tracing_on = [options.trace is not None and options.trace.on]

    def switch(on: bool) -> None:
        tracing_on[0] = on
        signal_workers(signal.SIGUSR1 if on else signal.SIGUSR2)

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    with contextlib.ExitStack() as stack:
        control = None
        if options.trace is not None:  # bound before the fork: commands wait in its backlog
            control = ControlServer(options.trace.control, lambda: tracing_on[0], switch)
            stack.callback(control.close)
            stack.enter_context(handle_switch_signals(switch))
        try:
            for process in workers:
                process.start()
            if control is not None:
                control.start()
            for process in workers:
                process.join()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
    return 0 if all(process.exitcode == 0 for process in workers) else 1


@contextlib.contextmanager
def _certificate(options: ServeOptions) -> Iterator[TLSDomain | None]:
    """The server's TLS domain: the certificate given, one generated for the listeners' hosts,
    or none when every listener is plain."""
    if not any(listener.secure for listener in options.listeners):
        yield None
        return
    if options.certificate is not None:
        yield TLSDomain(name="serve", side="server", certificate=options.certificate, private_key=options.key)
        return
    with tempfile.TemporaryDirectory(prefix="sansio-wss-") as directory:
        made = generate(pathlib.Path(directory), (listener.host for listener in options.listeners))
        print(f"certificate: generated, SHA-256 fingerprint {made.fingerprint}", file=options.out, flush=True)
        yield TLSDomain(
            name="serve", side="server", certificate=str(made.certificate), private_key=str(made.key)
        )


def _announce(options: ServeOptions, addresses: Sequence[tuple[str, int]], worker: int | None) -> None:
    if worker:  # worker 0 speaks for all
        return
    workers = f", {options.workers} workers" if options.workers > 1 else ""
    for listener, (host, port) in zip(options.listeners, addresses, strict=True):
        shown = f"[{host}]" if ":" in host else host
        page = "https" if listener.secure else "http"
        behind = _proxy_note(listener)
        print(
            f"listening on {listener.scheme}://{shown}:{port}/{behind} (adapter {options.adapter}, "
            f"app {options.app}{workers}); test page {page}://{shown}:{port}/",
            file=options.out,
            flush=True,
        )
    trace = options.trace
    if trace is not None:
        state = "on" if trace.on else "off"
        print(
            f"tracing: HEP to {trace.destination} ({trace.payload_format.value}, capture id "
            f"{trace.capture_id}), {state}; switch with: python -m sansio_wss trace on|off "
            f"--control {trace.control}",
            file=options.out,
            flush=True,
        )


def _proxy_note(listener: Listener) -> str:
    """What a listener believes of its proxies, for the start-up line."""
    proxy = listener.proxy
    if proxy is None:
        return ""
    believed = [
        name for name, on in (("PROXY header", proxy.proxy_protocol), (proxy.forwarded, True)) if on and name
    ]
    trusted = ", ".join(sorted(str(network) for network in proxy.trusted))
    return f" ({' and '.join(believed)} from {trusted})"


def _domains(domain: TLSDomain | None) -> list[TLSDomain]:
    return [] if domain is None else [domain]


def _stopping(options: ServeOptions, worker: int | None) -> None:
    who = "" if worker is None else f"worker {worker} "
    print(f"{who}stopping: closing every connection with 1001", file=options.out, flush=True)


def _app(options: ServeOptions, address: tuple[str, int]) -> App:
    """The app, answering as the first listener's address (its real port when given 0)."""
    host, port = address
    return make_app(options.app, f"[{host}]:{port}" if ":" in host else f"{host}:{port}")


def _replies(app: App, incoming: Incoming[Any], now: float) -> Sequence[Outgoing]:
    return app.received(incoming.event.message, incoming.flow.flow_id, now, incoming.event.binary)


def _relay_failed(app: App, incoming: Incoming[Any], out: Outgoing, now: float) -> Sequence[Outgoing]:
    """A send to `out.flow_id` failed: the app forgets that flow and answers again (480)."""
    _log.info("flow %s is gone", out.flow_id)
    app.flow_closed(out.flow_id)
    if out.flow_id == incoming.flow.flow_id:
        return ()
    return _replies(app, incoming, now)


# ---------------------------------------------------------------------- runners


class _AsyncEndpoint(Protocol):
    """What `_pump` needs of the asyncio and trio endpoints."""

    def __aiter__(self) -> AsyncIterator[Incoming[Any]]: ...

    async def listen(
        self,
        host: str,
        port: int | None = None,
        *,
        secure: bool = True,
        proxy: ProxyPolicy | None = None,
        reuse_port: bool = False,
    ) -> tuple[str, int]: ...

    async def send(
        self, message: bytes | str, to: int | str | tuple[str, int], *, binary: bool | None = None
    ) -> object: ...


async def _listen(endpoint: _AsyncEndpoint, listener: Listener, worker: int | None) -> tuple[str, int]:
    """Add `listener` to an async adapter's endpoint (SO_REUSEPORT with workers)."""
    return await endpoint.listen(
        listener.host,
        listener.port,
        secure=listener.secure,
        proxy=listener.proxy,
        reuse_port=worker is not None,
    )


async def _pump(endpoint: _AsyncEndpoint, app: App, clock: Callable[[], float]) -> None:
    """Feed the app every message received and send what it answers (async adapters)."""

    async def send_all(incoming: Incoming[Any], outs: Sequence[Outgoing], retry: bool) -> None:
        for out in outs:
            try:
                await endpoint.send(out.message, out.flow_id, binary=out.binary)
            except (NoRoute, ConnectionClosedError):
                if retry:
                    await send_all(incoming, _relay_failed(app, incoming, out, clock()), retry=False)

    async for incoming in endpoint:
        await send_all(incoming, _replies(app, incoming, clock()), retry=True)


def _run_asyncio(options: ServeOptions, domain: TLSDomain | None, worker: int | None) -> Stats:
    from sansio_wss.adapters import asyncio as wss  # noqa: PLC0415

    async def main() -> Stats:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, stop.set)
        async with wss.Endpoint(tls=_domains(domain), config=options.config) as endpoint:
            addresses = [await _listen(endpoint, listener, worker) for listener in options.listeners]
            _announce(options, addresses, worker)
            app = _app(options, addresses[0])

            task = asyncio.ensure_future(_pump(endpoint, app, loop.time))
            await stop.wait()
            _stopping(options, worker)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return endpoint.stats

    return asyncio.run(main())


def _run_trio(options: ServeOptions, domain: TLSDomain | None, worker: int | None) -> Stats:
    import trio  # noqa: PLC0415

    from sansio_wss.adapters import trio as wss  # noqa: PLC0415

    async def main() -> Stats:
        async with wss.Endpoint(tls=_domains(domain), config=options.config) as endpoint:
            addresses = [await _listen(endpoint, listener, worker) for listener in options.listeners]
            _announce(options, addresses, worker)
            app = _app(options, addresses[0])

            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_pump, endpoint, app, trio.current_time)
                    async for _ in signals:
                        break
                    _stopping(options, worker)
                    nursery.cancel_scope.cancel()
        return endpoint.stats

    return trio.run(main)


def _run_sync(options: ServeOptions, domain: TLSDomain | None, worker: int | None) -> Stats:
    import time  # noqa: PLC0415

    from sansio_wss.adapters import sync as wss  # noqa: PLC0415

    stop = threading.Event()
    previous = {number: signal.signal(number, _setter(stop)) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        with wss.Endpoint(tls=_domains(domain), config=options.config) as endpoint:
            addresses = [
                endpoint.listen(
                    listener.host,
                    listener.port,
                    secure=listener.secure,
                    proxy=listener.proxy,
                    reuse_port=worker is not None,
                )
                for listener in options.listeners
            ]
            _announce(options, addresses, worker)
            app = _app(options, addresses[0])

            def send_all(incoming: Incoming[Any], outs: Sequence[Outgoing], retry: bool) -> None:
                for out in outs:
                    try:
                        endpoint.send(out.message, out.flow_id, binary=out.binary)
                    except (NoRoute, ConnectionClosedError):
                        if retry:
                            again = _relay_failed(app, incoming, out, time.monotonic())
                            send_all(incoming, again, retry=False)

            while not stop.is_set():
                try:
                    incoming = endpoint.recv(timeout=0.2)  # a signal only sets `stop`: look at it often
                except TimeoutError:
                    continue
                send_all(incoming, _replies(app, incoming, time.monotonic()), retry=True)
            _stopping(options, worker)
        return endpoint.stats
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _setter(stop: threading.Event) -> Callable[[int, object], None]:
    def handler(number: int, frame: object) -> None:
        stop.set()

    return handler
