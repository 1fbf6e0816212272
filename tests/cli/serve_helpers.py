"""What the `serve` tests share: a `serve` subprocess and a `websockets` client for it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator

from websockets.asyncio.client import connect
from websockets.typing import Origin, Subprotocol

__all__ = ["ADAPTERS", "LIMIT", "OPTIONS", "Served", "client", "free_port", "insecure", "served"]

ADAPTERS = ("asyncio", "trio", "sync")
OPTIONS = "OPTIONS sip:echo@127.0.0.1 SIP/2.0\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
LIMIT = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def insecure() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Served:
    """A `serve` process and the lines it printed at start; `listen` is its listener's URI, with
    `{port}` for a free port."""

    def __init__(self, *args: str, listen: str = "wss://127.0.0.1:{port}") -> None:
        self.port = free_port()
        uri = listen.format(port=self.port)
        command = [sys.executable, "-m", "sansio_wss", "serve", "--listen", uri]
        self.process = subprocess.Popen(
            [*command, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd="/tmp",
            start_new_session=True,  # kill() reaches the workers too
        )
        assert self.process.stdout is not None
        lines = (2 if uri.startswith("wss:") else 1) + ("--trace" in args)
        self.banner = [self.process.stdout.readline().strip() for _ in range(lines)]

    def stop(self, number: int = signal.SIGTERM) -> tuple[int, str, str]:
        self.process.send_signal(number)
        out, err = self.process.communicate(timeout=LIMIT)
        return self.process.returncode, out, err

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.communicate(timeout=LIMIT)


@contextlib.contextmanager
def served(*args: str, listen: str = "wss://127.0.0.1:{port}") -> Iterator[Served]:
    server = Served(*args, listen=listen)
    try:
        yield server
    finally:
        server.kill()


def client(port: int, origin: str = "https://app.example.com") -> connect:
    return connect(
        f"wss://127.0.0.1:{port}/",
        ssl=insecure(),
        subprotocols=[Subprotocol("sip")],
        origin=Origin(origin),
        compression=None,
    )
