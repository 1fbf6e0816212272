"""`python -m sansio_wss probe wss://HOST[:PORT]/PATH`: check a SIP-over-WSS server, and time SIP OPTIONS.

It connects through one of the adapters, prints what TLS negotiated (version, cipher, the
server certificate's subject and issuer, or only its SHA-256 fingerprint without the `cli`
extra), the raw upgrade request and reply, then sends `--count` OPTIONS one after the
other, prints every answer to each with its round-trip time, then the minimum, median and
maximum, and closes with 1000.

Exit statuses:
  0  every OPTIONS got a final response (whatever its status)
  2  invalid command line
  3  the TCP connection failed: refused, unreachable, timed out, or the name did not resolve
  4  TLS failed: the certificate, the handshake, or no TLS handshake within --timeout
  5  the WebSocket handshake was rejected (its HTTP status is printed) or failed
  6  timeout: no 101 reply, or no final response to an OPTIONS, within --timeout
  7  the connection closed before every OPTIONS was answered (the close code is printed)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import socket
import ssl
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from sansio_wss import Cause, Config, ConfigError, ConnectFailed, ConnectionClosedError
from sansio_wss.adapters import TLSInfo
from sansio_wss.events import ConnectionClosed, Opened
from sansio_wss.sip import WsUri, parse_ws_uri, via_transport

from .certs import fingerprint

__all__ = ["ProbeFailed", "add_arguments", "main", "run"]

ADAPTERS = ("asyncio", "trio", "sync")
_Number = TypeVar("_Number", int, float)
_EPILOG = __doc__[__doc__.index("Exit statuses") :] if __doc__ else None


class ProbeFailed(Exception):
    """Why a probe stopped early, and the exit status that says so."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `probe` command's arguments, and its exit statuses as the help's epilog."""
    parser.description = "Connect, show TLS and the upgrade, and time SIP OPTIONS requests."
    parser.epilog = _EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("uri", type=_wss_uri, metavar="wss://HOST[:PORT]/PATH")
    parser.add_argument("--insecure", action="store_true", help="do not check the server's certificate")
    parser.add_argument("--origin", metavar="ORIGIN", help="Origin to send (default: https://HOST[:PORT])")
    parser.add_argument("--count", type=_positive(int), default=3, metavar="N", help="OPTIONS to send (3)")
    bounds = "bound on the TCP connect, on TLS and the upgrade, and on each OPTIONS' final response (5)"
    parser.add_argument("--timeout", type=_positive(float), default=5.0, metavar="SECONDS", help=bounds)
    parser.add_argument("--adapter", choices=ADAPTERS, default="asyncio")
    parser.add_argument("--deflate", action="store_true", help="offer permessage-deflate (RFC 7692)")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` and probe; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m sansio_wss probe")
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Probe as `args` (from `add_arguments`) say; returns the exit status, errors on stderr."""
    t: float = args.timeout
    try:
        config = Config(
            origin=args.origin,
            handshake_timeout=t,
            tls_handshake_timeout=t,
            close_timeout=t,
            deflate=args.deflate,
        )
    except ConfigError as exc:
        print(f"probe: {exc}", file=sys.stderr)
        return 2
    probe = _Probe(args.uri, config, args.count, t, args.insecure)
    try:
        {"asyncio": _run_asyncio, "trio": _run_trio, "sync": _run_sync}[args.adapter](probe)
    except ProbeFailed as exc:
        failure = exc
    except ConnectFailed as exc:
        failure = probe.connect_failed(exc)
    except OSError as exc:  # only connect() raises it: the adapters turn later socket errors into a close
        failure = probe.tcp_failed(exc)
    except ConnectionClosedError as exc:
        probe.summary()
        reason = f" ({exc.reason})" if exc.reason else ""
        failure = ProbeFailed(7, f"connection closed before all answers came: code {exc.code}{reason}")
    else:
        return 0
    print(f"probe: {failure}", file=sys.stderr, flush=True)
    return failure.status


class _Probe:
    """One probe's state and output, without I/O: the adapter runners move the bytes."""

    def __init__(self, target: WsUri, config: Config, count: int, timeout: float, insecure: bool) -> None:
        self.target = target
        self.uri = f"wss://{_authority(target.host, target.port)}{target.resource}"
        self.config = config
        self.count = count
        self.timeout = timeout
        self.context, self._tls_done = _client_context(insecure)
        host = _authority(target.host, None if target.port == 443 else target.port)
        self._request_uri = f"sip:{host}"
        self._via_host = f"{secrets.token_hex(6)}.invalid"  # RFC 7118 appendix B: we cannot be dialled
        self._tag = secrets.token_hex(6)
        self._call_id = secrets.token_hex(12)
        self._cseq = 0
        self._sent_at = 0.0
        self._answered = True
        self.rtts: list[float] = []

    # ------------------------------------------------------------ what the runners call

    def opened(self, opened: Opened | None, tls: TLSInfo | None) -> None:
        """Print what TLS negotiated and the raw upgrade request and reply."""
        if tls is not None:
            _say(f"TLS: {tls.version}, cipher {tls.cipher}")
            for line in _certificate(tls.peer_certificate):
                _say(line)
        if opened is not None:
            for prefix, head in (("> ", opened.request), ("< ", opened.response)):
                for line in head.decode("latin-1").rstrip("\r\n").split("\r\n"):
                    _say(prefix + line)

    def requests(self) -> Iterator[bytes]:
        """The OPTIONS to send, each once the one before got its final response."""
        for cseq in range(1, self.count + 1):
            self._cseq, self._answered, self._sent_at = cseq, False, time.monotonic()
            yield self._options(cseq)
            if not self._answered:
                self.summary()
                detail = f"no final response to OPTIONS {cseq} within {self.timeout:g} s"
                raise ProbeFailed(6, f"timeout: {detail}")
        self.summary()

    def waiting(self) -> bool:
        """Whether the OPTIONS just sent still waits for its final response, in time."""
        return not self._answered and self.remaining() > 0

    def remaining(self) -> float:
        """Seconds left for the OPTIONS just sent (never negative)."""
        return max(0.0, self._sent_at + self.timeout - time.monotonic())

    def received(self, message: bytes) -> None:
        """A received SIP message: print it when it answers the OPTIONS just sent, else ignore it."""
        answer = _status(message, self._call_id, self._cseq)
        if answer is None or self._answered:
            return
        status, line = answer
        rtt = (time.monotonic() - self._sent_at) * 1000
        if status >= 200:
            self._answered = True
            self.rtts.append(rtt)
        _say(f"OPTIONS {self._cseq}: {line}  {rtt:.2f} ms{'' if status >= 200 else ' (provisional)'}")

    def summary(self) -> None:
        """Print the round-trip minimum, median and maximum of the final responses so far."""
        if self.rtts:
            low, middle, high = min(self.rtts), statistics.median(self.rtts), max(self.rtts)
            _say(f"round trip min/median/max: {low:.2f}/{middle:.2f}/{high:.2f} ms")

    def closed(self, closed: ConnectionClosed | None) -> None:
        """Print how the connection ended."""
        if closed is not None:
            _say(f"closed: {closed.code}{' (clean)' if closed.clean else ''}")

    # ----------------------------------------------------------------------- failures

    def connect_failed(self, exc: ConnectFailed) -> ProbeFailed:
        """The exit status and message for a TLS or upgrade failure."""
        closed, rejected = exc.closed, exc.rejected
        if rejected is not None:
            return ProbeFailed(5, f"handshake rejected: {rejected.status} {rejected.reason}")
        if closed.cause is Cause.TLS_FAILED:
            return ProbeFailed(4, closed.detail)
        tls_done = self._tls_done()
        timed_out = closed.cause in (Cause.TLS_HANDSHAKE_TIMEOUT, Cause.HANDSHAKE_TIMEOUT)
        if closed.cause is Cause.TLS_HANDSHAKE_TIMEOUT or (timed_out and not tls_done):
            return ProbeFailed(4, f"TLS handshake not done within {self.timeout:g} s")
        if not tls_done:
            return ProbeFailed(4, f"TLS handshake failed: {closed.detail or closed.cause.value}")
        if closed.cause is Cause.HANDSHAKE_TIMEOUT:
            return ProbeFailed(6, f"timeout: no 101 reply within {self.timeout:g} s")
        status = f" ({closed.status})" if closed.status else ""
        return ProbeFailed(5, f"handshake failed{status}: {closed.detail or closed.cause.value}")

    def tcp_failed(self, exc: OSError) -> ProbeFailed:
        """The exit status and message for a failed TCP connect or name resolution."""
        where = _authority(self.target.host, self.target.port)
        if isinstance(exc, socket.gaierror):
            return ProbeFailed(3, f"cannot resolve {self.target.host}: {exc.strerror or exc}")
        if isinstance(exc, TimeoutError):
            return ProbeFailed(3, f"TCP connect to {where} timed out after {self.timeout:g} s")
        return ProbeFailed(3, f"TCP connect to {where} failed: {_reason(exc)}")

    def _options(self, cseq: int) -> bytes:
        """An RFC 3261 OPTIONS: one Call-ID and From tag for the run, a new branch for each."""
        lines = (
            f"OPTIONS {self._request_uri} SIP/2.0",
            f"Via: SIP/2.0/{via_transport(True)} {self._via_host};branch=z9hG4bK{secrets.token_hex(8)}",
            "Max-Forwards: 70",
            f"From: <sip:probe@{self._via_host}>;tag={self._tag}",
            f"To: <{self._request_uri}>",
            f"Call-ID: {self._call_id}",
            f"CSeq: {cseq} OPTIONS",
            "Accept: application/sdp",
            "Content-Length: 0",
        )
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


# ---------------------------------------------------------------------- runners


def _run_sync(probe: _Probe) -> None:
    from sansio_wss.adapters import sync as wss  # noqa: PLC0415 (each adapter loads when chosen)

    with wss.connect(probe.uri, config=probe.config, tls=probe.context, timeout=probe.timeout) as conn:
        probe.opened(conn.opened, conn.tls)
        for request in probe.requests():
            conn.send(request)
            while probe.waiting():
                with contextlib.suppress(TimeoutError):
                    probe.received(conn.recv(timeout=probe.remaining()).message)
    probe.closed(conn.closed)


def _run_asyncio(probe: _Probe) -> None:
    import asyncio  # noqa: PLC0415

    from sansio_wss.adapters import asyncio as wss  # noqa: PLC0415

    async def main() -> None:
        try:
            conn = await wss.connect(probe.uri, config=probe.config, tls=probe.context)
        except asyncio.TimeoutError as exc:  # before Python 3.11, not the builtin TimeoutError
            raise TimeoutError("TCP connect timed out") from exc
        try:
            probe.opened(conn.opened, conn.tls)
            for request in probe.requests():
                await conn.send(request)
                while probe.waiting():
                    with contextlib.suppress(asyncio.TimeoutError):
                        probe.received((await asyncio.wait_for(conn.recv(), probe.remaining())).message)
        finally:
            await conn.close()
        probe.closed(conn.closed)

    asyncio.run(main())


def _run_trio(probe: _Probe) -> None:
    import trio  # noqa: PLC0415

    from sansio_wss.adapters import trio as wss  # noqa: PLC0415

    async def main() -> None:
        async with await wss.connect(probe.uri, config=probe.config, tls=probe.context) as conn:
            try:
                probe.opened(conn.opened, conn.tls)
                for request in probe.requests():
                    await conn.send(request)
                    while probe.waiting():
                        with trio.move_on_after(probe.remaining()):
                            probe.received((await conn.recv()).message)
            finally:
                await conn.close()  # 1000 even when we stop early (the context would send 1011)
        probe.closed(conn.closed)

    trio.run(main)


# ---------------------------------------------------------------------- helpers


def _client_context(insecure: bool) -> tuple[ssl.SSLContext, Callable[[], bool]]:
    """The client context, and a function telling whether its TLS handshake completed.

    The exit status depends on which step failed, and a failed connect() does not say
    whether TLS was done: a peer that closes during TLS ends as an EOF, and the trio
    adapter's upgrade timer runs from the TCP connect, so a TLS stall ends there as a
    handshake timeout. The documented `sslobject_class` hook tells.
    """
    context = ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.options |= getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    done = threading.Event()  # set from the sync adapter's I/O thread

    class Watched(ssl.SSLObject):
        def do_handshake(self) -> None:
            super().do_handshake()
            done.set()

    context.sslobject_class = Watched
    return context, done.is_set


def _certificate(der: bytes | None) -> list[str]:
    """Lines describing the server certificate: subject, issuer and expiry when `cryptography`
    is installed (the `cli` extra), and the SHA-256 fingerprint."""
    if der is None:
        return ["certificate: none"]
    shown = f"certificate SHA-256: {fingerprint(der)}"
    try:
        from cryptography import x509  # noqa: PLC0415 (an optional extra)
    except ImportError:
        return [shown]
    cert = x509.load_der_x509_certificate(der)
    return [
        f"certificate subject: {cert.subject.rfc4514_string()}",
        f"certificate issuer: {cert.issuer.rfc4514_string()}",
        f"certificate valid until: {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC",
        shown,
    ]


def _status(message: bytes, call_id: str, cseq: int) -> tuple[int, str] | None:
    """(status code, status line) when `message` is a response to our OPTIONS `cseq`, else None."""
    head = message.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    start, *lines = head.split("\r\n")
    version, _, rest = start.partition(" ")
    code = rest[:3]
    if version.upper() != "SIP/2.0" or not (code.isdigit() and rest[3:4] in ("", " ")):
        return None
    fields: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if colon:
            fields.setdefault(name.strip().lower(), value.strip())
    ours = fields.get("call-id", fields.get("i")) == call_id  # `i`: the compact form
    if not ours or fields.get("cseq", "").split() != [str(cseq), "OPTIONS"]:
        return None
    return int(code), start


def _reason(exc: OSError) -> str:
    """`Connection refused` rather than the adapter's wrapping (trio: a group of errors)."""
    found = [exc, *getattr(exc.__cause__, "exceptions", ())]
    reasons = dict.fromkeys(os.strerror(e.errno) for e in found if isinstance(e, OSError) and e.errno)
    return "; ".join(reasons) or str(exc)


def _authority(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def _wss_uri(text: str) -> WsUri:
    try:
        target = parse_ws_uri(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not target.secure:
        raise argparse.ArgumentTypeError(f"{text!r}: only wss:// URIs")
    return target


def _positive(kind: Callable[[str], _Number]) -> Callable[[str], _Number]:
    def convert(text: str) -> _Number:
        value = kind(text)  # a ValueError: argparse says "invalid int value: ..."
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
        return value

    convert.__name__ = getattr(kind, "__name__", "number")
    return convert


def _say(line: str) -> None:
    print(line, flush=True)
