"""Hypothesis profiles and byte builders shared by the reference tests (imported, not a conftest)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# The same profiles as tests/properties/props_support.py, keep the two in step (each folder is
# importable on its own, and the last one imported wins): "ci" by default, HYPOTHESIS_PROFILE=hunt
# for ten times the examples.
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

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
MASK = b"\x37\xfa\x21\x3d"

BASE_FIELDS: list[tuple[str, str]] = [
    ("Host", "sip.example.com:8443"),
    ("Connection", "Upgrade"),
    ("Upgrade", "websocket"),
    ("Origin", "https://app.example.com"),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Key", KEY),
    ("Sec-WebSocket-Protocol", "sip"),
]
REQUEST = ("GET /ws HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in BASE_FIELDS) + "\r\n").encode()

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
    length: int | None = None,
) -> bytes:
    """One raw frame with any header we like; masked (as a client sends) by default. `length`
    overrides the encoded length (for impossible lengths), `length_bytes` its encoding (0, 2, 8)."""
    n = len(payload) if length is None else length
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


def examples(fraction: float) -> int:
    """A share of the loaded profile's example count, for the costlier tests."""
    return max(5, int(settings().max_examples * fraction))
