"""End-to-end WSS benchmark: our asyncio/uvloop, trio and sync adapters against websockets' servers."""

# ruff: noqa: PLC0415, RUF001
# (lazy imports: each server process imports only what it serves; en dashes in the tables)

from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import collections
import contextlib
import cProfile
import functools
import importlib
import importlib.util
import json
import math
import os
import platform
import pstats
import random
import re
import resource
import select
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as pkg_version
from typing import Any, cast

import sip_payloads as sp

# ---------------------------------------------------------------------------- setup

HERE = os.path.dirname(os.path.abspath(__file__))
ORIGIN = sp.ORIGIN
OK_S = sp.sip_200_ok()
OK_B = OK_S.encode()
OPT_B = sp.sip_options().encode()
MASK = b"\x37\xfa\x21\x3d"
OPT_FRAME = sp.client_frame(OPT_B, MASK)
CLOSE_FRAME = sp.client_frame((1000).to_bytes(2, "big"), MASK, opcode=8)
CLK_TCK = os.sysconf("SC_CLK_TCK")
perf = time.perf_counter

Metrics = dict[str, float]
"""One measured run: numbers only (booleans as 0.0/1.0)."""
Suite = dict[str, Metrics]
"""One server process's round-trip runs, by configuration label (and "setup")."""


@dataclass(frozen=True)
class ServerKind:
    """One contender: its name, the websockets server it is compared with, and what it imports."""

    name: str
    baseline: str
    needs: tuple[str, ...]


SERVERS: tuple[ServerKind, ...] = (
    ServerKind("ours-asyncio", "websockets-asyncio", ("sansio_wss.adapters.asyncio",)),
    ServerKind("ours-uvloop", "websockets-asyncio", ("sansio_wss.adapters.asyncio", "uvloop")),
    ServerKind("websockets-asyncio", "websockets-asyncio", ("websockets.asyncio.server",)),
    ServerKind("ours-trio", "websockets-trio", ("sansio_wss.adapters.trio", "trio")),
    ServerKind("websockets-trio", "websockets-trio", ("websockets.trio.server", "trio")),
    ServerKind("ours-sync", "websockets-sync", ("sansio_wss.adapters.sync",)),
    ServerKind("websockets-sync", "websockets-sync", ("websockets.sync.server",)),
)
KINDS = {kind.name: kind for kind in SERVERS}

RT_CONFIGS: tuple[tuple[str, int, int, int], ...] = (
    # (label, connections C, messages in flight per connection K, round trips in full mode)
    ("C=1 K=1", 1, 1, 3_000),
    ("C=1 K=50", 1, 50, 20_000),
    ("C=50 K=10", 50, 10, 25_000),
)


@dataclass(frozen=True)
class Target:
    """One goal of the issue: `server` over its websockets counterpart, at most `limit`."""

    server: str
    section: str  # a RT_CONFIGS label, "setup" or "memory"
    limit: float
    text: str


TARGETS: tuple[Target, ...] = (
    Target("ours-asyncio", "C=1 K=50", 0.25, "asyncio adapter CPU/round trip, C=1 K=50"),
    Target("ours-asyncio", "C=50 K=10", 0.30, "asyncio adapter CPU/round trip, C=50 K=10"),
    Target("ours-asyncio", "setup", 0.85, "asyncio adapter CPU/new connection"),
    Target("ours-trio", "C=1 K=50", 0.50, "trio adapter CPU/round trip, C=1 K=50"),
    Target("ours-trio", "C=50 K=10", 0.50, "trio adapter CPU/round trip, C=50 K=10"),
    Target("ours-sync", "C=1 K=50", 0.80, "sync adapter CPU/round trip, C=1 K=50"),
    Target("ours-sync", "C=50 K=10", 0.80, "sync adapter CPU/round trip, C=50 K=10"),
    Target("ours-asyncio", "memory", 0.25, "asyncio adapter RSS per idle connection"),
)


@dataclass(frozen=True)
class Mode:
    """Sizes and time bounds of one run (quick or full)."""

    repeat: int
    scale: float  # multiplies the round-trip counts of RT_CONFIGS
    cap_s: float  # time cap of one round-trip configuration
    setup_s: float  # duration of the connection-setup run
    setup_workers: int
    mem_conns: int
    mem_repeat: int
    budget_s: float  # no new step starts after this much wall time
    profile_msgs: int


QUICK = Mode(
    repeat=3, scale=0.3, cap_s=2.5, setup_s=1.5, setup_workers=4, mem_conns=1000, mem_repeat=1,
    budget_s=165, profile_msgs=10_000,
)  # fmt: skip
FULL = Mode(
    repeat=3, scale=1.0, cap_s=6.0, setup_s=4.0, setup_workers=4, mem_conns=1000, mem_repeat=3,
    budget_s=540, profile_msgs=30_000,
)  # fmt: skip


