"""Hypothesis profiles and byte builders shared by the property tests (imported, not a conftest)."""

from __future__ import annotations

import base64
import hashlib
import itertools
import os

from hypothesis import HealthCheck, settings

from sansio_wss import ClientConnection, Config, ServerConnection, State

# "ci" (the default) keeps tests/properties + tests/reference under a minute on 2 cores;
# HYPOTHESIS_PROFILE=hunt runs ten times as many examples to look for bugs. Registered the same
# in tests/reference/ref_support.py: keep the two in step (the last one imported wins).
settings.register_profile(
    "ci",
    max_examples=200,
    stateful_step_count=30,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile("hunt", settings.get_profile("ci"), max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def examples(fraction: float) -> int:
    """A share of the loaded profile's example count, for the costlier tests."""
    return max(5, int(settings().max_examples * fraction))


KEY = "dGhlIHNhbXBsZSBub25jZQ=="
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MASK = b"\x37\xfa\x21\x3d"
HUGE_CHUNKS = 1 << 16
"""The largest `max_msg_chunks` a Config takes: in effect, no chunk limit."""

REQUEST = (
    b"GET /ws HTTP/1.1\r\nHost: sip.example.com:8443\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Origin: https://app.example.com\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Key: " + KEY.encode() + b"\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
)
REPLY_101 = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: " + base64.b64encode(hashlib.sha1(KEY.encode() + GUID).digest()) + b"\r\n"
    b"Sec-WebSocket-Protocol: sip\r\n\r\n"
)

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def xor_mask(payload: bytes, mask: bytes) -> bytes:
    """RFC 6455 section 5.3 masking, written independently of the core's `unmask`."""
    n = len(payload)
    if n == 0:
        return b""
    spread = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(spread, "big")).to_bytes(n, "big")


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    mask: bytes | None = MASK,
    rsv: int = 0,
    length_bytes: int | None = None,
) -> bytes:
    """One raw frame with any header we like; masked (as a client sends) by default."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    mbit = 0x80 if mask is not None else 0
    size = length_bytes if length_bytes is not None else (0 if n < 126 else 2 if n < 65536 else 8)
    if size == 0:
        head = bytes((b0, mbit | n))
    elif size == 2:
        head = bytes((b0, mbit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, mbit | 127)) + n.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + xor_mask(payload, mask)


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


def open_server(config: Config, now: float = 0.0) -> ServerConnection:
    """A server past its handshake, outputs drained."""
    conn = ServerConnection(now, config)
    conn.receive_data(REQUEST, now)
    assert conn.state is State.OPEN, conn.events()
    conn.events()
    conn.data_to_send()
    return conn


def open_client(config: Config, now: float = 0.0) -> ClientConnection:
    """A client past its handshake, outputs drained."""
    conn = ClientConnection("sip.example.com", now, config=config, key=KEY)
    conn.data_to_send()
    conn.receive_data(REPLY_101, now)
    assert conn.state is State.OPEN, conn.events()
    conn.events()
    return conn


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
