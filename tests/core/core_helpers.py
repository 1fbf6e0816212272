"""Byte builders and drivers shared by the core tests: raw frames, upgrade requests, open connections."""

from __future__ import annotations

import base64
import hashlib

from sansio_wss import (
    ClientConnection,
    Config,
    Connection,
    ConnectionClosed,
    Event,
    ServerConnection,
    State,
    TransportAction,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
MASK = b"\x37\xfa\x21\x3d"
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


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    mask: bytes | None = MASK,
    rsv: int = 0,
    length_bytes: int | None = None,
) -> bytes:
    """A raw frame, masked by default (as a client sends), with any header we like."""
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
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def server_frame(opcode: int, payload: bytes = b"", **kw: object) -> bytes:
    """A frame as a server sends it: unmasked."""
    return frame(opcode, payload, mask=None, **kw)  # type: ignore[arg-type]


def close_body(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


def open_server(config: Config | None = None, now: float = 0.0) -> ServerConnection:
    """A server connection past its handshake, outputs drained."""
    conn = ServerConnection(now, config or Config())
    conn.receive_data(request(), now)
    assert conn.state is State.OPEN, conn.events()
    conn.events()
    conn.data_to_send()
    return conn


def reply_101(key: str = KEY, extra: str = "") -> bytes:
    accept = base64.b64encode(hashlib.sha1(key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept.decode()}\r\nSec-WebSocket-Protocol: sip\r\n{extra}\r\n"
    ).encode()


def open_client(config: Config | None = None, now: float = 0.0) -> ClientConnection:
    """A client connection past its handshake, outputs drained."""
    conn = ClientConnection("sip.example.com", now, config=config or Config(), key=KEY)
    conn.data_to_send()
    conn.receive_data(reply_101(), now)
    assert conn.state is State.OPEN, conn.events()
    conn.events()
    return conn


def closed(events: list[Event]) -> ConnectionClosed:
    """The one ConnectionClosed among `events`, which must be the last."""
    found = [e for e in events if isinstance(e, ConnectionClosed)]
    assert len(found) == 1, events
    assert events[-1] is found[0], events
    return found[0]


def sent_close_code(data: bytes) -> int | None:
    """The code of the unmasked Close frame at the end of `data` (None for an empty Close)."""
    start = data.rfind(b"\x88")
    assert start >= 0, data
    n = data[start + 1] & 0x7F
    assert data[start + 1] & 0x80 == 0
    if n == 0:
        return None
    return int.from_bytes(data[start + 2 : start + 4], "big")


def unmask_client_frame(data: bytes) -> tuple[int, bytes]:
    """(opcode, payload) of one masked frame sent by our client."""
    assert data[1] & 0x80
    n = data[1] & 0x7F
    pos = 2
    if n == 126:
        n = int.from_bytes(data[2:4], "big")
        pos = 4
    elif n == 127:
        n = int.from_bytes(data[2:10], "big")
        pos = 10
    mask = data[pos : pos + 4]
    body = data[pos + 4 : pos + 4 + n]
    return data[0] & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(body))


def action(conn: Connection) -> TransportAction:
    """`conn.transport_action`, read through a call so that mypy does not narrow it between steps."""
    return conn.transport_action


def state(conn: Connection) -> State:
    """`conn.state`, read through a call so that mypy does not narrow it between steps."""
    return conn.state