def raise_nofile(wanted: int = 20_000) -> None:
    """Raise the soft RLIMIT_NOFILE towards the hard limit (1,000 idle connections need >1,000 fds)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def log(message: str) -> None:
    """Progress goes to stderr: stdout is the Markdown report."""
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- servers (child side)


class Reporter:
    """Runs in a thread of the server process: answers the parent's requests on stdin.

    `CPU` -> `CPU <user+system seconds of the whole process>` (getrusage, all threads);
    `PROF ON` / `PROF OFF` -> cProfile of the event-loop thread (asyncio and trio servers);
    EOF (the parent is gone) -> exit.
    """

    def __init__(self, profile_path: str | None) -> None:
        self.schedule: Callable[[Callable[[], None]], object] | None = None
        """Runs a callable in the event-loop thread (set by asyncio and trio servers)."""
        self.profile_path = profile_path
        self.profiler: cProfile.Profile | None = None
        self.lock = threading.Lock()

    def say(self, line: str) -> None:
        with self.lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def run(self) -> None:
        for line in sys.stdin:
            command = line.strip()
            if command == "CPU":
                usage = resource.getrusage(resource.RUSAGE_SELF)
                self.say(f"CPU {usage.ru_utime + usage.ru_stime:.6f}")
            elif command in ("PROF ON", "PROF OFF"):
                self.say("PROF " + self._profile(command == "PROF ON"))
            else:
                self.say(f"ERR unknown command {command!r}")
        os._exit(0)

    def _profile(self, on: bool) -> str:
        schedule = self.schedule
        if schedule is None or self.profile_path is None:
            return "unsupported"
        done = threading.Event()

        def toggle() -> None:
            if on:
                self.profiler = cProfile.Profile(time.thread_time)  # CPU, not wall time
                self.profiler.enable()
            elif self.profiler is not None:
                self.profiler.disable()
                self.profiler.dump_stats(str(self.profile_path))
            done.set()

        schedule(toggle)
        return "ok" if done.wait(10) else "timeout"


def _announce(reporter: Reporter, port: int) -> None:
    reporter.say(f"PORT {port}")


def _ours_config() -> Any:
    from sansio_wss import Config

    return Config(allowed_origins=frozenset({ORIGIN}))


def _ours_tls(cert: str) -> list[Any]:
    from sansio_wss import TLSDomain

    return [TLSDomain(name="bench", side="server", certificate=cert)]


def _stdlib_server_context(cert: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert)
    return context


async def _serve_ours_asyncio(cert: str, reporter: Reporter) -> None:
    from sansio_wss.adapters.asyncio import Connection, serve

    reporter.schedule = asyncio.get_running_loop().call_soon_threadsafe

    async def handler(conn: Connection) -> None:
        async for _ in conn:
            await conn.send(OK_B)

    server = await serve(handler, [("127.0.0.1", 0)], tls=_ours_tls(cert), config=_ours_config())
    _announce(reporter, server.addresses[0][1])
    await asyncio.Event().wait()


async def _serve_websockets_asyncio(cert: str, reporter: Reporter) -> None:
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.typing import Origin, Subprotocol

    reporter.schedule = asyncio.get_running_loop().call_soon_threadsafe

    async def handler(ws: ServerConnection) -> None:
        async for _ in ws:  # str: websockets decodes text messages
            await ws.send(OK_S)

    async with serve(
        handler,
        "127.0.0.1",
        0,
        ssl=_stdlib_server_context(cert),
        origins=[Origin(ORIGIN)],
        subprotocols=[Subprotocol("sip")],
        compression=None,
    ) as server:
        _announce(reporter, next(iter(server.sockets)).getsockname()[1])
        await server.serve_forever()


async def _serve_ours_trio(cert: str, reporter: Reporter) -> None:
    import trio

    from sansio_wss.adapters.trio import Connection, serve

    async def handler(conn: Connection) -> None:
        async for _ in conn:
            await conn.send(OK_B)

    reporter.schedule = trio.lowlevel.current_trio_token().run_sync_soon
    async with trio.open_nursery() as nursery:
        start = functools.partial(
            serve, handler, [("127.0.0.1", 0)], tls=_ours_tls(cert), config=_ours_config()
        )
        addresses: list[tuple[str, int]] = await nursery.start(start)
        _announce(reporter, addresses[0][1])


async def _serve_websockets_trio(cert: str, reporter: Reporter) -> None:
    import trio
    from websockets.trio.server import ServerConnection, serve
    from websockets.typing import Origin, Subprotocol

    async def handler(ws: ServerConnection) -> None:
        async for _ in ws:
            await ws.send(OK_S)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1", backlog=1024)
    async with trio.open_nursery() as nursery:
        start = functools.partial(
            serve,
            handler,
            listeners=listeners,
            ssl=_stdlib_server_context(cert),
            origins=[Origin(ORIGIN)],
            subprotocols=[Subprotocol("sip")],
            compression=None,
        )
        await nursery.start(start)
        _announce(reporter, listeners[0].socket.getsockname()[1])


def _serve_ours_sync(cert: str, reporter: Reporter) -> None:
    from sansio_wss.adapters.sync import Connection, serve

    def handler(conn: Connection) -> None:
        for _ in conn:
            conn.send(OK_B)

    server = serve(handler, [("127.0.0.1", 0)], tls=_ours_tls(cert), config=_ours_config())
    _announce(reporter, server.addresses[0][1])
    server.serve_forever()


def _serve_websockets_sync(cert: str, reporter: Reporter) -> None:
    from websockets.sync.server import ServerConnection, serve
    from websockets.typing import Origin, Subprotocol

    def handler(ws: ServerConnection) -> None:
        for _ in ws:
            ws.send(OK_S)

    with serve(
        handler,
        "127.0.0.1",
        0,
        ssl=_stdlib_server_context(cert),
        origins=[Origin(ORIGIN)],
        subprotocols=[Subprotocol("sip")],
        compression=None,
    ) as server:
        _announce(reporter, server.socket.getsockname()[1])
        server.serve_forever()


def serve_main(impl: str, certdir: str, profile_path: str | None) -> None:
    """The server process: serve `impl` on 127.0.0.1, port 0, until SIGTERM or stdin EOF."""
    raise_nofile()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    cert = os.path.join(certdir, "server.pem")
    reporter = Reporter(profile_path)
    threading.Thread(target=reporter.run, name="reporter", daemon=True).start()
    if impl == "ours-asyncio":
        asyncio.run(_serve_ours_asyncio(cert, reporter))
    elif impl == "ours-uvloop":
        import uvloop

        uvloop.run(_serve_ours_asyncio(cert, reporter))
    elif impl == "websockets-asyncio":
        asyncio.run(_serve_websockets_asyncio(cert, reporter))
    elif impl in ("ours-trio", "websockets-trio"):
        import trio

        runner = _serve_ours_trio if impl == "ours-trio" else _serve_websockets_trio
        trio.run(runner, cert, reporter)
    elif impl == "ours-sync":
        _serve_ours_sync(cert, reporter)
    elif impl == "websockets-sync":
        _serve_websockets_sync(cert, reporter)
    else:
        raise SystemExit(f"unknown server {impl}")


# ---------------------------------------------------------------------------- server processes (parent side)

CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def kill_children() -> None:
    """Kill every server process this script started, by PID."""
    for pid, proc in list(CHILDREN.items()):
        if proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        CHILDREN.pop(pid, None)


class ServerError(Exception):
    """A server process failed to start or to answer."""


class ServerProcess:
    """A server in its own process; its stdout answers `CPU`/`PROF` requests line by line."""

    def __init__(
        self, impl: str, certdir: str, profile_path: str | None = None, flags: Sequence[str] = ()
    ) -> None:
        self.impl = impl
        self.log_path = os.path.join(certdir, f"{impl}-{random.randrange(1 << 30)}.log")
        argv = [sys.executable, *flags, os.path.abspath(__file__), "serve", impl, certdir]
        if profile_path is not None:
            argv.append(profile_path)
        with open(self.log_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd="/tmp"
            )
        CHILDREN[self.proc.pid] = self.proc
        self._buffer = b""
        try:
            line = self._readline(30.0)
            if not line.startswith("PORT "):
                raise ServerError(f"{impl}: unexpected first line {line!r}")
            self.port = int(line.split()[1])
        except ServerError:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _readline(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServerError(f"{self.impl}: no answer within {timeout:.0f} s{self.stderr_tail()}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise ServerError(f"{self.impl}: the server process exited{self.stderr_tail()}")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def ask(self, command: str, timeout: float = 10.0) -> str:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(command.encode() + b"\n")
            self.proc.stdin.flush()
        except OSError as exc:
            raise ServerError(f"{self.impl}: cannot talk to the server: {exc}{self.stderr_tail()}") from exc
        return self._readline(timeout)

    def cpu(self) -> float:
        """The server process's CPU seconds (user + system, all threads)."""
        line = self.ask("CPU")
        if not line.startswith("CPU "):
            raise ServerError(f"{self.impl}: bad CPU answer {line!r}")
        return float(line.split()[1])

    def status(self) -> dict[str, int]:
        """VmRSS (kB) and Threads from /proc/<pid>/status."""
        out: dict[str, int] = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "Threads"):
                    out[key] = int(value.split()[0])
        return out

    def stderr_tail(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                tail = f.read()[-600:].decode(errors="replace").strip()
        except OSError:
            return ""
        return f"; stderr: {tail}" if tail else ""

    def stop(self) -> None:
        """SIGTERM our child by PID, SIGKILL after 5 s."""
        proc = self.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        CHILDREN.pop(proc.pid, None)


# ---------------------------------------------------------------------------- client


def upgrade_request() -> bytes:
    """A Chrome-like upgrade (Origin, Cookie, User-Agent, `sip` subprotocol, deflate offered)."""
    return sp.chrome_upgrade_request(key=base64.b64encode(os.urandom(16)), host="localhost", path="/")


class Client(asyncio.Protocol):
    """Cheap WebSocket client: pre-masked OPTIONS frames, K in flight; replies found by scanning
    frame headers only."""

    def __init__(self, quota: int, k: int, lat: list[float]) -> None:
        loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.open = False
        self.quota = quota
        self.k = k
        self.sent = 0
        self.received = 0
        self.times: collections.deque[float] = collections.deque()
        self.lat = lat
        self.opened: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(upgrade_request())

    def start(self) -> None:
        self._send(min(self.k, self.quota))

    def _send(self, k: int) -> None:
        assert self.transport is not None
        now = perf()
        self.times.extend([now] * k)
        self.sent += k
        self.transport.write(OPT_FRAME * k)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            if not head.startswith(b"http/1.1 101") or b"\r\nsec-websocket-protocol: sip" not in head:
                if not self.opened.done():
                    self.opened.set_exception(ConnectionError(f"handshake failed: {bytes(buf[:120])!r}"))
                assert self.transport is not None
                self.transport.abort()
                return
            del buf[: end + 4]
            self.open = True
            self.opened.set_result(None)
        pos = 0
        size = len(buf)
        n = 0
        while size - pos >= 2:
            b0 = buf[pos]
            length = buf[pos + 1] & 0x7F
            header = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                header = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                header = 10
            end = pos + header + length
            if end > size:
                break
            opcode = b0 & 0x0F
            if opcode == 1:
                n += 1
            elif opcode == 8 and self.transport is not None:
                self.transport.close()
            elif opcode == 9 and self.transport is not None:  # a keepalive Ping: Pong
                self.transport.write(sp.client_frame(bytes(buf[pos + header : end]), MASK, opcode=10))
            pos = end
        if pos:
            del buf[:pos]
        if n:
            now = perf()
            times = self.times
            lat = self.lat
            for _ in range(n):
                lat.append(now - times.popleft())
            self.received += n
            more = min(n, self.quota - self.sent)
            if more > 0:
                self._send(more)
            if self.received >= self.quota and not self.done.done():
                self.done.set_result(None)

    def close_ws(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(CLOSE_FRAME)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"lost before the upgrade: {exc}"))
        if not self.done.done():
            self.done.set_result(None)


