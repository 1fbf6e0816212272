"""Tracing for `serve`: each serving process's HEP collector and tracer, and the local control
socket behind `python -m sansio_wss trace [on|off]` (OpenSIPS's `wss_trace`, over JSON-RPC)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sansio_wss import TraceConfig, Tracer
from sansio_wss.adapters import HepCollector
from sansio_wss.hep import PayloadFormat
from sansio_wss.trace import parse_trace_mode

__all__ = [
    "SWITCH_SIGNALS",
    "ControlServer",
    "TraceOptions",
    "add_arguments",
    "default_control_path",
    "handle_switch_signals",
    "run",
    "tracing",
    "wss_trace",
]

SWITCH_SIGNALS = {signal.SIGUSR1: True, signal.SIGUSR2: False}
"""Signals that switch a serving process's tracing on (SIGUSR1) and off (SIGUSR2)."""
_TIMEOUT = 3.0  # seconds a control request or reply may take
_MAX_REQUEST = 4096


@dataclass(frozen=True)
class TraceOptions:
    """`serve --trace ...`, parsed."""

    destination: str
    """`udp:HOST:PORT` or `tcp:HOST:PORT`."""
    payload_format: PayloadFormat
    capture_id: int
    on: bool
    """Whether tracing is on at start."""
    control: str
    """The control socket's path."""


def default_control_path() -> str:
    """Where `serve` listens for `trace` commands unless told: private to this user."""
    folder = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return os.path.join(folder, f"sansio-wss-trace-{os.getuid()}.sock")


@contextlib.contextmanager
def tracing(options: TraceOptions) -> Iterator[tuple[Tracer, HepCollector]]:
    """This process's collector and tracer, with SIGUSR1/SIGUSR2 switching it; the collector is
    flushed (for at most a second) and closed on exit."""
    config = TraceConfig(capture_id=options.capture_id, payload_format=options.payload_format)
    with HepCollector(options.destination) as collector:
        tracer = Tracer(collector, config, on=options.on)
        with handle_switch_signals(lambda on: setattr(tracer, "on", on)):
            yield tracer, collector


@contextlib.contextmanager
def handle_switch_signals(switch: Callable[[bool], None]) -> Iterator[None]:
    """Call `switch(True)` on SIGUSR1 and `switch(False)` on SIGUSR2 until the block ends."""

    def handler(number: int, frame: object) -> None:
        switch(SWITCH_SIGNALS[signal.Signals(number)])

    previous = {number: signal.signal(number, handler) for number in SWITCH_SIGNALS}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def wss_trace(request: Any, status: Callable[[], bool], switch: Callable[[bool], None]) -> dict[str, Any]:
    """One JSON-RPC 2.0 request to `wss_trace` (or `wss:trace`) answered as OpenSIPS's MI answers:
    no `trace_mode`: `{"WSS tracing": "on"}`; `on`/`off`: `"OK"`; anything else: error 500."""
    ident = request.get("id") if isinstance(request, dict) else None
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0":
        return _error(ident, -32600, "Invalid Request")
    if request.get("method") not in ("wss_trace", "wss:trace"):
        return _error(ident, -32601, "Method not found")
    params = request.get("params")
    if isinstance(params, list) and len(params) <= 1:
        mode = params[0] if params else None
    elif isinstance(params, dict):
        mode = params.get("trace_mode")
    elif params is None:
        mode = None
    else:
        return _error(ident, -32602, "Invalid params")
    if mode is None:
        return {"jsonrpc": "2.0", "result": {"WSS tracing": "on" if status() else "off"}, "id": ident}
    if not isinstance(mode, str):
        return _error(ident, -32602, "Invalid params")
    try:
        on = parse_trace_mode(mode)
    except ValueError as exc:
        return _error(ident, 500, "Bad parameter value", str(exc))
    switch(on)
    return {"jsonrpc": "2.0", "result": "OK", "id": ident}


def _error(ident: Any, code: int, message: str, data: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "error": error, "id": ident}


class ControlServer:
    """A Unix socket, readable and writable by this user only, answering one JSON-RPC request
    line per connection (`wss_trace`), in a thread of its own from `start()` on.

    Bound at once, so that a supervisor can bind it before it forks its workers and start
    answering after (a process forks before it starts any thread)."""

    def __init__(self, path: str, status: Callable[[], bool], switch: Callable[[bool], None]) -> None:
        self.path = path
        self._status = status
        self._switch = switch
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            _claim(path)
            old = os.umask(0o177)
            try:
                self._listener.bind(path)
            finally:
                os.umask(old)
            self._listener.listen(8)
        except BaseException:
            self._listener.close()
            raise
        self._thread = threading.Thread(target=self._serve, name="trace control", daemon=True)

    def start(self) -> None:
        """Start answering (requests made since the socket was bound wait in its backlog)."""
        self._thread.start()

    def close(self) -> None:
        """Stop answering and remove the socket file."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        if self._thread.is_alive():
            self._thread.join(_TIMEOUT)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def __enter__(self) -> ControlServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed
                return
            with conn, contextlib.suppress(OSError):
                conn.settimeout(_TIMEOUT)
                line = _read_line(conn)
                try:
                    request = json.loads(line)
                except ValueError:
                    reply = _error(None, -32700, "Parse error")
                else:
                    reply = wss_trace(request, self._status, self._switch)
                conn.sendall(json.dumps(reply).encode() + b"\n")


def _claim(path: str) -> None:
    """Take over `path` if it is a stale socket; refuse if a live server answers there."""
    if not os.path.exists(path):
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # left behind by a server that is gone
            return
    raise OSError(f"another serve already answers trace commands on {path} (use --control)")


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data and len(data) < _MAX_REQUEST:
        chunk = conn.recv(_MAX_REQUEST)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0]


# ------------------------------------------------------------------ the `trace` command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `trace` command's arguments."""
    parser.add_argument("trace_mode", nargs="?", metavar="on|off", help="switch tracing; none: its state")
    parser.add_argument(
        "--control", metavar="PATH", default=None, help="the serve's control socket (as serve printed it)"
    )


def run(args: argparse.Namespace) -> int:
    """Send one `wss_trace` request to a running `serve` and print the JSON answer: exit 0, 2
    when the server refused the request, 3 when no server answers."""
    path = args.control or default_control_path()
    request: dict[str, Any] = {"jsonrpc": "2.0", "method": "wss_trace", "id": 1}
    if args.trace_mode is not None:
        request["params"] = {"trace_mode": args.trace_mode}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(_TIMEOUT)
            conn.connect(path)
            conn.sendall(json.dumps(request).encode() + b"\n")
            reply = json.loads(_read_line(conn))
    except (OSError, ValueError) as exc:
        print(f"no serve answers trace commands on {path}: {exc}")
        return 3
    if "error" in reply:
        print(json.dumps(reply["error"]))
        return 2
    print(json.dumps(reply["result"]))
    return 0
