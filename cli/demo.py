"""`python -m sansio_wss demo`: a WSS registrar and one client per adapter, printed as a transcript.

The server is `python -m sansio_wss serve --app registrar` in a subprocess, with a certificate
made at start that the clients trust. alice (asyncio), bob (trio) and carol (blocking sockets)
REGISTER and send OPTIONS; alice sends bob a MESSAGE and carol sends alice one, each relayed by
the server over the callee's own connection and answered with 200 OK.
"""

from __future__ import annotations

import asyncio
import pathlib
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from sansio_wss import Config, TLSDomain

from .certs import generate
from .sipmsg import SipMessage, parse_message, response_to
from .sipuri import SipParseError

__all__ = ["main"]

LIMIT = 10.0  # seconds for any one wait
_print_lock = threading.Lock()


# ------------------------------------------------------------------ the script


@dataclass(frozen=True)
class Send:
    """Send a request; its final response is awaited next."""

    request: bytes


@dataclass(frozen=True)
class Expect:
    """Wait until this many requests have come in (each answered with 200 OK)."""

    count: int


@dataclass(frozen=True)
class Meet:
    """Wait for the other clients at this barrier."""

    barrier: threading.Barrier


Step = Send | Expect | Meet


@dataclass
class UserAgent:
    """One client's SIP identity, its requests, and its script."""

    user: str
    adapter: str
    domain: str
    started: float
    received: int = 0
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    via_host: str = field(default_factory=lambda: secrets.token_hex(6) + ".invalid")
    cseq: int = 0

    def request(self, method: str, uri: str, extra: tuple[str, ...] = (), body: bytes = b"") -> bytes:
        """A request as a browser's SIP stack writes it (an `.invalid` Via host)."""
        self.cseq += 1
        aor = f"sip:{self.user}@{self.domain}"
        to = aor if method == "REGISTER" else uri
        lines = (
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/WSS {self.via_host};branch=z9hG4bK{secrets.token_hex(6)}",
            "Max-Forwards: 70",
            f"To: <{to}>",
            f"From: <{aor}>;tag={self.tag}",
            f"Call-ID: {secrets.token_hex(8)}",
            f"CSeq: {self.cseq} {method}",
            *extra,
            f"Content-Length: {len(body)}",
        )
        return "\r\n".join(lines).encode() + b"\r\n\r\n" + body

    def say(self, text: str) -> None:
        """One transcript line, with the time since the demo started."""
        with _print_lock:
            print(
                f"[{(time.monotonic() - self.started) * 1000:7.1f} ms] {self.user} ({self.adapter}): {text}"
            )

    def answer(self, request: SipMessage) -> bytes:
        """Our 200 OK to a request relayed to us."""
        self.received += 1
        return response_to(request, 200, "OK", to_tag=self.tag).serialize()


def script(
    ua: UserAgent, registered: threading.Barrier, finished: threading.Barrier, plan: str
) -> Iterator[Step]:
    """REGISTER, OPTIONS, then the client's part of the relays (`plan`), then meet the others."""
    contact = f"<sip:{secrets.token_hex(4)}@{ua.via_host};transport=ws>"
    yield Send(ua.request("REGISTER", f"sip:{ua.domain}", (f"Contact: {contact}", "Expires: 600")))
    yield Send(ua.request("OPTIONS", f"sip:{ua.domain}", ("Accept: application/sdp",)))
    yield Meet(registered)
    if plan == "alice":
        yield Send(ua.request("MESSAGE", f"sip:bob@{ua.domain}", ("Content-Type: text/plain",), b"hi bob"))
        yield Expect(1)
    elif plan == "bob":
        yield Expect(1)
    else:
        yield Send(
            ua.request("MESSAGE", f"sip:alice@{ua.domain}", ("Content-Type: text/plain",), b"hi alice")
        )
    yield Meet(finished)


class Link(Protocol):
    """What a driver needs of one adapter's connection, in blocking form."""

    def send(self, message: bytes) -> None: ...

    def recv(self) -> bytes: ...


def run_script(ua: UserAgent, steps: Iterator[Step], link: Link) -> None:
    """Carry out the steps over `link`, answering every request that comes in meanwhile."""
    for step in steps:
        if isinstance(step, Meet):
            step.barrier.wait(LIMIT)
            continue
        if isinstance(step, Send):
            sent = parse_message(step.request)
            started = time.monotonic()
            link.send(step.request)
            while True:
                reply = _next(ua, link)
                if reply is not None and reply.cseq() == sent.cseq() and (reply.status or 0) >= 200:
                    took = (time.monotonic() - started) * 1000
                    contact = reply.get("Contact")
                    extra = f", Contact {contact}" if contact else ""
                    ua.say(
                        f"{sent.method} {sent.uri} -> {reply.status} {reply.reason} ({took:.1f} ms){extra}"
                    )
                    break
        else:
            while ua.received < step.count:
                _next(ua, link)


def _next(ua: UserAgent, link: Link) -> SipMessage | None:
    """The next response; a request is answered and gives None."""
    try:
        message = parse_message(link.recv())
    except SipParseError as exc:
        raise SystemExit(f"demo: {ua.user} got a bad SIP message: {exc}") from None
    if message.method is None:
        return message
    sender = message.from_addr().uri.user
    ua.say(f"got {message.method} from {sender}: {message.body.decode()!r}; answering 200 OK")
    link.send(ua.answer(message))
    return None