def client_context() -> ssl.SSLContext:
    """TLS 1.3 only; no certificate check, to keep the client cheap (the server works the same)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def open_conn(port: int, context: ssl.SSLContext, quota: int, k: int, lat: list[float]) -> Client:
    """TCP + TLS + upgrade, bounded by 15 s."""
    loop = asyncio.get_running_loop()
    transport, client = await asyncio.wait_for(
        loop.create_connection(
            lambda: Client(quota, k, lat), "127.0.0.1", port, ssl=context, server_hostname="localhost"
        ),
        15,
    )
    try:
        await asyncio.wait_for(client.opened, 15)
    except BaseException:
        transport.abort()
        raise
    return client


async def open_many(
    port: int, context: ssl.SSLContext, n: int, quota: int, k: int, lat: list[float], concurrency: int = 32
) -> tuple[list[Client], int]:
    """`n` connections, `concurrency` handshakes at a time; returns them and the failure count."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> Client | None:
        async with gate:
            try:
                return await open_conn(port, context, quota, k, lat)
            except (OSError, asyncio.TimeoutError, ConnectionError, ssl.SSLError):
                return None

    opened = await asyncio.gather(*(one() for _ in range(n)))
    clients = [c for c in opened if c is not None]
    return clients, n - len(clients)


async def close_all(clients: Sequence[Client], timeout: float = 10.0) -> None:
    """Closing handshake on each; abort what is still open after `timeout`."""
    for client in clients:
        client.close_ws()
    try:
        await asyncio.wait_for(asyncio.gather(*(c.lost for c in clients)), timeout)
    except asyncio.TimeoutError:
        for client in clients:
            if client.transport is not None:
                client.transport.abort()


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / CLK_TCK


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


