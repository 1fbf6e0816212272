"""Helpers shared by the property tests: `wire` builders, parsing our own output, splitting input."""

from __future__ import annotations

import itertools

from wire import (
    BINARY,
    CLOSE,
    CONTINUATION,
    KEY,
    MASK,
    PING,
    PONG,
    REPLY_101,
    REQUEST,
    TEXT,
    examples,
    frame,
    open_client,
    open_server,
    xor_mask,
)

__all__ = [
    "BINARY",
    "CLOSE",
    "CONTINUATION",
    "Frame",
    "HUGE_CHUNKS",
    "KEY",
    "MASK",
    "PING",
    "PONG",
    "REPLY_101",
    "REQUEST",
    "TEXT",
    "examples",
    "frame",
    "is_utf8",
    "open_client",
    "open_server",
    "parse_frames",
    "sip_message",
    "split",
    "xor_mask",
]


HUGE_CHUNKS = 1 << 16
"""The largest `max_msg_chunks` a Config takes: in effect, no chunk limit."""

Frame = tuple[int, bool, bytes]
"""(opcode, fin, unmasked payload) of one frame we sent."""


def parse_frames(data: bytes, *, masked: bool) -> list[Frame]:
    """Every frame in `data` (which must hold whole frames only), checking our own sending rules:
    mask bit as the role requires, no reserved bits, minimal length encoding."""
    frames: list[Frame] = []
    pos = 0
    while pos < len(data):
        b0, b1 = data[pos], data[pos + 1]
        assert b0 & 0x70 == 0, f"reserved bits in a frame we sent: {data[pos : pos + 2]!r}"
        assert bool(b1 & 0x80) == masked, f"mask bit wrong in a frame we sent: {data[pos : pos + 2]!r}"
        n = b1 & 0x7F
        pos += 2
        if n == 126:
            n = int.from_bytes(data[pos : pos + 2], "big")
            assert n >= 126, "non-minimal 16-bit length sent"
            pos += 2
        elif n == 127:
            n = int.from_bytes(data[pos : pos + 8], "big")
            assert n >= 65536, "non-minimal 64-bit length sent"
            pos += 8
        mask = None
        if masked:
            mask = data[pos : pos + 4]
            pos += 4
        payload = data[pos : pos + n]
        assert len(payload) == n, f"truncated frame in our output: {data!r}"
        pos += n
        frames.append((b0 & 0x0F, bool(b0 & 0x80), payload if mask is None else xor_mask(payload, mask)))
    return frames


def split(data: bytes, cuts: list[int] | set[int]) -> list[bytes]:
    """`data` cut at the given offsets (those outside 1..len-1 are ignored); never an empty piece."""
    points = sorted(c for c in set(cuts) if 0 < c < len(data))
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def sip_message(method: str, body: str) -> bytes:
    """A SIP request with a valid start line and `body` (any text)."""
    raw = body.encode("utf-8")
    return (
        f"{method} sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK1\r\n"
        f"CSeq: 1 {method}\r\nContent-Length: {len(raw)}\r\n\r\n"
    ).encode() + raw


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
