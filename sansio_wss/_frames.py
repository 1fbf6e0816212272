"""RFC 6455 frames: opcodes, close codes, masking and encoding (decoding lives in `_reader`)."""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = [
    "BINARY",
    "CLOSE",
    "CONTINUATION",
    "PING",
    "PONG",
    "REPUNIT",
    "REPUNIT_WORDS",
    "TEXT",
    "Violation",
    "MaskSource",
    "close_payload",
    "encode",
    "parse_close",
    "sendable_close_code",
    "unmask",
    "unmask_from",
    "valid_received_close_code",
]


class Violation(Exception):
    """The peer broke RFC 6455 or a limit: fail the connection with `code`."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

# 0x01000000 repeated: multiplying a 32-bit mask by a slice of this int lays the
# mask over a whole payload in one C-level multiplication (see `unmask`).
REPUNIT_WORDS = 1 << 14
REPUNIT = int.from_bytes(b"\x01\x00\x00\x00" * REPUNIT_WORDS, "little")


def _load_speedups() -> Callable[[bytes, int, int], bytes] | None:
    """The C unmasking helper, unless it was not built or SANSIO_WSS_PURE=1 asks for the
    reference path (the tests run both)."""
    if os.environ.get("SANSIO_WSS_PURE", "") not in ("", "0"):
        return None
    try:
        from ._speedups import unmask_from  # noqa: PLC0415 - optional, and only when allowed
    except ImportError:
        return None
    return unmask_from


unmask_from = _load_speedups()
"""`unmask_from(buffer, start, stop)`: `buffer[start:stop]` unmasked with the 4 bytes before
`start`, in C; None when only the pure-Python path is available."""


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR `payload` with the 4-byte `mask` repeated (RFC 6455 section 5.3).

    Pure Python, so the work is pushed into three big-int operations: the mask
    repeated over the payload is `mask * repunit` (one multiplication instead of
    building and converting a repeated byte string), then one XOR and one
    conversion back. The repunit for n words is the top of a shared 64 KiB one
    shifted down, which costs a copy of n words.
    """
    n = len(payload)
    words = (n + 3) >> 2
    m = int.from_bytes(mask, "little")
    if words <= REPUNIT_WORDS:
        spread = m * (REPUNIT >> ((REPUNIT_WORDS - words) << 5))
    else:
        spread = int.from_bytes(mask * words, "little")
    return (int.from_bytes(payload, "little") ^ spread).to_bytes(words << 2, "little")[:n]


class MaskSource:
    """Client masking keys from the OS's CSPRNG, drawn 4 KiB at a time (RFC 6455 section 10.3)."""

    __slots__ = ("_pool", "_pos")

    def __init__(self) -> None:
        self._pool = b""
        self._pos = 0

    def next(self) -> bytes:
        """Four fresh unpredictable bytes."""
        pos = self._pos
        if pos >= len(self._pool):
            self._pool = os.urandom(4096)
            pos = 0
        self._pos = pos + 4
        return self._pool[pos : pos + 4]


def encode(opcode: int, payload: bytes, mask: bytes | None = None, fin: bool = True) -> bytes:
    """One frame with the minimal length encoding; masked when `mask` is given."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    mbit = 0x80 if mask is not None else 0
    if n < 126:
        head = bytes((b0, mbit | n))
    elif n < 65536:
        head = bytes((b0, mbit | 126, n >> 8, n & 0xFF))
    else:
        head = bytes((b0, mbit | 127)) + n.to_bytes(8, "big")
    if mask is None:
        return head + payload
    if unmask_from is not None:
        return head + mask + unmask_from(mask + payload, 4, 4 + n)
    return head + mask + unmask(payload, mask)


def sendable_close_code(code: int) -> bool:
    """May we put `code` in a Close frame? (RFC 6455 section 7.4, IANA registry)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def valid_received_close_code(code: int) -> bool:
    """Is `code` acceptable in a peer's Close frame? The same set as we may send."""
    return sendable_close_code(code)


def close_payload(code: int | None, reason: str) -> bytes:
    """The payload of a Close frame."""
    if code is None:
        return b""
    return code.to_bytes(2, "big") + reason.encode("utf-8")


def parse_close(payload: bytes) -> tuple[int, str]:
    """(code, reason) of a received Close payload, 1005 for an empty one.

    Raises Violation for a one-byte payload or a code that may not be sent
    (1002), or a reason that is not UTF-8 (1007).
    """
    if not payload:
        return 1005, ""
    if len(payload) == 1:
        raise Violation(1002, "close frame with a one-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if not valid_received_close_code(code):
        raise Violation(1002, f"invalid close code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise Violation(1007, "close reason is not UTF-8") from None
    return code, reason