async def rt_config(server: ServerProcess, c: int, k: int, total: int, cap_s: float) -> Metrics:
    """C connections, K OPTIONS in flight on each, `total` round trips or `cap_s` seconds."""
    context = client_context()
    lat: list[float] = []
    per = max(1, total // c)
    clients, failed = await open_many(server.port, context, c, per, k, lat)
    if failed:
        await close_all(clients)
        raise ServerError(f"{server.impl}: {failed} of {c} connections failed")
    await asyncio.sleep(0.05)
    m0, s0, c0, t0 = machine_busy(), server.cpu(), self_cpu(), perf()
    for client in clients:
        client.start()
    _, pending = await asyncio.wait([cl.done for cl in clients], timeout=cap_s)
    wall = perf() - t0
    c1, s1, m1 = self_cpu(), server.cpu(), machine_busy()
    n = sum(cl.received for cl in clients)
    await close_all(clients)
    if not n:
        raise ServerError(f"{server.impl}: no round trip completed at C={c} K={k}")
    lat.sort()
    return {
        "C": c,
        "K": k,
        "round_trips": n,
        "complete": float(not pending),
        "wall_s": wall,
        "rt_per_s": n / wall,
        "server_cpu_us": (s1 - s0) / n * 1e6,
        "client_cpu_us": (c1 - c0) / n * 1e6,
        "p50_us": percentile(lat, 0.5) * 1e6,
        "p99_us": percentile(lat, 0.99) * 1e6,
        "others_cores": max(0.0, (m1 - m0) - (s1 - s0) - (c1 - c0)) / wall,
    }


async def setup_config(server: ServerProcess, seconds: float, workers: int) -> Metrics:
    """`workers` loops of connect + TLS + upgrade + one OPTIONS/200 OK + closing handshake."""
    context = client_context()
    lat: list[float] = []
    count = 0
    errors = 0
    deadline = perf() + seconds

    async def worker() -> None:
        nonlocal count, errors
        while perf() < deadline:
            try:
                client = await open_conn(server.port, context, 1, 1, lat)
                client.start()
                await asyncio.wait_for(client.done, 10)
                client.close_ws()
                await asyncio.wait_for(client.lost, 10)
                count += 1
            except (OSError, asyncio.TimeoutError, ConnectionError, ssl.SSLError):
                errors += 1
                await asyncio.sleep(0.01)

    m0, s0, c0, t0 = machine_busy(), server.cpu(), self_cpu(), perf()
    await asyncio.gather(*(worker() for _ in range(workers)))
    wall = perf() - t0
    await asyncio.sleep(0.1)  # let the server finish its last teardowns
    c1, s1, m1 = self_cpu(), server.cpu(), machine_busy()
    if not count:
        raise ServerError(f"{server.impl}: no connection completed ({errors} errors)")
    return {
        "conns": count,
        "errors": errors,
        "wall_s": wall,
        "conn_per_s": count / wall,
        "server_cpu_ms": (s1 - s0) / count * 1e3,
        "client_cpu_ms": (c1 - c0) / count * 1e3,
        "others_cores": max(0.0, (m1 - m0) - (s1 - s0) - (c1 - c0)) / wall,
    }


async def warm_up(server: ServerProcess, conns: int = 4, msgs: int = 2_000) -> None:
    """Unrecorded: first connections and messages (imports, caches, allocator growth)."""
    await rt_config(server, conns, 10, msgs, 10.0)


async def cpu_suite(server: ServerProcess, mode: Mode) -> Suite:
    suite: Suite = {}
    await asyncio.wait_for(warm_up(server), 30)
    for label, c, k, total in RT_CONFIGS:
        suite[label] = await asyncio.wait_for(
            rt_config(server, c, k, int(total * mode.scale), mode.cap_s), mode.cap_s + 40
        )
    suite["setup"] = await asyncio.wait_for(
        setup_config(server, mode.setup_s, mode.setup_workers), mode.setup_s + 30
    )
    return suite


async def memory_run(server: ServerProcess, n: int) -> Metrics:
    """RSS before and after `n` idle connections (open, upgraded, silent)."""
    await asyncio.wait_for(warm_up(server, conns=20, msgs=400), 30)
    await asyncio.sleep(0.5)
    before = server.status()
    lat: list[float] = []
    t0 = perf()
    clients, failed = await asyncio.wait_for(open_many(server.port, client_context(), n, 0, 1, lat), 120)
    open_s = perf() - t0
    await asyncio.sleep(1.0)  # handler tasks/threads started, nothing in flight
    after = server.status()
    await close_all(clients, 20)
    if not clients:
        raise ServerError(f"{server.impl}: no idle connection opened")
    delta_kb = after["VmRSS"] - before["VmRSS"]
    return {
        "conns": len(clients),
        "failed": failed,
        "open_s": open_s,
        "rss_before_kb": before["VmRSS"],
        "rss_after_kb": after["VmRSS"],
        "per_conn_kb": delta_kb / len(clients),
        "threads_before": before["Threads"],
        "threads_after": after["Threads"],
    }


async def profile_run(server: ServerProcess, msgs: int) -> Metrics:
    await asyncio.wait_for(warm_up(server), 30)
    if server.ask("PROF ON") != "PROF ok":
        raise ServerError("cannot start the profiler")
    result = await asyncio.wait_for(rt_config(server, 1, 50, msgs, 30.0), 70)
    if server.ask("PROF OFF", 30) != "PROF ok":
        raise ServerError("cannot stop the profiler")
    return result


# ---------------------------------------------------------------------------- driver


@dataclass
class Results:
    env: dict[str, Any]
    mode: Mode
    servers: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    cpu: dict[str, dict[int, Suite]] = field(default_factory=dict)
    memory: dict[str, dict[int, Metrics]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profile: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    profile_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    flags: dict[str, list[str]] = field(default_factory=dict)
    """Extra interpreter flags per server (`-O` for ours-uvloop when the adapter asserts)."""


def dist_version(name: str) -> str:
    try:
        return pkg_version(name)
    except PackageNotFoundError:
        return "not installed"


def cpu_description() -> str:
    model = mhz = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model == "?":
                model = value.strip()
            elif key == "cpu MHz" and mhz == "?":
                mhz = value.strip()
    return f"{model}, {os.cpu_count()} CPUs, {mhz} MHz"


def environment(argv: list[str]) -> dict[str, Any]:
    import sansio_wss

    speedups = importlib.util.find_spec("sansio_wss._speedups") is not None
    try:
        ws_speedups = importlib.util.find_spec("websockets.speedups") is not None
    except ImportError:
        ws_speedups = False
    return {
        "cpu": cpu_description(),
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "openssl": ssl.OPENSSL_VERSION,
        "versions": {
            name: dist_version(name) for name in ("sansio-wss", "websockets", "trio", "uvloop", "trustme")
        },
        "sansio_wss_path": os.path.dirname(sansio_wss.__file__),
        "sansio_wss_c_speedups": speedups,
        "websockets_c_speedups": ws_speedups,
        "loadavg_start": os.getloadavg(),
        "argv": argv,
        "payloads": {"OPTIONS_B": len(OPT_B), "200_OK_B": len(OK_B)},
    }


def probe(kind: ServerKind) -> str | None:
    """None when every module the server needs imports here; else why not."""
    for module in kind.needs:
        try:
            importlib.import_module(module)
        except Exception as exc:
            return f"`import {module}` failed: {type(exc).__name__}: {exc}"
    return None


def ensure_uvloop() -> str | None:
    """Install uvloop into this venv when missing (`pip install uvloop`); None when available."""
    if importlib.util.find_spec("uvloop") is not None:
        return None
    log("uvloop is not installed: pip install uvloop")
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "uvloop"],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "`pip install uvloop` timed out"
    importlib.invalidate_caches()
    if run.returncode != 0 or importlib.util.find_spec("uvloop") is None:
        return f"`pip install uvloop` failed: {(run.stderr or run.stdout).strip()[-300:]}"
    return None


def make_certs(certdir: str) -> None:
    """A trustme CA (ECDSA P-256) and a server certificate for localhost and 127.0.0.1."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(os.path.join(certdir, "server.pem"))
    ca.cert_pem.write_to_path(os.path.join(certdir, "ca.pem"))


def rotate(items: list[str], by: int) -> list[str]:
    if not items:
        return items
    by %= len(items)
    return items[by:] + items[:by]


def run_server_step(
    results: Results, impl: str, certdir: str, what: str, body: Callable[[ServerProcess], Any]
) -> Any:
    """Start the server, run `body` (an asyncio client run), stop the server; None on failure.

    Our asyncio adapter asserts `isinstance(transport, asyncio.Transport)`, which uvloop's
    transports are not: when ours-uvloop fails on that assertion, it is retried once under
    `python -O` (assertions off) and the report says so.
    """
    try:
        server = ServerProcess(impl, certdir, flags=results.flags.get(impl, ()))
    except ServerError as exc:
        results.failures.append(f"{what} {impl}: {exc}")
        log(f"  FAILED to start {impl}: {exc}")
        return None
    try:
        return body(server)
    except (ServerError, OSError, asyncio.TimeoutError, ConnectionError, ssl.SSLError) as exc:
        tail = server.stderr_tail()
        if impl == "ours-uvloop" and impl not in results.flags and "AssertionError" in tail:
            server.stop()
            results.flags[impl] = ["-O"]
            line = next((x.strip() for x in reversed(tail.splitlines()) if "assert " in x), "an assert")
            results.notes.append(
                f"ours-uvloop failed with AssertionError (`{line}`: uvloop's transport is not an "
                "`asyncio.Transport` subclass): the adapter does not run on uvloop as shipped; "
                "ours-uvloop was measured under `python -O` (assertions off)"
            )
            log(f"  {impl}: AssertionError under uvloop, retrying with python -O")
            return run_server_step(results, impl, certdir, what, body)
        message = f"{what} {impl}: {type(exc).__name__}: {exc}{tail}"
        results.failures.append(message)
        log(f"  FAILED {message}")
        return None
    finally:
        server.stop()


def benchmark(results: Results, certdir: str, started: float, profile: bool) -> None:
    mode = results.mode
    servers = results.servers

    def over_budget(step: str) -> bool:
        if perf() - started > mode.budget_s:
            results.notes.append(f"time budget ({mode.budget_s:.0f} s) reached: skipped {step}")
            log(f"  budget reached, skipping {step}")
            return True
        return False

    for rep in range(mode.repeat):
        for impl in rotate(servers, rep):
            if over_budget(f"CPU rep {rep + 1} {impl}"):
                continue
            suite = run_server_step(
                results, impl, certdir, f"CPU rep {rep + 1}", lambda s: asyncio.run(cpu_suite(s, mode))
            )
            if suite is None:
                continue
            results.cpu.setdefault(impl, {})[rep] = suite
            summary = ", ".join(
                f"{label} {m['server_cpu_us']:.1f} µs" for label, m in suite.items() if label != "setup"
            )
            log(
                f"rep {rep + 1} {impl}: {summary}, setup {suite['setup']['server_cpu_ms']:.2f} ms "
                f"[{perf() - started:.0f} s]"
            )
    for rep in range(mode.mem_repeat):
        for impl in rotate(servers, rep):
            if over_budget(f"memory rep {rep + 1} {impl}"):
                continue
            metrics = run_server_step(
                results,
                impl,
                certdir,
                f"memory rep {rep + 1}",
                lambda s: asyncio.run(memory_run(s, mode.mem_conns)),
            )
            if metrics is None:
                continue
            results.memory.setdefault(impl, {})[rep] = metrics
            log(
                f"memory rep {rep + 1} {impl}: {metrics['rss_before_kb'] / 1024:.1f} -> "
                f"{metrics['rss_after_kb'] / 1024:.1f} MB, {metrics['per_conn_kb']:.1f} kB/conn "
                f"[{perf() - started:.0f} s]"
            )
    for impl in ("ours-asyncio", "ours-trio"):
        if profile and impl in servers and not over_budget(f"profile {impl}"):
            # trio is several times slower per message: fewer round trips keep the run short
            msgs = mode.profile_msgs if impl == "ours-asyncio" else mode.profile_msgs // 3
            run_profile(results, certdir, impl, msgs)


def run_profile(results: Results, certdir: str, impl: str, msgs: int) -> None:
    """cProfile (thread CPU time) of the server's event-loop thread at C=1 K=50."""
    path = os.path.join(certdir, f"{impl}.prof")
    try:
        server = ServerProcess(impl, certdir, profile_path=path)
    except ServerError as exc:
        results.failures.append(f"profile {impl}: {exc}")
        return
    try:
        metrics = asyncio.run(profile_run(server, msgs))
    except (ServerError, OSError, asyncio.TimeoutError, ConnectionError) as exc:
        results.failures.append(f"profile {impl}: {exc}")
        return
    finally:
        server.stop()
    stats = pstats.Stats(path)
    raw = cast(dict[tuple[str, int, str], tuple[int, int, float, float, Any]], stats.stats)  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values())
    rows = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:15]
    for (filename, line, name), (_cc, calls, own, cum, _callers) in rows:
        short = re.sub(r"^.*/(site-packages|lib/python3\.\d+)/", "", filename)
        if short == filename and "/" in filename:
            short = os.path.basename(filename)
        results.profile.setdefault(impl, []).append(
            {"function": f"{short}:{line}({name})", "calls": calls, "own_s": own, "cum_s": cum}
        )
    results.profile_info[impl] = {
        "round_trips": metrics["round_trips"],
        "total_s": total,
        "server_cpu_us_under_profiler": metrics["server_cpu_us"],
    }


