"""The receive path after the upgrade: frame parsing, message assembly, the chunk limit.

This is the hot path, so it is one loop over one bytes object with an index:
no generator per frame, no copy of the input when whole frames arrive in one
read, and a frame's header is checked before its payload is waited for, so an
invalid or oversized frame fails at once and the buffer never holds more than
one frame: its header and at most `max(max_message_size, 125)` payload bytes.

The chunk limit (`max_msg_chunks`, OpenSIPS `wss_max_msg_chunks`): one
`receive_data` call is one chunk. A "unit" is one message with all its
fragments (control frames inside it included), or one control frame on its
own. `_unit_start` is the call in which the unit now in progress began (0:
none). A unit still incomplete at the end of its `max_msg_chunks`-th call
cannot complete within the limit, so the connection fails there with 1008.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import sip
from ._frames import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    REPUNIT,
    REPUNIT_WORDS,
    TEXT,
    Violation,
    parse_close,
    unmask,
    unmask_from,
)
from .events import Cause, PingReceived, PongReceived, SipMessageReceived

if TYPE_CHECKING:
    from ._deflate import PerMessageDeflate
    from .config import Config
    from .events import ConnectionClosed, Event
    from .trace import ConnectionTrace

__all__ = ["HOLD_FAILURE", "FrameReader"]

HOLD_FAILURE = 0.25
"""Seconds a protocol violation found right after messages waits for the application's answer
to them before the connection fails (a peer's last valid request still gets its reply)."""

_utf8_decoder = codecs.getincrementaldecoder("utf-8")
is_sip = sip.START_LINE.match
c_unmask = unmask_from


def new_sip_message(message: bytes, binary: bool) -> SipMessageReceived:
    """SipMessageReceived(message, binary), built without the frozen dataclass's __init__.

    The generated __init__ of a frozen dataclass sets each field through
    object.__setattr__; the slot descriptors do the same job in about 60% of
    the time, which matters once per received message.
    """
    event = _new(SipMessageReceived)
    _set_message(event, message)
    _set_binary(event, binary)
    return event


_new = object.__new__
_set_message: Callable[[object, bytes], None] = vars(SipMessageReceived)["message"].__set__
_set_binary: Callable[[object, bool], None] = vars(SipMessageReceived)["binary"].__set__


class FrameReader:
    """Mixin of `Connection`: turns post-upgrade bytes into events and automatic replies."""

    __slots__ = (
        "_buf",
        "_calls",
        "_expect_mask",
        "_frag_compressed",
        "_frag_decoder",
        "_frag_opcode",
        "_frag_parts",
        "_frag_size",
        "_held",
        "_last_msg",
        "_max_size",
        "_partial",
        "_pong_deadline",
        "_unanswered",
        "_unit_start",
    )

    if TYPE_CHECKING:
        _events: list[Event]
        _config: Config
        _closed: ConnectionClosed | None
        _close_sent: bool
        _trace: ConnectionTrace | None
        _deflate: PerMessageDeflate | None

        def _fail(self, code: int, detail: str, now: float, cause: Cause | None = None) -> None: ...
        def _queue(self, opcode: int, payload: bytes) -> None: ...
        def _peer_closed(self, code: int, reason: str, now: float) -> None: ...

    def __init__(self, max_size: int, client: bool, now: float) -> None:
        self._buf = b""
        self._calls = 0
        self._unit_start = 0
        self._last_msg = now
        self._pong_deadline: float | None = None
        self._max_size = max_size
        self._expect_mask = 0 if client else 0x80
        self._frag_opcode = 0
        self._frag_compressed = False  # the message being reassembled is compressed
        self._frag_parts: list[bytes] | None = None
        self._frag_size = 0
        self._frag_decoder: codecs.IncrementalDecoder | None = None
        # The text frame at the start of `_buf` whose payload is still incomplete: how many of
        # its payload bytes are checked to be UTF-8 so far, and the decoder after them.
        self._partial: tuple[int, codecs.IncrementalDecoder] | None = None
        # A violation found while messages delivered to the application have had no answer
        # yet (no send() since): (code, detail, deadline). The connection fails at the
        # application's next send (its answer goes out first), at the deadline, at EOF, or
        # when the application closes, whichever comes first; bytes read meanwhile are dropped.
        self._held: tuple[int, str, float] | None = None
        self._unanswered = False

    def _drop_message(self) -> None:
        """Forget a partly received fragmented message."""
        self._frag_opcode = 0
        self._frag_compressed = False
        self._frag_parts = None
        self._frag_size = 0
        self._frag_decoder = None

    def _receive_frames(self, data: bytes, now: float) -> None:
        buf = self._buf + data if self._buf else data
        end = len(buf)
        pos = 0
        units = 0
        delivered = False
        expect_mask = self._expect_mask
        max_size = self._max_size
        events_append = self._events.append
        deliver = self._closed is None
        from_bytes = int.from_bytes
        partial = self._partial
        self._partial = None
        trace = self._trace
        try:
            while end - pos >= 2:
                b0 = buf[pos]
                b1 = buf[pos + 1]
                n = b1 & 0x7F
                if n < 126:
                    head = 2
                elif n == 126:
                    if end - pos < 4:
                        break
                    n = (buf[pos + 2] << 8) | buf[pos + 3]
                    head = 4
                    if n < 126:
                        raise Violation(1002, "16-bit length used for a payload under 126 bytes")
                else:
                    if end - pos < 10:
                        break
                    n = from_bytes(buf[pos + 2 : pos + 10], "big")
                    head = 10
                    if n < 65536 or n >> 63:
                        raise Violation(1002, "64-bit length not minimal or with its top bit set")
                if b1 & 0x80 != expect_mask:
                    raise Violation(
                        1002, "unmasked frame from a client" if expect_mask else "masked frame from a server"
                    )
                if (b0 == 0x81 or b0 == 0x82) and not self._frag_opcode:  # noqa: PLR1714 (faster than a set)
                    # The common case, kept inline: a whole SIP message in one frame.
                    if n > max_size:
                        raise Violation(1009, f"message over max_message_size ({max_size} bytes)")
                    if expect_mask:
                        start = pos + head + 4
                        stop = start + n
                        if stop > end:
                            if b0 == 0x81 and deliver:
                                self._check_partial(buf, pos, start, end, partial, None)
                            break
                        if c_unmask is not None:
                            payload = c_unmask(buf, start, stop)
                        else:
                            words = (n + 3) >> 2
                            if words <= REPUNIT_WORDS:
                                spread = from_bytes(buf[start - 4 : start], "little") * (
                                    REPUNIT >> ((REPUNIT_WORDS - words) << 5)
                                )
                                payload = (from_bytes(buf[start:stop], "little") ^ spread).to_bytes(
                                    words << 2, "little"
                                )[:n]
                            else:
                                payload = unmask(buf[start:stop], buf[start - 4 : start])
                    else:
                        stop = pos + head + n
                        if stop > end:
                            if b0 == 0x81 and deliver:
                                self._check_partial(buf, pos, pos + head, end, partial, None)
                            break
                        payload = buf[pos + head : stop]
                    pos = stop
                    units += 1
                    if deliver:
                        if b0 == 0x81 and not payload.isascii():
                            try:
                                payload.decode("utf-8")
                            except UnicodeDecodeError:
                                raise Violation(1007, "text message is not UTF-8") from None
                        if is_sip(payload) is not None:
                            events_append(new_sip_message(payload, b0 == 0x82))
                            if trace is not None:
                                trace.received(payload, now)
                        else:
                            self._deliver(payload, b0 & 0x0F, now)
                        delivered = True
                    continue
                if expect_mask:
                    head += 4
                opcode = b0 & 0x0F
                compressed = False
                if b0 & 0x70:
                    if b0 & 0x70 != 0x40 or self._deflate is None:
                        raise Violation(1002, "reserved bits set, and no extension was negotiated")
                    if opcode != TEXT and opcode != BINARY:  # noqa: PLR1714 (faster than a set)
                        raise Violation(1002, "RSV1 set on a control or continuation frame")
                    compressed = True
                if opcode & 0x8:
                    if opcode > PONG:
                        raise Violation(1002, f"reserved control opcode {opcode:#x}")
                    if not b0 & 0x80:
                        raise Violation(1002, "fragmented control frame")
                    if n > 125:
                        raise Violation(1002, "control frame payload over 125 bytes")
                elif opcode > BINARY:
                    raise Violation(1002, f"reserved data opcode {opcode:#x}")
                elif (opcode == 0) != (self._frag_opcode != 0):
                    raise Violation(
                        1002,
                        "new message inside a fragmented one"
                        if opcode
                        else "continuation frame with no message to continue",
                    )
                elif compressed or (not opcode and self._frag_compressed):
                    # The inflated size is checked as it inflates; bound the frame itself too.
                    if n > max_size + (max_size >> 8) + 64:
                        raise Violation(1009, f"message over max_message_size ({max_size} bytes)")
                    compressed = True
                elif self._frag_size + n > max_size:
                    raise Violation(1009, f"message over max_message_size ({max_size} bytes)")
                stop = pos + head + n
                if stop > end:
                    if (
                        deliver
                        and not compressed
                        and (opcode == TEXT or (opcode == 0 and self._frag_decoder is not None))
                    ):
                        self._check_partial(buf, pos, pos + head, end, partial, self._frag_decoder)
                    break
                if not expect_mask:
                    payload = buf[pos + head : stop]
                elif c_unmask is not None:
                    payload = c_unmask(buf, pos + head, stop)
                else:
                    payload = unmask(buf[pos + head : stop], buf[pos + head - 4 : pos + head])
                pos = stop
                if opcode < CLOSE:
                    if compressed:
                        assert self._deflate is not None
                        payload = self._deflate.decompress(payload, b0 > 0x7F, max_size)
                    if self._fragment(payload, opcode, b0 & 0x80, now, deliver, compressed):
                        units += 1
                        delivered = deliver
                    continue
                if not self._frag_opcode:
                    units += 1
                if opcode == CLOSE:
                    code, reason = parse_close(payload)
                    self._peer_closed(code, reason, now)
                    self._buf = b""
                    return
                if deliver:
                    if opcode == PING:
                        events_append(PingReceived(payload))
                        if not self._close_sent:
                            self._queue(PONG, payload)
                    else:
                        events_append(PongReceived(payload))
                        self._pong_deadline = None
        except Violation as exc:
            self._buf = b""
            if (delivered or self._unanswered) and self._closed is None and not self._close_sent:
                self._held = (exc.code, exc.detail, now + HOLD_FAILURE)
            else:
                self._fail(exc.code, exc.detail, now)
            return
        finally:
            if delivered:
                self._last_msg = now
                self._unanswered = True
        self._buf = buf[pos:] if pos < end else b""
        if pos < end or self._frag_opcode:
            start = self._unit_start
            if units or not start:
                start = self._unit_start = self._calls
            if self._calls - start + 1 >= self._config.max_msg_chunks:
                self._buf = b""
                self._fail(
                    1008,
                    f"message incomplete after {self._config.max_msg_chunks} reads (max_msg_chunks)",
                    now,
                    Cause.CHUNK_LIMIT,
                )
        else:
            self._unit_start = 0

    def _fail_held(self, now: float) -> None:
        """Fail the connection for the violation held back (see `_held`)."""
        held = self._held
        if held is not None:
            self._held = None
            self._fail(held[0], held[1], now)

    def _check_partial(
        self,
        buf: bytes,
        pos: int,
        start: int,
        end: int,
        partial: tuple[int, codecs.IncrementalDecoder] | None,
        message_decoder: codecs.IncrementalDecoder | None,
    ) -> None:
        """Fail fast on invalid UTF-8 in a text frame whose payload (from `start`) is still
        incomplete: check the bytes that arrived since the last read, not the whole prefix
        again. `partial` is what the last read checked of this same frame (it is so only when
        the frame is still at the start of the buffer); a continuation frame starts from the
        message's decoder state."""
        if partial is not None and pos == 0:
            checked, decoder = partial
        else:
            checked, decoder = 0, _utf8_decoder()
            if message_decoder is not None:
                decoder.setstate(message_decoder.getstate())
        if start + checked < end:
            data = buf[start + checked : end]
            if self._expect_mask:
                turn = checked & 3
                mask = buf[start - 4 : start]
                data = unmask(data, mask[turn:] + mask[:turn])
            try:
                decoder.decode(data, False)
            except UnicodeDecodeError:
                raise Violation(1007, "text message is not UTF-8") from None
            checked = end - start
        self._partial = (checked, decoder)

    def _fragment(
        self, payload: bytes, opcode: int, fin: int, now: float, deliver: bool, compressed: bool = False
    ) -> bool:
        """Add one fragment (inflated already); True when it completed the message."""
        if opcode:
            self._frag_opcode = opcode
            self._frag_compressed = compressed
            self._frag_parts = [payload]
            self._frag_size = len(payload)
            self._frag_decoder = _utf8_decoder() if opcode == TEXT else None
        else:
            assert self._frag_parts is not None
            self._frag_parts.append(payload)
            self._frag_size += len(payload)
        decoder = self._frag_decoder
        if decoder is not None:
            try:  # fail fast: invalid UTF-8 fails the message at the fragment that has it
                decoder.decode(payload, bool(fin))
            except UnicodeDecodeError:
                raise Violation(1007, "text message is not UTF-8") from None
        if not fin:
            return False
        message = b"".join(self._frag_parts) if len(self._frag_parts) > 1 else self._frag_parts[0]
        opcode = self._frag_opcode
        self._drop_message()
        if deliver:
            self._deliver(message, opcode, now)
        return True

    def _deliver(self, message: bytes, opcode: int, now: float) -> None:
        """Hand one whole message to the SIP layer; answer a CRLF keepalive."""
        event, reply = sip.receive(message, opcode == BINARY)
        self._events.append(event)
        if self._trace is not None and type(event) is SipMessageReceived:
            self._trace.received(message, now)
        self._last_msg = now
        if reply is not None and not self._close_sent:
            self._queue(opcode, reply)
