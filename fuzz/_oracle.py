"""Invariants every connection keeps whatever the peer sends, checked after each input or command."""

from __future__ import annotations

import re
from collections.abc import Callable

from _samples import accept_for

from sansio_wss import (
    Cause,
    CloseReceived,
    ConnectionClosed,
    CrlfKeepalive,
    Event,
    HandshakeRejected,
    HandshakeRequest,
    InvalidSipMessage,
    Opened,
    PingReceived,
    PongReceived,
    SipMessageReceived,
    State,
    TransportAction,
)
from sansio_wss._connection import Connection
from sansio_wss.sip import check_start_line

__all__ = ["OracleError", "Watcher", "Wire", "check", "split", "transport_closed"]


class OracleError(AssertionError):
    """An invariant of the core does not hold: a bug (or a wrong oracle)."""


def check(ok: bool, what: str | Callable[[], str]) -> None:
    """Fail the fuzz input with `what` (a message, or a function that makes it: most checks pass,
    and formatting every message would halve the fuzzer's speed) unless `ok`."""
    if not ok:
        raise OracleError(what if isinstance(what, str) else what())


def transport_closed(conn: Connection) -> bool:
    """Whether the connection asks for the transport to be closed (read afresh, not narrowed by mypy)."""
    return conn.transport_action is TransportAction.CLOSE


def split(payload: bytes, cuts: list[int]) -> list[bytes]:
    """`payload` cut into chunks of the lengths in `cuts`, the rest as a last chunk; no empty chunk."""
    chunks = []
    pos = 0
    for size in cuts:
        if pos >= len(payload):
            break
        chunks.append(payload[pos : pos + size])
        pos += size
    if pos < len(payload):
        chunks.append(payload[pos:])
    return chunks


def sendable(code: int) -> bool:
    """Close codes an endpoint may put on the wire (RFC 6455 section 7.4, IANA registry), written anew."""
    return code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999