# ---------------------------------------------------------------------------- report


def med(values: Iterable[float]) -> float:
    xs = [v for v in values if not math.isnan(v)]
    return statistics.median(xs) if xs else float("nan")


def spread(values: Sequence[float], fmt: str) -> str:
    if not values:
        return "—"
    return f"{med(values):{fmt}} [{min(values):{fmt}}–{max(values):{fmt}}]"


def section_value(results: Results, impl: str, rep: int, section: str) -> float | None:
    """The figure a target is judged on: CPU per round trip / per connection, or RSS per connection."""
    if section == "memory":
        mem = results.memory.get(impl, {}).get(rep)
        return None if mem is None else mem["per_conn_kb"]
    suite = results.cpu.get(impl, {}).get(rep)
    if suite is None:
        return None
    return suite["setup"]["server_cpu_ms"] if section == "setup" else suite[section]["server_cpu_us"]


def ratios(results: Results, impl: str, section: str) -> list[float]:
    """Per-repetition ratios against the websockets counterpart measured in the same repetition."""
    base = KINDS[impl].baseline
    reps = results.memory.get(impl, {}) if section == "memory" else results.cpu.get(impl, {})
    out: list[float] = []
    for rep in sorted(reps):
        ours, theirs = section_value(results, impl, rep, section), section_value(results, base, rep, section)
        if ours is not None and theirs:
            out.append(ours / theirs)
    return out


