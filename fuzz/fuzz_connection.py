"""Fuzz whole connections, both roles, driven by a script of peer inputs, clock moves and commands."""

from __future__ import annotations

import re
from collections.abc import Callable

import atheris
from _oracle import Watcher, check, transport_closed
from _samples import CHROME_REQUEST, CLIENT_KEY, HOST, SIP_MESSAGES, reply_101
from _trace_oracle import FixedMasks, Tracing, TwinWatcher

from sansio_wss import (
    Cause,
    ClientConnection,
    Config,
    ConnectionClosedError,
    LocalProtocolError,
    ServerConnection,
    State,
)
from sansio_wss._connection import Connection
from sansio_wss._frames import encode

OPCODES = (0x1, 0x2, 0x0, 0x8, 0x9, 0xA, 0x3, 0xB)
CLOSE_CODES = (1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1011, 1014, 1015, 1016, 2999, 3000, 4999, 5000)
HEADER_SETS: tuple[tuple[tuple[str, str], ...], ...] = (
    (),
    (("Set-Cookie", "session=abc; Secure"),),
    (("WWW-Authenticate", 'Digest realm="example.com", nonce="x"'),),
    (("X-Bad", "a\r\nInjected: yes"),),
    (("Upgrade", "h2c"),),
    (("sec-websocket-protocol", "other"),),
    (("X-Latin", "caf\xe9"),),
    (("X-Euro", "\u20ac"),),
    (("", "empty name"),),
    (("Bad Name", "space in the name"),),
)
RESERVED = frozenset(
    ("upgrade", "connection", "sec-websocket-accept", "sec-websocket-protocol", "sec-websocket-extensions")
)
REJECT_RESERVED = frozenset(("content-length", "connection", "transfer-encoding"))
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\t \x21-\x7e\x80-\xff]*")
REQUESTS = (
    CHROME_REQUEST,
    CHROME_REQUEST.replace(b"Origin: https://app.example.com\r\n", b""),
    CHROME_REQUEST.replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8"),
)
REPLIES = (
    reply_101(),
    reply_101(extra=b"Set-Cookie: a=b\r\n"),
    b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=x\r\nContent-Length: 0\r\n\r\n",
)


def config_from(fdp: atheris.FuzzedDataProvider) -> Config:
    """Timers short and long, limits tight and loose."""

    def pick(*values: float | int | None) -> float | int | None:
        value: float | int | None = values[fdp.ConsumeIntInRange(0, len(values) - 1)]
        return value

    flags = fdp.ConsumeIntInRange(0, 255)
    return Config(
        auto_accept=bool(flags & 1),
        require_origin=bool(flags & 2),
        ping_interval=pick(None, 1.0, 30.0),
        pong_timeout=2.0 if flags & 4 else 20.0,
        idle_timeout=pick(None, 2.0, 60.0),
        close_timeout=0.5 if flags & 8 else 5.0,
        handshake_timeout=None if flags & 16 else 3.0,
        max_message_size=64 if flags & 32 else 65536,
        max_msg_chunks=int(pick(1, 2, 4, 1 << 16) or 1),
    )