def valid_utf8(data: bytes) -> bool:
    """Whether `data` is UTF-8."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_RANK = {TransportAction.NONE: 0, TransportAction.HALF_CLOSE: 1, TransportAction.CLOSE: 2}
_SERVER_EVENTS = (
    HandshakeRequest,
    Opened,
    SipMessageReceived,
    InvalidSipMessage,
    CrlfKeepalive,
    PingReceived,
    PongReceived,
    CloseReceived,
    ConnectionClosed,
)
_CLIENT_EVENTS = (
    Opened,
    HandshakeRejected,
    SipMessageReceived,
    InvalidSipMessage,
    CrlfKeepalive,
    PingReceived,
    PongReceived,
    CloseReceived,
    ConnectionClosed,
)
_AFTER_OPEN = (
    SipMessageReceived,
    InvalidSipMessage,
    CrlfKeepalive,
    PingReceived,
    PongReceived,
    CloseReceived,
)
_CODE_OF_CAUSE = {
    Cause.PROTOCOL_ERROR: 1002,
    Cause.INVALID_UTF8: 1007,
    Cause.MESSAGE_TOO_BIG: 1009,
    Cause.PONG_TIMEOUT: 1011,
    Cause.EOF: 1006,
    Cause.TRANSPORT_ERROR: 1006,
    Cause.HANDSHAKE_FAILED: 1006,
    Cause.HANDSHAKE_REJECTED: 1006,
    Cause.HANDSHAKE_TIMEOUT: 1006,
}
_STATUS_LINE = re.compile(rb"HTTP/1\.1 ([0-9]{3}) [^\r\n]*\r\n")
_OPENING = re.compile(rb"HTTP/1\.[1-9] 101 ")
_ANY_STATUS = re.compile(rb"HTTP/[0-9]\.[0-9] ([0-9]{3})")


class Wire:
    """Parses the bytes one endpoint writes: an HTTP head (and body), then RFC 6455 frames.

    Independent of the core's reader: it checks that every frame we emit is one a
    strict peer accepts, that a Close carries a sendable code, and that nothing
    follows our Close.
    """

    def __init__(self, server: bool) -> None:
        self.server = server
        self.buf = b""
        self.phase = "head"  # head, body, frames, done
        self.body_left = 0
        self.status: int | None = None
        self.expect_accept: str | None = None
        self.close_sent = False
        self.close_code: int | None = None
        self.frames: list[tuple[int, bytes]] = []
        self.deflate = False  # permessage-deflate agreed: RSV1 allowed on (the only frame of) a message
        self.compressed: list[bool] = []  # for each frame, whether it had RSV1

    def feed(self, data: bytes) -> None:
        """Add what the endpoint wrote and check every complete unit in it."""
        self.buf += data
        if self.phase == "head":
            self._head()
        if self.phase == "body":
            take = min(self.body_left, len(self.buf))
            self.body_left -= take
            self.buf = self.buf[take:]
            if not self.body_left:
                self.phase = "done"
        if self.phase == "frames":
            self._frames()
        if self.phase == "done":
            check(not self.buf, lambda: f"bytes written after the end of the exchange: {self.buf[:40]!r}")

    def _head(self) -> None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head, self.buf = self.buf[: end + 4], self.buf[end + 4 :]
        lines = head[:-4].split(b"\r\n")
        fields: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not (colon and name and name == name.strip()):
                raise OracleError(f"bad header line we wrote: {line!r}")
            fields.setdefault(name.decode("latin-1").lower(), []).append(value.strip().decode("latin-1"))
        if not self.server:
            check(lines[0].startswith(b"GET /") and lines[0].endswith(b" HTTP/1.1"), "our request line")
            self.phase = "frames"
            return
        m = _STATUS_LINE.fullmatch(lines[0] + b"\r\n")
        check(m is not None, lambda: f"our status line is malformed: {lines[0]!r}")
        assert m is not None
        self.status = int(m[1])
        if self.status == 101:
            check(self.expect_accept is not None, "101 written without an Opened event")
            check(fields.get("sec-websocket-accept") == [self.expect_accept], "wrong Sec-WebSocket-Accept")
            check(fields.get("sec-websocket-protocol") == ["sip"], "101 does not select sip")
            self.phase = "frames"
            return
        check(400 <= self.status <= 599, lambda: f"we answered with status {self.status}")
        lengths = fields.get("content-length", [])
        check(len(lengths) == 1 and lengths[0].isdigit(), "rejection without one Content-Length")
        self.body_left = int(lengths[0])
        self.phase = "body"

    def _frames(self) -> None:
        buf = self.buf
        pos = 0
        while len(buf) - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            head = 2
            if n == 126:
                if len(buf) - pos < 4:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
                check(n >= 126, "non-minimal 16-bit length written")
            elif n == 127:
                if len(buf) - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
                check(65536 <= n < 1 << 63, "non-minimal 64-bit length written")
            masked = bool(b1 & 0x80)
            check(masked != self.server, "a server masked a frame" if masked else "a client did not mask")
            if masked:
                head += 4
            if len(buf) - pos < head + n:
                break
            payload = buf[pos + head : pos + head + n]
            if masked:
                mask = buf[pos + head - 4 : pos + head]
                keystream = (mask * (len(payload) // 4 + 1))[: len(payload)]
                payload = (int.from_bytes(payload, "big") ^ int.from_bytes(keystream, "big")).to_bytes(
                    len(payload), "big"
                )
            pos += head + n
            self._frame(b0, payload)
        self.buf = buf[pos:]

    def _frame(self, b0: int, payload: bytes) -> None:
        opcode = b0 & 0x0F
        check(not self.close_sent, lambda: f"frame {opcode:#x} written after our Close")
        rsv = b0 & 0x70
        check(
            rsv == 0 or (self.deflate and rsv == 0x40 and opcode in (1, 2)),
            "reserved bits set in a frame we wrote",
        )
        check(bool(b0 & 0x80), "we wrote a fragment; the core never fragments")
        check(opcode in (0x1, 0x2, 0x8, 0x9, 0xA), lambda: f"we wrote opcode {opcode:#x}")
        if opcode >= 0x8:
            check(len(payload) <= 125, "control frame over 125 bytes written")
        if opcode == 0x1 and not rsv:
            check(valid_utf8(payload), "text frame written that is not UTF-8")
        if opcode == 0x8:
            self.close_sent = True
            check(len(payload) != 1, "one-byte Close payload written")
            if payload:
                code = int.from_bytes(payload[:2], "big")
                check(sendable(code), lambda: f"we sent close code {code}")
                check(valid_utf8(payload[2:]), "close reason written that is not UTF-8")
                self.close_code = code
            self.phase = "done"
        self.frames.append((opcode, payload))
        self.compressed.append(bool(rsv))


class Watcher:
    """Drains one connection after every input or command and checks the invariants.

    `step()` returns (new events, bytes written) so a harness can relay the bytes
    to a peer. `peer_bytes` collects what the harness fed in, for the client's
    status check.
    """

    def __init__(self, conn: Connection, server: bool) -> None:
        self.conn = conn
        self.server = server
        self.wire = Wire(server)
        self.events: list[Event] = []
        self.closed: ConnectionClosed | None = None
        self.opened: Opened | None = None
        self.rank = 0
        # one partial frame at most: its header (14 bytes with a mask) and a payload of up to
        # max_message_size, or 125 for a control frame, whatever the limit
        self.bound = max(conn.config.max_message_size, 125) + 14
        self.peer_bytes = b""

    def feed(self, data: bytes, now: float) -> None:
        """`receive_data` that also records the bytes."""
        self.peer_bytes += data
        self.conn.receive_data(data, now)

    def step(self) -> tuple[list[Event], bytes]:
        """Drain and check events and output; then check state, action, timer and buffer."""
        conn = self.conn
        new = conn.events()
        out = conn.data_to_send()
        check(isinstance(new, list) and isinstance(out, bytes), "events()/data_to_send() types")
        for event in new:
            self._event(event, out)
            self.events.append(event)
        self.wire.feed(out)
        self._state()
        return new, out

    def _event(self, event: Event, out: bytes) -> None:
        allowed = _SERVER_EVENTS if self.server else _CLIENT_EVENTS
        check(type(event) in allowed, lambda: f"undocumented event {event!r}")
        check(self.closed is None, lambda: f"{type(event).__name__} after ConnectionClosed")
        if isinstance(event, _AFTER_OPEN):
            check(self.opened is not None, lambda: f"{type(event).__name__} before Opened")
        if isinstance(event, Opened):
            check(self.opened is None, "second Opened")
            self.opened = event
            if self.server:
                keys = [v for k, v in event.headers if k.lower() == "sec-websocket-key"]
                check(len(keys) == 1, "Opened for a request without exactly one key")
                self.wire.expect_accept = accept_for(keys[0])
                check(out.startswith(event.response), "Opened.response is not what we wrote")
            else:
                check(self.peer_bytes.startswith(event.response), "Opened.response is not what we read")
                # HTTP/1.2 and up read as 1.1 (RFC 9110 section 2.5), so only the major version is fixed
                check(_OPENING.match(event.response) is not None, "client opened without a 101")
        elif isinstance(event, (HandshakeRequest, HandshakeRejected)):
            check(self.opened is None, lambda: f"{type(event).__name__} after Opened")
        elif isinstance(event, SipMessageReceived):
            check(event.binary or valid_utf8(event.message), "text SipMessageReceived is not UTF-8")
            check(check_start_line(event.message) is None, "SipMessageReceived without a SIP start line")
        elif isinstance(event, InvalidSipMessage):
            check(event.binary or valid_utf8(event.message), "text InvalidSipMessage is not UTF-8")
            check(check_start_line(event.message) is not None, "InvalidSipMessage with a SIP start line")
            check(event.message not in (b"\r\n", b"\r\n\r\n"), "keepalive reported as InvalidSipMessage")
        elif isinstance(event, (PingReceived, PongReceived)):
            check(len(event.payload) <= 125, "control payload over 125 bytes delivered")
        elif isinstance(event, CloseReceived):
            check(sendable(event.code) or event.code == 1005, lambda: f"CloseReceived with code {event.code}")
        elif isinstance(event, ConnectionClosed):
            self._closed(event, out)

    def _closed(self, event: ConnectionClosed, out: bytes) -> None:
        self.closed = event
        check(event.cause is not Cause.INTERNAL_ERROR, lambda: f"INTERNAL_ERROR: {event.detail}")
        check(isinstance(event.cause, Cause), lambda: f"undocumented cause {event.cause!r}")
        check(
            sendable(event.code) or event.code in (1005, 1006), lambda: f"ConnectionClosed code {event.code}"
        )
        expected = _CODE_OF_CAUSE.get(event.cause)
        if expected is not None and not event.clean:
            check(event.code == expected, lambda: f"{event.cause} with code {event.code}")
        if event.cause is Cause.CHUNK_LIMIT:
            check(
                event.code == (1006 if self.opened is None else 1008),
                lambda: f"chunk limit code {event.code}",
            )
        if event.clean:
            check(any(isinstance(e, CloseReceived) for e in self.events), "clean close without a Close in")
        if event.status is not None:
            check(self.opened is None, "a status after Opened")
            check(event.cause in (Cause.HANDSHAKE_FAILED, Cause.HANDSHAKE_REJECTED), "status with that cause")
            if self.server:
                check(
                    out.startswith(b"HTTP/1.1 %d " % event.status),
                    lambda: f"status {event.status} not written",
                )
            else:
                m = _ANY_STATUS.match(self.peer_bytes)
                received = None if m is None else int(m[1])
                check(received == event.status, lambda: f"status {event.status}, the server sent {received}")
                if event.cause is Cause.HANDSHAKE_REJECTED:
                    rejected = [e for e in self.events if isinstance(e, HandshakeRejected)]
                    check(len(rejected) == 1 and rejected[0].status == event.status, "HandshakeRejected")

    def _state(self) -> None:
        conn = self.conn
        rank = _RANK[conn.transport_action]
        check(rank >= self.rank, lambda: f"transport_action went back to {conn.transport_action}")
        self.rank = rank
        state = conn.state
        closed = self.closed
        check((state is State.CLOSED) == (closed is not None), lambda: f"state {state} with closed={closed}")
        check(conn.closed_event is closed, "closed_event is not the emitted event")
        check(rank == 0 or closed is not None, "transport action before ConnectionClosed")
        if state is State.CONNECTING:
            check(self.opened is None, "CONNECTING after Opened")
        elif closed is None:
            check(self.opened is not None, lambda: f"{state} without Opened")
        if self.server and self.opened is not None:
            check(self.wire.phase in ("frames", "done"), "server opened but wrote no 101")
        if self.wire.close_sent and closed is None:
            check(state is State.CLOSING, lambda: f"Close written but state is {state}")
        timer = conn.get_timer()
        check(timer is None or type(timer) is float, lambda: f"get_timer() returned {timer!r}")
        if rank == 2:
            check(timer is None, "a timer after transport_action CLOSE")
        if state is not State.CONNECTING:
            size = len(conn._buf)
            check(size <= self.bound, lambda: f"receive buffer holds {size} bytes, over one frame's worth")
