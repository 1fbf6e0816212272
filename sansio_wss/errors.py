"""The exceptions sansio_wss raises: only ever for the caller's own mistakes, never for a peer's."""

from __future__ import annotations

from .events import ConnectionClosed, HandshakeRejected

__all__ = ["ConfigError", "ConnectFailed", "ConnectionClosedError", "Error", "LocalProtocolError", "NoRoute"]


class Error(Exception):
    """Base class of every exception this library raises."""


class ConfigError(Error, ValueError):
    """A configuration value is invalid; raised when the `Config` is built."""


class LocalProtocolError(Error):
    """The caller asked for something the protocol or the current state forbids.

    Examples: `accept()` twice, `send()` before the handshake completed, a close
    code that may not be sent (1005, 1006, 1015, ...), a close reason longer than
    123 bytes. The connection state is left unchanged.
    """


class ConnectionClosedError(Error):
    """The caller tried to send on a connection that is closing or closed.

    This is a race, not a bug: the peer may close at any moment. `code` and
    `reason` are those of the close, when known.
    """

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"connection is closing or closed (code={code}, reason={reason!r})")
        self.code = code
        self.reason = reason


class ConnectFailed(Error):
    """Adapters: an outbound connection did not open.

    `closed` is the core's terminal event (its `cause`, `status` and `detail` say
    why: TLS, handshake timeout, a rejection...), and `rejected` the server's
    non-101 reply when there was one. Socket errors (refused, unreachable, DNS)
    come as the `OSError` they are.
    """

    def __init__(self, closed: ConnectionClosed, rejected: HandshakeRejected | None = None) -> None:
        super().__init__(f"{closed.cause.value}: {closed.detail}")
        self.closed = closed
        self.rejected = rejected


class NoRoute(Error, LookupError):
    """Adapters: a SIP message cannot be sent there. The flow is gone, or the destination
    can only be reached over a connection it opened itself (a browser's `*.invalid` host,
    RFC 7118 appendix B), or the destination is not a WebSocket URI."""
