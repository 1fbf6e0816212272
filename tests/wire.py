"""Bytes on the wire for every test folder: upgrade requests and replies, raw frames, open connections."""

from __future__ import annotations

import base64
import hashlib

from hypothesis import settings

from sansio_wss import ClientConnection, Config, ServerConnection, State

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MASK = b"\x37\xfa\x21\x3d"
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

REGISTER = (
    b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK56s\r\n"
    b"CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
)
OK = b"SIP/2.0 200 OK\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"

BASE_FIELDS: list[tuple[str, str]] = [
    ("Host", "sip.example.com:8443"),
    ("Connection", "Upgrade"),
    ("Upgrade", "websocket"),
    ("Origin", "https://app.example.com"),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Key", KEY),
    ("Sec-WebSocket-Protocol", "sip"),
]
"""What a browser sends (Chromium's order), less the fields no one checks."""


def request(
    fields: list[tuple[str, str]] | None = None,
    *,
    drop: tuple[str, ...] = (),
    replace: dict[str, str] | None = None,
    add: list[tuple[str, str]] | None = None,
    line: str = "GET /ws HTTP/1.1",
) -> bytes:
    """An upgrade request: the browser-like base fields, with some dropped, replaced or added."""
    replace = replace or {}
    out = [line]
    for name, value in fields if fields is not None else BASE_FIELDS:
        if name in drop:
            continue
        out.append(f"{name}: {replace.get(name, value)}")
    out.extend(f"{name}: {value}" for name, value in add or [])
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")


REQUEST = request()


def reply_101(key: str = KEY, extra: str = "") -> bytes:
    """The server's 101 for `key`, with `extra` header lines (each ending in CRLF)."""
    accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept.decode()}\r\nSec-WebSocket-Protocol: sip\r\n{extra}\r\n"
    ).encode()


REPLY_101 = reply_101()


def xor_mask(payload: bytes, mask: bytes) -> bytes:
    """RFC 6455 section 5.3 masking, written independently of the core's `unmask`."""
    return bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


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


def server_frame(opcode: int, payload: bytes = b"", *, fin: bool = True) -> bytes:
    """A frame as a server sends it: unmasked."""
    return frame(opcode, payload, fin=fin, mask=None)


def close_body(code: int, reason: bytes = b"") -> bytes:
    """The payload of a Close frame."""
    return code.to_bytes(2, "big") + reason


def open_server(config: Config | None = None, now: float = 0.0) -> ServerConnection:
    """A server connection past its handshake, outputs drained."""
    conn = ServerConnection(now, config or Config())
    conn.receive_data(REQUEST, now)
    assert conn.state is State.OPEN, conn.events()
    conn.events()
    conn.data_to_send()
    return conn


def open_client(config: Config | None = None, now: float = 0.0) -> ClientConnection:
    """A client connection past its handshake, outputs drained."""
    conn = ClientConnection("sip.example.com", now, config=config or Config(), key=KEY)
    conn.data_to_send()
    conn.receive_data(REPLY_101, now)
    assert conn.state is State.OPEN, conn.events()
    conn.events()
    return conn


def examples(fraction: float) -> int:
    """A share of the loaded hypothesis profile's example count, for the costlier tests."""
    return max(5, int(settings().max_examples * fraction))
