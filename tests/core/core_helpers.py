"""Helpers of the core tests: the shared `wire` builders, and checks of what a connection did."""

from __future__ import annotations

from wire import (
    ACCEPT,
    BASE_FIELDS,
    KEY,
    MASK,
    OK,
    REGISTER,
    close_body,
    frame,
    open_client,
    open_server,
    reply_101,
    request,
    server_frame,
)

from sansio_wss import Connection, ConnectionClosed, Event, State, TransportAction

__all__ = [
    "ACCEPT",
    "BASE_FIELDS",
    "KEY",
    "MASK",
    "OK",
    "REGISTER",
    "action",
    "close_body",
    "closed",
    "frame",
    "open_client",
    "open_server",
    "reply_101",
    "request",
    "sent_close_code",
    "server_frame",
    "state",
    "unmask_client_frame",
]


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