def header(w: Callable[[str], None], columns: Sequence[str]) -> None:
    """A Markdown table's header and separator rows."""
    w("| " + " | ".join(columns) + " |")
    w("|" + "---|" * len(columns))


def render(results: Results) -> str:
    env, mode = results.env, results.mode
    lines: list[str] = []
    w = lines.append
    w("# sansio-wss adapters: end-to-end server CPU and memory over WSS (127.0.0.1)\n")
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    load0 = " ".join(f"{x:.2f}" for x in env["loadavg_start"])
    load1 = " ".join(f"{x:.2f}" for x in env.get("loadavg_end", ()))
    w(f"- CPU: {env['cpu']}; Linux {env['kernel']}")
    w(f"- {env['python']}, {env['openssl']}; {versions}")
    w(
        f"- sansio_wss from `{env['sansio_wss_path']}` (C speedups: {env['sansio_wss_c_speedups']}); "
        f"websockets C speedups: {env['websockets_c_speedups']}"
    )
    w(f"- load average at start {load0}, at end {load1}; elapsed {env.get('elapsed_s', 0):.0f} s")
    w(
        f"- mode: {env['mode_name']}; {mode.repeat} repetition(s) (server order rotated), medians "
        f"[min–max]; ratios are medians of per-repetition ratios against the websockets server of the "
        f"same kind (asyncio for ours-uvloop)"
    )
    w(
        f"- client: one asyncio process, raw `asyncio.Protocol` over TLS 1.3 (no certificate check), "
        f"Chrome-like upgrade (Origin, `Sec-WebSocket-Protocol: sip`, deflate offered and declined), "
        f"pre-masked OPTIONS {len(OPT_B)} B, replies 200 OK {len(OK_B)} B found by scanning frame headers"
    )
    w(
        "- server CPU: getrusage(RUSAGE_SELF) inside each server process (all threads), read over a pipe "
        "before and after each run; 'others' = CPU used by other processes on the machine during the run, "
        "in cores"
    )
    if results.skipped:
        w("")
        for impl, why in results.skipped.items():
            w(f"- **skipped {impl}**: {why}")
    for label, _c, _k, total in RT_CONFIGS:
        n = int(total * mode.scale)
        w(
            f"\n## {label}: server CPU per OPTIONS → 200 OK round trip "
            f"({n:,} round trips, cap {mode.cap_s:g} s)\n"
        )
        header(
            w,
            [
                "server",
                "server CPU µs / round trip",
                "÷ websockets",
                "round trips/s",
                "p50 µs",
                "p99 µs",
                "client CPU µs",
                "others",
            ],
        )
        for impl in results.servers:
            runs = [s[label] for s in results.cpu.get(impl, {}).values()]
            if not runs:
                w(f"| {impl} | failed | | | | | | |")
                continue
            capped = "" if all(r["complete"] for r in runs) else " (cap hit)"
            w(
                f"| {impl} | {spread([r['server_cpu_us'] for r in runs], '.1f')} | "
                f"{spread(ratios(results, impl, label), '.2f')} | "
                f"{spread([r['rt_per_s'] for r in runs], ',.0f')}{capped} | "
                f"{med(r['p50_us'] for r in runs):,.0f} | {med(r['p99_us'] for r in runs):,.0f} | "
                f"{med(r['client_cpu_us'] for r in runs):.1f} | {med(r['others_cores'] for r in runs):.2f} |"
            )
    w(
        f"\n## New connection: connect + TLS 1.3 + upgrade + one OPTIONS/200 OK + closing handshake "
        f"({mode.setup_s:g} s, {mode.setup_workers} client loops)\n"
    )
    header(
        w,
        [
            "server",
            "server CPU ms / connection",
            "÷ websockets",
            "connections/s",
            "client CPU ms",
            "errors",
            "others",
        ],
    )
    for impl in results.servers:
        runs = [s["setup"] for s in results.cpu.get(impl, {}).values()]
        if not runs:
            w(f"| {impl} | failed | | | | | |")
            continue
        w(
            f"| {impl} | {spread([r['server_cpu_ms'] for r in runs], '.2f')} | "
            f"{spread(ratios(results, impl, 'setup'), '.2f')} | "
            f"{spread([r['conn_per_s'] for r in runs], ',.0f')} | "
            f"{med(r['client_cpu_ms'] for r in runs):.2f} | {sum(int(r['errors']) for r in runs)} | "
            f"{med(r['others_cores'] for r in runs):.2f} |"
        )
    w(
        f"\n## Memory: server RSS (VmRSS) before and after {mode.mem_conns:,} idle WSS connections "
        f"({mode.mem_repeat} repetition{'s' if mode.mem_repeat > 1 else ''}, fresh process each)\n"
    )
    header(
        w,
        [
            "server",
            "RSS before MB",
            "RSS after MB",
            "RSS per connection kB",
            "÷ websockets",
            "threads after",
            "open time s",
        ],
    )
    for impl in results.servers:
        runs = list(results.memory.get(impl, {}).values())
        if not runs:
            w(f"| {impl} | failed | | | | | |")
            continue
        failed = sum(int(r["failed"]) for r in runs)
        note = f" ({failed} failed to open)" if failed else ""
        w(
            f"| {impl} | {spread([r['rss_before_kb'] / 1024 for r in runs], '.1f')} | "
            f"{spread([r['rss_after_kb'] / 1024 for r in runs], '.1f')} | "
            f"{spread([r['per_conn_kb'] for r in runs], '.1f')}{note} | "
            f"{spread(ratios(results, impl, 'memory'), '.2f')} | "
            f"{med(r['threads_after'] for r in runs):.0f} | {med(r['open_s'] for r in runs):.1f} |"
        )
    w("\n## Targets (ratio to the websockets server of the same kind; median [min–max] over repetitions)\n")
    header(w, ["target", "server", "section", "ratio", "limit", "verdict"])
    for target in TARGETS:
        values = ratios(results, target.server, target.section) if target.server in results.servers else []
        if not values:
            w(
                f"| {target.text} | {target.server} | {target.section} | — | ≤{target.limit:.2f} "
                "| NOT MEASURED |"
            )
            continue
        verdict = "PASS" if med(values) <= target.limit else "MISS"
        w(
            f"| {target.text} | {target.server} | {target.section} | {spread(values, '.2f')} | "
            f"≤{target.limit:.2f} | **{verdict}** |"
        )
    for impl, rows in results.profile.items():
        info = results.profile_info[impl]
        w(
            f"\n## cProfile of {impl} at C=1 K=50 ({int(info['round_trips']):,} round trips; "
            f"top 15 by own time; profiled total {info['total_s']:.2f} s, "
            f"{info['server_cpu_us_under_profiler']:.1f} µs server CPU per round trip under the profiler)\n"
        )
        header(w, ["function", "calls", "own s", "own %", "cum s"])
        for row in rows:
            share = row["own_s"] / info["total_s"] * 100 if info["total_s"] else 0.0
            w(
                f"| `{row['function']}` | {row['calls']:,} | {row['own_s']:.3f} | {share:.1f} | "
                f"{row['cum_s']:.3f} |"
            )
    if results.failures or results.notes:
        w("\n## Failures and notes\n")
        for line in results.notes + results.failures:
            w(f"- {line}")
    return "\n".join(lines) + "\n"


