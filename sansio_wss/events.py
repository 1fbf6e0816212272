"""Events the core emits, and the `Cause` of a connection's end: frozen, slotted, fully typed."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "Cause",
    "CloseReceived",
    "ConnectionClosed",
    "CrlfKeepalive",
    "Event",
    "HandshakeRejected",
    "HandshakeRequest",
    "Headers",
    "InvalidSipMessage",
    "Opened",
    "PingReceived",
    "PongReceived",
    "SipMessageReceived",
]

Headers = tuple[tuple[str, str], ...]
"""HTTP header fields in the order received, names as sent, values decoded as Latin-1."""


class Cause(str, enum.Enum):
    """Why a connection ended. The README's error table maps each to its code and remedy."""

    PEER_CLOSED = "peer_closed"
    """The peer started the closing handshake; it completed."""
    LOCAL_CLOSED = "local_closed"
    """`close()` started the closing handshake (or closed before the upgrade)."""
    HANDSHAKE_FAILED = "handshake_failed"
    """The peer's upgrade request or reply broke RFC 6455/7118 or our policy."""
    HANDSHAKE_REJECTED = "handshake_rejected"
    """Server: the application rejected the request. Client: the server did not answer 101."""
    PROTOCOL_ERROR = "protocol_error"
    """A frame broke RFC 6455 (close code 1002)."""
    INVALID_UTF8 = "invalid_utf8"
    """A text message or close reason was not UTF-8 (close code 1007)."""
    MESSAGE_TOO_BIG = "message_too_big"
    """A message, across its fragments, exceeded `max_message_size` (close code 1009)."""
    CHUNK_LIMIT = "chunk_limit"
    """A request or message spanned more than `max_msg_chunks` reads (1008, or no reply)."""
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    """The opening handshake did not complete within `handshake_timeout`."""
    CLOSE_TIMEOUT = "close_timeout"
    """The peer did not finish the closing handshake within `close_timeout`."""
    PONG_TIMEOUT = "pong_timeout"
    """A keepalive Ping got no Pong within `pong_timeout` (close code 1011)."""
    IDLE_TIMEOUT = "idle_timeout"
    """No SIP message either way for `idle_timeout` (close code 1001)."""
    EOF = "eof"
    """The transport ended before the closing handshake (code 1006)."""
    TRANSPORT_ERROR = "transport_error"
    """The adapter reported that the transport failed (code 1006)."""
    TLS_FAILED = "tls_failed"
    """The TLS handshake or a TLS record failed (adapters; code 1006)."""
    TLS_HANDSHAKE_TIMEOUT = "tls_handshake_timeout"
    """The TLS handshake did not complete within `tls_handshake_timeout` (adapters)."""
    SEND_TIMEOUT = "send_timeout"
    """A write could not complete within `send_timeout`: the peer stopped reading (adapters)."""
    PROXY_FAILED = "proxy_failed"
    """A listener that requires a PROXY header got none in time, a malformed one, or a
    connection from a peer that is not a trusted proxy: closed without a reply (code 1006)."""
    PAGE_SERVED = "page_served"
    """Server: a plain HTTP GET was answered with one of `Config.pages` (status 200, clean)."""
    INTERNAL_ERROR = "internal_error"
    """A bug in this library (close code 1011); please report it."""


@dataclass(frozen=True, slots=True)
class HandshakeRequest:
    """Server: a valid upgrade request that awaits `accept()` or `reject()`.

    Emitted only when `Config.auto_accept` is off, and only after the Origin,
    subprotocol, version and resource checks passed.
    """

    resource: str
    host: str
    origin: str | None
    subprotocols: tuple[str, ...]
    headers: Headers
    raw: bytes


@dataclass(frozen=True, slots=True)
class Opened:
    """The opening handshake completed: SIP messages may flow both ways.

    `headers` are the peer's (request headers on a server, reply headers on a
    client); `request` and `response` are the raw handshake bytes, for tracing.
    `extensions` is the agreed `Sec-WebSocket-Extensions` (permessage-deflate's
    parameters), empty when none was.
    """

    subprotocol: str
    resource: str
    headers: Headers
    request: bytes
    response: bytes
    extensions: str = ""


@dataclass(frozen=True, slots=True)
class HandshakeRejected:
    """Client: the server answered the upgrade with a well-formed non-101 reply.

    A 401 carries its challenge and a 3xx its `Location` in `headers`.
    `ConnectionClosed` follows.
    """

    status: int
    reason: str
    headers: Headers
    body: bytes


@dataclass(frozen=True, slots=True)
class SipMessageReceived:
    """One whole SIP message: one WebSocket message, reassembled from its fragments.

    `binary` tells the frame type it came in; a text message has been checked to
    be UTF-8.
    """

    message: bytes
    binary: bool


@dataclass(frozen=True, slots=True)
class InvalidSipMessage:
    """A WebSocket message whose start line is not a SIP request or status line.

    The connection stays open: the SIP stack decides what to do.
    """

    message: bytes
    binary: bool
    detail: str


@dataclass(frozen=True, slots=True)
class CrlfKeepalive:
    """An RFC 5626 CRLF keepalive: `ping` is True for `\\r\\n\\r\\n` (already
    answered with `\\r\\n`), False for a lone `\\r\\n` (an answer to ours)."""

    ping: bool


@dataclass(frozen=True, slots=True)
class PingReceived:
    """A WebSocket Ping; the Pong is already queued."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class PongReceived:
    """A WebSocket Pong."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer sent a Close frame (1005 when it carried no code); the reply is queued."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """Terminal event, emitted exactly once: the WebSocket connection is over.

    `code` is the close code that ended it: the peer's when it closed first, ours
    when we closed or failed the connection, 1005 for a Close without a code,
    1006 when no Close frame was exchanged. `clean` is True when the closing
    handshake completed. `status` is the HTTP status sent (server) or received
    (client) when the connection ended during the opening handshake. `detail`
    says exactly what happened, for logs.

    Keep honouring `transport_action` afterwards: the core may still ask the
    adapter to linger (read and discard) before closing the transport.
    """

    code: int
    reason: str
    clean: bool
    cause: Cause
    status: int | None = None
    detail: str = ""


Event = (
    HandshakeRequest
    | Opened
    | HandshakeRejected
    | SipMessageReceived
    | InvalidSipMessage
    | CrlfKeepalive
    | PingReceived
    | PongReceived
    | CloseReceived
    | ConnectionClosed
)
"""Any event the core emits."""