class Script:
    """One connection and the fuzzer's operations on it."""

    def __init__(self, fdp: atheris.FuzzedDataProvider, mode: int = 0) -> None:
        self.fdp = fdp
        self.server = fdp.ConsumeBool()
        config = config_from(fdp)
        self.now = 100.0
        self.conn = self.connection(config)
        self.tracing: Tracing | None = None
        self.twin: Connection | None = None
        if mode & 2:  # traced, beside an untraced twin (the first byte's other bits set the tracer up)
            self.tracing = Tracing(mode, fdp, self.server)
            self.twin = self.connection(config)
            self.tracing.attach(self.conn, self.now)
            self.watch: Watcher = TwinWatcher(self.conn, self.server, self.twin, self.tracing)
        else:
            self.watch = Watcher(self.conn, server=self.server)
        self.watch.step()

    def connection(self, config: Config) -> Connection:
        if self.server:
            return ServerConnection(self.now, config)
        conn = ClientConnection(HOST, self.now, config=config, key=CLIENT_KEY)
        conn._masks = FixedMasks()
        return conn

    def each(self, call: Callable[[Connection], None]) -> None:
        """`call` on the connection, then on its untraced twin: both raise the same, or neither."""
        error: Exception | None = None
        try:
            call(self.conn)
        except Exception as exc:  # compared with the twin's, then raised again
            error = exc
        if self.twin is not None:
            try:
                call(self.twin)
            except Exception as twin_error:
                same = type(twin_error) is type(error) and str(twin_error) == str(error)
                check(same, f"the untraced twin raised {twin_error!r}, the traced one {error!r}")
            else:
                check(error is None, lambda: f"only the traced connection raised {error!r}")
        if error is not None:
            raise error

    # --------------------------------------------------------------- the peer

    def payload(self) -> bytes:
        fdp = self.fdp
        index: int = fdp.ConsumeIntInRange(0, len(SIP_MESSAGES))
        if index < len(SIP_MESSAGES):
            return SIP_MESSAGES[index]
        return bytes(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 200)))

    def frame(self, opcode: int, payload: bytes, fin: bool = True) -> bytes:
        """A frame as the peer sends it: masked towards a server (unless the fuzzer breaks the rule)."""
        fdp = self.fdp
        masked = self.server != (fdp.ConsumeIntInRange(0, 15) == 0)
        mask = fdp.ConsumeBytes(4).ljust(4, b"\0") if masked else None
        return encode(opcode, payload, mask, fin)

    def feed(self, data: bytes) -> None:
        if self.fdp.ConsumeBool() and len(data) > 1:
            cut = self.fdp.ConsumeIntInRange(1, len(data) - 1)
            self.watch.feed(data[:cut], self.now)
            self.watch.step()
            data = data[cut:]
        self.watch.feed(data, self.now)

    def timer(self) -> None:
        """Jump to the next deadline: handling it must move the deadline on."""
        deadline = self.conn.get_timer()
        if deadline is None:
            return
        self.now = max(self.now, deadline)
        self.each(lambda c: c.handle_timer(self.now))
        self.watch.step()
        later = self.conn.get_timer()
        check(later is None or later > deadline, lambda: f"deadline {deadline} handled, next {later}")

    # --------------------------------------------------------------- commands

    def command(
        self, expected: type[Exception] | None, call: Callable[[Connection], None], what: str
    ) -> bool:
        """Run a command; it raises exactly `expected` (leaving no trace) or nothing."""
        state = self.conn.state
        try:
            self.each(call)
        except (LocalProtocolError, ConnectionClosedError) as exc:
            check(type(exc) is expected, f"{what} in {state} raised {exc!r}, expected {expected}")
            check(self.conn.state is state, lambda: f"{what} raised and changed the state")
            events, out = self.watch.step()
            check(not events and not out, lambda: f"{what} raised but left {events!r} {out!r}")
            return False
        check(expected is None, lambda: f"{what} in {state} did not raise {expected}")
        return True

    def refused(self, command: str) -> type[Exception] | None:
        """The exception the state tables promise for `command` now, if any."""
        state = self.conn.state
        if command == "accept":  # and reject: only while connecting
            return None if state is State.CONNECTING else LocalProtocolError
        if state is State.OPEN:
            return None
        return LocalProtocolError if state is State.CONNECTING else ConnectionClosedError

    def send(self) -> None:
        fdp = self.fdp
        kind = fdp.ConsumeIntInRange(0, 2)
        message: bytes | str
        if kind == 0:
            message = self.payload()
        elif kind == 1:
            message = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 100))
        else:
            message = fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 100))
        expected = self.refused("send")
        if expected is None and isinstance(message, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in message):
            expected = LocalProtocolError  # not valid Unicode: the caller's mistake
        if self.command(expected, lambda c: c.send(message, self.now), "send") and self.tracing:
            self.tracing.sent(message)

    def ping(self) -> None:
        payload = self.fdp.ConsumeBytes(self.fdp.ConsumeIntInRange(0, 130))
        expected = self.refused("ping")
        if expected is None and len(payload) > 125:
            expected = LocalProtocolError
        self.command(expected, lambda c: c.ping(payload, self.now), "ping")

    def close(self) -> None:
        fdp = self.fdp
        if fdp.ConsumeBool():
            code = CLOSE_CODES[fdp.ConsumeIntInRange(0, len(CLOSE_CODES) - 1)]
        else:
            code = fdp.ConsumeIntInRange(0, 65535)
        reason = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 70))
        ok = code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999
        ok = ok and len(reason.encode("utf-8")) <= 123
        state = self.conn.state
        held = self.conn._held  # a peer's violation waiting for our answer decides the code
        expected = None if ok else LocalProtocolError
        if self.command(expected, lambda c: c.close(self.now, code, reason), "close"):
            events, _ = self.watch.step()
            if state is State.CONNECTING:
                closed = self.watch.closed
                check(closed is not None and closed.cause is Cause.LOCAL_CLOSED, "close() while connecting")
                check(transport_closed(self.conn), "close() while connecting: action")
            elif held is not None and state is State.OPEN:
                closed = self.watch.closed
                failed = closed is not None and closed.code == held[0]
                check(failed, "close() did not fail the held violation")
            elif state is State.OPEN:
                check(self.conn.state is State.CLOSING, "close() did not start the closing handshake")
                check(self.watch.wire.close_code == code, "close() did not send its code")
            else:
                check(not events and self.conn.state is state, "close() when closing did something")

    def verdict(self) -> None:
        """Server: accept() or reject() the pending request (or try to when there is none)."""
        fdp = self.fdp
        headers = HEADER_SETS[fdp.ConsumeIntInRange(0, len(HEADER_SETS) - 1)]
        conn = self.conn
        assert isinstance(conn, ServerConnection)
        expected = self.refused("accept")
        if expected is None and conn.request is None:
            expected = LocalProtocolError
        malformed = not all(_TOKEN.fullmatch(n) and _FIELD_VALUE.fullmatch(v) for n, v in headers)
        if fdp.ConsumeBool():
            reserved = any(n.lower() in RESERVED for n, _ in headers)
            if expected is None and (malformed or reserved):
                expected = LocalProtocolError
            call: Callable[[Connection], None] = lambda c: server(c).accept(self.now, headers)  # noqa: E731
            what = "accept"
        else:
            status = fdp.ConsumeIntInRange(300, 700)
            body = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40)) if fdp.ConsumeBool() else None
            framing = any(n.lower() in REJECT_RESERVED for n, _ in headers)
            if expected is None and (malformed or framing or not 400 <= status <= 599):
                expected = LocalProtocolError
            call = lambda c: server(c).reject(status, self.now, headers, body)  # noqa: E731
            what = "reject"
        self.command(expected, call, what)

    # ------------------------------------------------------------------ script

    def op(self) -> None:
        fdp = self.fdp
        if self.tracing is not None and self.tracing.dynamic and self.tracing.switch():
            size = fdp.ConsumeIntInRange(65_350, 65_650)
            message = SIP_MESSAGES[3] + b"x" * (size - len(SIP_MESSAGES[3]))
            if self.command(self.refused("send"), lambda c: c.send(message, self.now), "send"):
                self.tracing.sent(message)
            self.watch.step()
        op = fdp.ConsumeIntInRange(0, 12)
        if op == 0:
            self.feed(fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 64)))
        elif op == 1:
            opcode = OPCODES[fdp.ConsumeIntInRange(0, len(OPCODES) - 1)]
            fin = fdp.ConsumeIntInRange(0, 3) != 0
            self.feed(self.frame(opcode, self.payload(), fin))
        elif op == 2:
            self.now += fdp.ConsumeIntInRange(0, 400) / 10
            self.each(lambda c: c.handle_timer(self.now))
        elif op == 3:
            self.timer()
        elif op == 4:
            self.each(lambda c: c.receive_eof(self.now))
        elif op == 5:
            self.each(lambda c: c.transport_failed(self.now, "fuzz"))
        elif op == 6:
            self.send()
        elif op == 7:
            self.ping()
        elif op == 8:
            self.close()
        elif op == 9:
            if self.server:
                self.verdict()
        elif op == 10:
            if self.server:
                self.feed(REQUESTS[fdp.ConsumeIntInRange(0, len(REQUESTS) - 1)])
            else:
                self.feed(REPLIES[fdp.ConsumeIntInRange(0, len(REPLIES) - 1)])
        elif op == 11:
            code = fdp.ConsumeIntInRange(0, 5000).to_bytes(2, "big") if fdp.ConsumeBool() else b""
            self.feed(self.frame(0x8, code + fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 20))))
        else:
            self.feed(self.frame(0x1 if fdp.ConsumeBool() else 0x2, b"\r\n\r\n"))
        self.watch.step()

    def finish(self) -> None:
        """Liveness: after close() and at most a few deadlines, the transport is closed."""
        self.command(None, lambda c: c.close(self.now), "final close")
        self.watch.step()
        for _ in range(6):
            self.timer()
        check(transport_closed(self.conn), "the connection never ends")
        if self.tracing is not None:
            self.tracing.verify()


def server(conn: Connection) -> ServerConnection:
    assert isinstance(conn, ServerConnection)
    return conn


def run(data: bytes) -> Script:
    """Run the script in `data`; returns it for the seed tests. The first byte's lowest bit is the
    role; its others, unused before tracing came, say whether and how to trace (see `Tracing`)."""
    fdp = atheris.FuzzedDataProvider(data)
    script = Script(fdp, data[0] if data else 0)
    for _ in range(64):
        if not fdp.remaining_bytes():
            break
        script.op()
    script.finish()
    return script


def TestOneInput(data: bytes) -> None:  # noqa: N802 (the OSS-Fuzz entry point's name)
    """The atheris entry point."""
    run(data)


if __name__ == "__main__":
    from _engine import fuzz

    fuzz(TestOneInput)