# ------------------------------------------------------------------ the adapters


def _client_config() -> Config:
    return Config(ping_interval=None)


def _asyncio_client(ua: UserAgent, uri: str, tls: TLSDomain, steps: Iterator[Step]) -> None:
    from sansio_wss.adapters import asyncio as wss  # noqa: PLC0415

    loop = asyncio.new_event_loop()
    try:
        conn = loop.run_until_complete(
            asyncio.wait_for(wss.connect(uri, tls=tls, config=_client_config()), LIMIT)
        )
        _connected(ua, conn.tls)
        run_script(ua, steps, _Bridge(lambda c: loop.run_until_complete(asyncio.wait_for(c, LIMIT)), conn))
        loop.run_until_complete(conn.close())
    finally:
        loop.close()


def _trio_client(ua: UserAgent, uri: str, tls: TLSDomain, steps: Iterator[Step]) -> None:
    import trio  # noqa: PLC0415

    from sansio_wss.adapters import trio as wss  # noqa: PLC0415

    async def main() -> None:
        async with wss.open_connection(uri, tls=tls, config=_client_config()) as conn:
            _connected(ua, conn.tls)
            token = trio.lowlevel.current_trio_token()

            async def bounded(coroutine: Awaitable[object]) -> object:
                with trio.fail_after(LIMIT):
                    return await coroutine

            def call(coroutine: Awaitable[object]) -> object:
                return trio.from_thread.run(bounded, coroutine, trio_token=token)

            await trio.to_thread.run_sync(run_script, ua, steps, _Bridge(call, conn))

    trio.run(main)


def _sync_client(ua: UserAgent, uri: str, tls: TLSDomain, steps: Iterator[Step]) -> None:
    from sansio_wss.adapters import sync as wss  # noqa: PLC0415

    with wss.connect(uri, tls=tls, config=_client_config()) as conn:
        _connected(ua, conn.tls)

        class Blocking:
            def send(self, message: bytes) -> None:
                conn.send(message)

            def recv(self) -> bytes:
                return conn.recv(timeout=LIMIT).message

        run_script(ua, steps, Blocking())


class _Bridge:
    """A blocking Link over an async connection: each call runs in its loop through `call`."""

    def __init__(self, call: Callable[[Awaitable[object]], object], conn: object) -> None:
        self._call = call
        self._conn = conn

    def send(self, message: bytes) -> None:
        self._call(self._conn.send(message))  # type: ignore[attr-defined]

    def recv(self) -> bytes:
        received = self._call(self._conn.recv())  # type: ignore[attr-defined]
        return received.message  # type: ignore[attr-defined, no-any-return]


def _connected(ua: UserAgent, tls: object) -> None:
    version = getattr(tls, "version", "?")
    cipher = getattr(tls, "cipher", "?")
    ua.say(f"connected: {version}, {cipher}, upgrade 101 with subprotocol sip")


# ------------------------------------------------------------------ the demo


def main() -> int:
    """Run the demo; 0 when every step happened in time."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sansio-wss-demo-") as directory:
        made = generate(pathlib.Path(directory), ())
        port = _free_port()
        server = subprocess.Popen(
            [
                sys.executable, "-m", "sansio_wss", "serve", "--app", "registrar",
                "--listen", f"wss://127.0.0.1:{port}",
                "--cert", str(made.certificate), "--key", str(made.key),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            print(f"server: {server.stdout.readline().strip()}")
            print(f"certificate: made for this run, SHA-256 {made.fingerprint}")
            ok = _clients(f"wss://localhost:{port}/", made.certificate, started)
        finally:
            server.send_signal(signal.SIGTERM)
            out, _ = server.communicate(timeout=LIMIT)
        for line in out.strip().splitlines():
            print(f"server: {line}")
    print(f"demo {'done' if ok else 'FAILED'} in {(time.monotonic() - started) * 1000:.0f} ms")
    return 0 if ok and server.returncode == 0 else 1


def _clients(uri: str, certificate: pathlib.Path, started: float) -> bool:
    tls = TLSDomain(name="demo", side="client", ca_list=str(certificate))
    registered, finished = threading.Barrier(3), threading.Barrier(3)
    runs = (
        ("alice", "asyncio", _asyncio_client),
        ("bob", "trio", _trio_client),
        ("carol", "sync", _sync_client),
    )
    failures: list[str] = []

    def run(
        user: str, adapter: str, client: Callable[[UserAgent, str, TLSDomain, Iterator[Step]], None]
    ) -> None:
        ua = UserAgent(user, adapter, "localhost", started)
        try:
            client(ua, uri, tls, script(ua, registered, finished, user))
        except BaseException as exc:  # reported, and the others released
            failures.append(f"{user}: {type(exc).__name__}: {exc}")
            registered.abort()
            finished.abort()

    threads = [threading.Thread(target=run, args=args, name=f"demo {args[0]}") for args in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(4 * LIMIT)
    for failure in failures:
        print(f"FAILED {failure}")
    return not failures and not any(thread.is_alive() for thread in threads)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