def to_json(results: Results) -> dict[str, Any]:
    return {
        "env": results.env,
        "mode": vars(results.mode),
        "servers": results.servers,
        "skipped": results.skipped,
        "python_flags": results.flags,
        "cpu": {impl: {str(rep): suite for rep, suite in reps.items()} for impl, reps in results.cpu.items()},
        "memory": {impl: {str(rep): m for rep, m in reps.items()} for impl, reps in results.memory.items()},
        "ratios": {
            impl: {
                section: ratios(results, impl, section)
                for section in [*(c[0] for c in RT_CONFIGS), "setup", "memory"]
            }
            for impl in results.servers
        },
        "targets": [
            {
                "text": t.text,
                "server": t.server,
                "section": t.section,
                "limit": t.limit,
                "ratios": ratios(results, t.server, t.section) if t.server in results.servers else [],
            }
            for t in TARGETS
        ],
        "profile": {"info": results.profile_info, "top": results.profile},
        "failures": results.failures,
        "notes": results.notes,
    }


def on_signal(signum: int, _frame: object) -> None:
    kill_children()
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    if argv[:1] == ["serve"]:
        serve_main(argv[1], argv[2], argv[3] if len(argv) > 3 else None)
        return 0
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs, about 3 minutes in total")
    parser.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    parser.add_argument("--repeat", type=int, help="repetitions (default 3)")
    parser.add_argument("--servers", help="comma-separated subset of: " + ",".join(KINDS))
    parser.add_argument("--conns", type=int, help="idle connections for the memory test (default 1000)")
    parser.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="cProfile ours-asyncio at C=1 K=50 (default: on in full mode, off in --quick)",
    )
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL
    if args.repeat is not None:
        mode = Mode(**{**vars(mode), "repeat": args.repeat})
    if args.conns is not None:
        mode = Mode(**{**vars(mode), "mem_conns": args.conns})
    profile = (not args.quick) if args.profile is None else bool(args.profile)

    atexit.register(kill_children)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    raise_nofile()
    started = perf()

    wanted = args.servers.split(",") if args.servers else list(KINDS)
    unknown = [s for s in wanted if s not in KINDS]
    if unknown:
        parser.error(f"unknown servers: {unknown}")
    skipped: dict[str, str] = {}
    uvloop_problem = ensure_uvloop() if "ours-uvloop" in wanted else None
    servers: list[str] = []
    for name in wanted:
        why = uvloop_problem if name == "ours-uvloop" and uvloop_problem else probe(KINDS[name])
        if why is None:
            servers.append(name)
        else:
            skipped[name] = why
            log(f"skipping {name}: {why}")
    env = environment(sys.argv)
    env["mode_name"] = "quick" if args.quick else "full"
    results = Results(env=env, mode=mode, servers=servers, skipped=skipped)
    log(f"servers: {', '.join(servers)}; sansio_wss from {env['sansio_wss_path']}")
    with tempfile.TemporaryDirectory(prefix="adapters-bench-") as certdir:
        make_certs(certdir)
        try:
            benchmark(results, certdir, started, profile)
        finally:
            kill_children()
    env["loadavg_end"] = os.getloadavg()
    env["elapsed_s"] = perf() - started
    report = render(results)
    sys.stdout.write(report)
    sys.stdout.flush()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(to_json(results), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
