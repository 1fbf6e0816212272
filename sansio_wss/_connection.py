"""`Connection`: outputs, commands, closing, failing and timers shared by both roles."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from ._frames import (
    BINARY,
    CLOSE,
    PING,
    TEXT,
    MaskSource,
    close_payload,
    encode,
    sendable_close_code,
)
from ._reader import FrameReader
from ._state import COMMANDS, TRANSITIONS, State, TransportAction, Trigger
from .config import Config
from .errors import ConnectionClosedError, LocalProtocolError
from .events import Cause, CloseReceived, ConnectionClosed, Event
from .sip import is_text

if TYPE_CHECKING:
    from ._deflate import PerMessageDeflate
    from .table import Address
    from .trace import ConnectionTrace

__all__ = ["Connection"]

_CLOSE = TransportAction.CLOSE
_CONNECTING = State.CONNECTING
_RSV1 = 0x40  # on a data frame: its message is compressed (permessage-deflate)
_SHORT_HEADS = {
    op: [bytes((0x80 | op, n)) for n in range(126)] for op in (TEXT, BINARY, TEXT | _RSV1, BINARY | _RSV1)
}
_pack_head16 = struct.Struct(">BBH").pack

_CAUSE_OF_CODE = {1002: Cause.PROTOCOL_ERROR, 1007: Cause.INVALID_UTF8, 1009: Cause.MESSAGE_TOO_BIG}
_REASON_OF_CODE = {
    1002: "protocol error",
    1007: "invalid UTF-8",
    1008: "policy violation",
    1009: "message too big",
    1011: "internal error",
}


class Connection(FrameReader):
    """One SIP-over-WebSocket connection, either role: bytes and `now` in; events, bytes,
    a transport action and a deadline out.

    After every input or command, drain `events()` and `data_to_send()`, write
    the bytes, apply `transport_action`, and arm one timer at `get_timer()`.
    `now` is the caller's monotonic clock in seconds; the core never reads one.
    """

    __slots__ = (
        "_action",
        "_close_cause",
        "_close_deadline",
        "_close_received",
        "_close_sent",
        "_closed",
        "_config",
        "_deflate",
        "_events",
        "_handshake_deadline",
        "_last_rx",
        "_local",
        "_masks",
        "_out",
        "_proxy_address",
        "_remote",
        "_sent_close",
        "_state",
        "_trace",
    )

    def __init__(self, config: Config, now: float, client: bool) -> None:
        FrameReader.__init__(self, config.max_message_size, client, now)
        self._config = config
        self._state = State.CONNECTING
        self._events: list[Event] = []
        self._out: list[bytes] = []
        self._action = TransportAction.NONE
        timeout = config.handshake_timeout
        self._handshake_deadline = None if timeout is None else now + timeout
        self._close_deadline: float | None = None
        self._last_rx = now
        self._close_sent = False
        self._close_received = False
        self._sent_close: tuple[int, str] = (1006, "")
        self._close_cause = Cause.LOCAL_CLOSED
        self._closed: ConnectionClosed | None = None
        self._masks = MaskSource() if client else None
        self._trace: ConnectionTrace | None = None
        self._deflate: PerMessageDeflate | None = None
        self._remote: Address | None = None
        self._local: Address | None = None
        self._proxy_address: Address | None = None

    # ----------------------------------------------------------------- outputs

    @property
    def state(self) -> State:
        """The current `State`."""
        return self._state

    @property
    def transport_action(self) -> TransportAction:
        """What the adapter must do with the transport once the pending bytes are written."""
        return self._action

    @property
    def config(self) -> Config:
        """The configuration this connection runs with."""
        return self._config

    @property
    def is_client(self) -> bool:
        """True for the client role (a connection we opened)."""
        return self._masks is not None

    @property
    def trace(self) -> ConnectionTrace | None:
        """The connection's tracing, once `Tracer.attach()` gave it one."""
        return self._trace

    def attach_trace(self, trace: ConnectionTrace) -> None:
        """Report to `trace` from now on (`Tracer.attach()` calls this)."""
        self._trace = trace

    @property
    def remote_address(self) -> Address | None:
        """The peer's (IP, port): the socket's, or the client's when a trusted proxy named it
        (PROXY header, `Forwarded`); None until `set_addresses`."""
        return self._remote

    @property
    def local_address(self) -> Address | None:
        """Our (IP, port): the socket's, or the one the client connected to per a PROXY header."""
        return self._local

    @property
    def proxy_address(self) -> Address | None:
        """The socket's peer when `remote_address` is a client a proxy named; None for a direct peer."""
        return self._proxy_address

    def set_addresses(self, remote: Address, local: Address, *, proxy: Address | None = None) -> None:
        """Both ends' (IP, port) as the adapter knows them: the socket's, then (with the socket's
        peer as `proxy`) a PROXY header's. The trace, if any, moves to them."""
        self._remote, self._local, self._proxy_address = remote, local, proxy
        if self._trace is not None:
            self._trace.readdress(remote, local)

    @property
    def closed_event(self) -> ConnectionClosed | None:
        """The terminal event, once emitted."""
        return self._closed

    def events(self) -> list[Event]:
        """The events since the last call, oldest first."""
        events = self._events
        if events:
            self._events = []
            return events
        return []

    def data_to_send(self) -> bytes:
        """The bytes to write to the transport since the last call."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    def get_timer(self) -> float | None:
        """The earliest deadline (same clock as `now`), or None: call `handle_timer` then."""
        state = self._state
        if state is State.CONNECTING:
            return self._handshake_deadline
        if state is State.CLOSED or self._action is TransportAction.CLOSE:
            return None if self._action is TransportAction.CLOSE else self._close_deadline
        config = self._config
        deadlines = []
        if state is State.CLOSING:
            deadlines.append(self._close_deadline)
        elif self._pong_deadline is not None:
            deadlines.append(self._pong_deadline)
        elif config.ping_interval is not None:
            deadlines.append(self._last_rx + config.ping_interval)
        if config.idle_timeout is not None and state is State.OPEN:
            deadlines.append(self._last_msg + config.idle_timeout)
        if self._held is not None:
            deadlines.append(self._held[2])
        found = [d for d in deadlines if d is not None]
        return min(found) if found else None

    # ------------------------------------------------------------------ inputs

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> None:
        """Feed bytes read from the transport. One call is one chunk for `max_msg_chunks`."""
        if self._closed is not None and (
            self._action is _CLOSE or self._close_received or not self._close_sent
        ):
            return  # only EOF (or the close timer) matters now
        if not data:
            return
        if self._held is not None:
            return  # the peer broke the protocol: what follows is not read (and not kept)
        self._calls += 1
        self._last_rx = now
        try:
            if self._state is _CONNECTING:
                self._receive_handshake(bytes(data), now)
            else:
                self._receive_frames(data if type(data) is bytes else bytes(data), now)
        except Exception as exc:  # a bug of ours must not escape to the caller
            self._internal_error(exc, now)

    def receive_eof(self, now: float) -> None:
        """The peer ended its side of the transport (or the transport is gone)."""
        if self._action is TransportAction.CLOSE:
            return
        self._fail_held(now)
        if self._closed is None:
            detail = "transport ended before the closing handshake"
            self._finish(Trigger.EOF, 1006, "", Cause.EOF, detail, now)
        self._action = TransportAction.CLOSE

    def transport_failed(self, now: float, detail: str = "", cause: Cause = Cause.TRANSPORT_ERROR) -> None:
        """The adapter could not go on: a reset, a TLS error (`Cause.TLS_FAILED`), a TLS
        handshake or send timeout (`Cause.TLS_HANDSHAKE_TIMEOUT`, `Cause.SEND_TIMEOUT`).
        Pending output is dropped and the transport is to be closed."""
        if self._action is TransportAction.CLOSE:
            return
        if self._closed is None:
            self._finish(Trigger.EOF, 1006, "", cause, detail or "transport failed", now)
        self._out.clear()
        self._action = TransportAction.CLOSE

    def handle_timer(self, now: float) -> None:
        """Act on every deadline that has passed by `now`."""
        if self._action is TransportAction.CLOSE:
            return
        held = self._held
        if held is not None and now >= held[2]:
            self._fail_held(now)
            return
        state = self._state
        config = self._config
        if state is State.CONNECTING:
            deadline = self._handshake_deadline
            if deadline is not None and now >= deadline:
                self._handshake_timeout(now)
            return
        if state is State.CLOSED or state is State.CLOSING:
            deadline = self._close_deadline
            if deadline is not None and now >= deadline:
                if state is State.CLOSING:
                    code, reason = self._sent_close
                    self._finish(
                        Trigger.FAIL,
                        code,
                        reason,
                        Cause.CLOSE_TIMEOUT,
                        "no Close frame from the peer in time",
                        now,
                    )
                self._action = TransportAction.CLOSE
            return
        if self._pong_deadline is not None and now >= self._pong_deadline:
            self._fail(1011, "no Pong within pong_timeout", now, Cause.PONG_TIMEOUT)
            return
        if config.idle_timeout is not None and now >= self._last_msg + config.idle_timeout:
            if self._held is not None:
                self._fail_held(now)  # as close() does: the peer's violation decides the code
            else:
                self._start_close(1001, "idle timeout", now, Cause.IDLE_TIMEOUT)
            return
        if (
            config.ping_interval is not None
            and self._pong_deadline is None
            and now >= self._last_rx + config.ping_interval
        ):
            self._queue(PING, b"")
            self._pong_deadline = now + config.pong_timeout

    # ---------------------------------------------------------------- commands

    def send(self, message: bytes | str, now: float, *, binary: bool | None = None) -> None:
        """Send one SIP message: a text frame when it is UTF-8, binary otherwise (RFC 7118 4.2).

        `binary` chooses the frame type instead: True sends a binary frame whatever the
        bytes (RFC 7118 allows binary for any message; an echo keeps the type it received),
        False a text frame, which must then be UTF-8 (else LocalProtocolError)."""
        if self._state is not State.OPEN:
            self._require("send")
        if isinstance(message, str):
            try:
                payload = message.encode("utf-8")
            except UnicodeEncodeError:
                raise LocalProtocolError("a str message must be valid Unicode (no lone surrogates)") from None
            opcode = TEXT
        else:
            payload = message if type(message) is bytes else bytes(message)
            opcode = TEXT if payload.isascii() or is_text(payload) else BINARY
        if binary is not None:
            if not binary and opcode == BINARY:
                raise LocalProtocolError("a text frame must carry UTF-8")
            opcode = BINARY if binary else TEXT
        wire = payload
        if self._deflate is not None:
            wire = self._deflate.compress(payload)
            opcode |= _RSV1
        if self._masks is None:  # server frames: the header is built here, once per message
            n = len(wire)
            if n < 126:
                self._out.append(_SHORT_HEADS[opcode][n] + wire)
            elif n < 65536:
                self._out.append(_pack_head16(0x80 | opcode, 126, n) + wire)
            else:
                self._out.append(encode(opcode, wire))
        else:
            self._queue(opcode, wire)
        self._last_msg = now
        self._unanswered = False
        if self._trace is not None:
            self._trace.sent(payload, now)
        if self._held is not None:
            self._fail_held(now)  # the answer to the peer's last messages is out: fail now

    def ping(self, payload: bytes, now: float) -> None:
        """Send a WebSocket Ping (at most 125 bytes); the `PongReceived` answers it."""
        self._require("ping")
        if len(payload) > 125:
            raise LocalProtocolError("a Ping payload is at most 125 bytes")
        self._queue(PING, bytes(payload))

    def close(self, now: float, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; before the upgrade, drop the connection.

        Does nothing once the connection is closing or closed, so it is safe in
        any race. Raises LocalProtocolError for a code that may not be sent
        (1005, 1006, 1015, below 1000, ...) or a reason over 123 UTF-8 bytes.
        """
        if not sendable_close_code(code):
            raise LocalProtocolError(f"close code {code} may not be sent")
        try:
            encoded = reason.encode("utf-8")
        except UnicodeEncodeError:
            raise LocalProtocolError("a close reason must be valid Unicode (no lone surrogates)") from None
        if len(encoded) > 123:
            raise LocalProtocolError("a close reason is at most 123 UTF-8 bytes")
        if self._state is State.CONNECTING:
            self._finish(
                Trigger.SEND_CLOSE, 1006, "", Cause.LOCAL_CLOSED, "closed before the handshake completed", now
            )
            self._action = TransportAction.CLOSE
        elif self._held is not None:
            self._fail_held(now)  # the peer's violation decides the close code
        elif self._state is State.OPEN:
            self._start_close(code, reason, now)

    # --------------------------------------------------------------- internals

    def _require(self, command: str) -> None:
        state = self._state
        if state in COMMANDS[command]:
            return
        if command in ("send", "ping") and state is not State.CONNECTING:
            closed = self._closed
            code, reason = self._sent_close if closed is None else (closed.code, closed.reason)
            raise ConnectionClosedError(code, reason)
        raise LocalProtocolError(f"cannot {command} in state {state.name}")

    def _move(self, trigger: Trigger) -> None:
        self._state = TRANSITIONS[self._state, trigger]

    def _queue(self, opcode: int, payload: bytes) -> None:
        masks = self._masks
        self._out.append(encode(opcode, payload, None if masks is None else masks.next()))

    def _start_close(self, code: int, reason: str, now: float, cause: Cause = Cause.LOCAL_CLOSED) -> None:
        """We begin a clean closing handshake."""
        self._queue(CLOSE, close_payload(code, reason))
        self._close_sent = True
        self._sent_close = (code, reason)
        self._close_cause = cause
        self._close_deadline = now + self._config.close_timeout
        self._move(Trigger.SEND_CLOSE)

    def _finish(
        self,
        trigger: Trigger,
        code: int,
        reason: str,
        cause: Cause,
        detail: str,
        now: float,
        status: int | None = None,
        clean: bool = False,
    ) -> None:
        """Enter CLOSED and emit the terminal event."""
        self._move(trigger)
        event = ConnectionClosed(code, reason, clean, cause, status, detail)
        self._closed = event
        self._events.append(event)
        if self._trace is not None:
            self._trace.closed(event, now)
        self._pong_deadline = None
        self._handshake_deadline = None
        self._held = None
        self._buf = b""
        self._drop_message()

    def _fail(self, code: int, detail: str, now: float, cause: Cause | None = None) -> None:
        """Fail the open connection (RFC 6455 section 7.1.7): Close with `code`, then linger."""
        if self._closed is not None:
            self._action = TransportAction.CLOSE
            return
        reason = _REASON_OF_CODE.get(code, "")
        if not self._close_sent:
            self._queue(CLOSE, close_payload(code, reason))
            self._close_sent = True
            self._sent_close = (code, reason)
        cause = cause or _CAUSE_OF_CODE.get(code, Cause.PROTOCOL_ERROR)
        self._finish(Trigger.FAIL, code, reason, cause, detail, now)
        self._linger(now)

    def _linger(self, now: float) -> None:
        """After CLOSED: wait for the peer's Close or EOF, within `close_timeout`.

        A server ends its direction at once (it closes TCP first, RFC 6455
        section 7.1.1); a client keeps the transport open for the server to close.
        """
        self._close_deadline = now + self._config.close_timeout
        if self._masks is None:
            self._action = TransportAction.HALF_CLOSE

    def _peer_closed(self, code: int, reason: str, now: float) -> None:
        """A valid Close frame arrived."""
        if self._closed is not None:  # the peer answers our failure's Close
            if not self._close_received:
                self._close_received = True
                self._end_after_close(now)
            return
        self._close_received = True
        self._events.append(CloseReceived(code, reason))
        if self._close_sent:
            sent_code, sent_reason = self._sent_close
            self._finish(
                Trigger.RECEIVE_CLOSE,
                sent_code,
                sent_reason,
                self._close_cause,
                "closing handshake completed",
                now,
                clean=True,
            )
        else:
            echo = code if sendable_close_code(code) else None
            self._queue(CLOSE, close_payload(echo, ""))
            self._close_sent = True
            self._sent_close = (code, reason)
            self._finish(
                Trigger.RECEIVE_CLOSE,
                code,
                reason,
                Cause.PEER_CLOSED,
                "closing handshake completed",
                now,
                clean=True,
            )
        self._end_after_close(now)

    def _end_after_close(self, now: float) -> None:
        """Both Close frames are exchanged: a server closes, a client waits for the server's EOF."""
        if self._masks is None:
            self._action = TransportAction.CLOSE
        else:
            self._close_deadline = now + self._config.close_timeout

    def _internal_error(self, exc: Exception, now: float) -> None:
        detail = f"internal error: {type(exc).__name__}: {exc}"
        if self._state is State.CONNECTING or self._closed is not None:
            if self._closed is None:
                self._finish(Trigger.FAIL, 1006, "", Cause.INTERNAL_ERROR, detail, now)
            self._action = TransportAction.CLOSE
        else:
            self._fail(1011, detail, now, Cause.INTERNAL_ERROR)

    def _drop(self, detail: str, now: float, cause: Cause, status: int | None = None) -> None:
        """End the connection before the upgrade, without a reply."""
        self._finish(Trigger.FAIL, 1006, "", cause, detail, now, status=status)
        self._action = TransportAction.CLOSE

    def _read_head(self, data: bytes, now: float) -> tuple[bytes, bytes, bytes] | None:
        """Buffer the peer's handshake head: (head, head with its CRLFCRLF, what follows) once
        complete; None while incomplete or when it failed (the failure is already handled)."""
        old = self._buf
        buf = old + data if old else data
        end = buf.find(b"\r\n\r\n", max(0, len(old) - 3))
        limit = self._config.max_handshake_size
        if end < 0:
            if buf.count(b"\n") != buf.count(b"\r\n"):
                # RFC 9112 allows accepting bare LF; we refuse it, and at once, instead
                # of waiting for a CRLFCRLF that will never come.
                self._head_error(400, "bare LF line ending in the handshake head", now)
            elif len(buf) > limit:
                self._head_error(431, f"handshake head over {limit} bytes", now)
            else:
                self._buf = buf
                if not self._unit_start:
                    self._unit_start = self._calls
                chunks = self._config.max_msg_chunks
                if self._calls - self._unit_start + 1 >= chunks:
                    self._drop(
                        f"handshake incomplete after {chunks} reads (max_msg_chunks)", now, Cause.CHUNK_LIMIT
                    )
            return None
        self._buf = b""
        self._unit_start = 0
        if end + 4 > limit:
            self._head_error(431, f"handshake head over {limit} bytes", now)
            return None
        return buf[:end], buf[: end + 4], buf[end + 4 :]

    # role hooks
    def _receive_handshake(self, data: bytes, now: float) -> None:
        raise NotImplementedError

    def _head_error(self, status: int, detail: str, now: float) -> None:
        raise NotImplementedError

    def _handshake_timeout(self, now: float) -> None:
        raise NotImplementedError
