"""sansio_wss: SIP over secure WebSocket (RFC 7118 on RFC 6455), as a pure sans-IO core."""

from __future__ import annotations

from ._client import ClientConnection
from ._connection import Connection
from ._reader import HOLD_FAILURE
from ._server import ServerConnection
from ._state import State, TransportAction
from .config import Config, HttpPage
from .errors import ConfigError, ConnectFailed, ConnectionClosedError, Error, LocalProtocolError, NoRoute
from .events import (
    Cause,
    CloseReceived,
    ConnectionClosed,
    CrlfKeepalive,
    Event,
    HandshakeRejected,
    HandshakeRequest,
    Headers,
    InvalidSipMessage,
    Opened,
    PingReceived,
    PongReceived,
    SipMessageReceived,
)
from .listener import Listener
from .proxy import ProxyHeader, ProxyHeaderReader, ProxyPolicy
from .table import ConnectionTable, Flow
from .tls import TLSDomain
from .trace import ConnectionTrace, TlsDetails, TraceConfig, TracePeer, Tracer, TraceStats

__version__ = "0.1.0"

__all__ = [
    "HOLD_FAILURE",
    "Cause",
    "ClientConnection",
    "CloseReceived",
    "Config",
    "HttpPage",
    "ConfigError",
    "ConnectFailed",
    "Connection",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionTable",
    "ConnectionTrace",
    "CrlfKeepalive",
    "Error",
    "Event",
    "Flow",
    "HandshakeRejected",
    "HandshakeRequest",
    "Headers",
    "InvalidSipMessage",
    "Listener",
    "LocalProtocolError",
    "NoRoute",
    "Opened",
    "PingReceived",
    "PongReceived",
    "ProxyHeader",
    "ProxyHeaderReader",
    "ProxyPolicy",
    "ServerConnection",
    "SipMessageReceived",
    "State",
    "TLSDomain",
    "TlsDetails",
    "TraceConfig",
    "TracePeer",
    "TraceStats",
    "Tracer",
    "TransportAction",
    "__version__",
]
