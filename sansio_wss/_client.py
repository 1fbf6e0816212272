"""`ClientConnection`: the client role's opening handshake (our request, the server's reply)."""

from __future__ import annotations

import base64
import os

from ._connection import Connection
from ._deflate import PerMessageDeflate
from ._handshake import SUBPROTOCOL, build_request, check_reply
from ._http import HttpError
from ._state import Trigger
from .config import Config
from .errors import LocalProtocolError
from .events import Cause, HandshakeRejected, Opened
from .sip import check_host, check_port, check_resource, parse_ws_uri
from .trace import ConnectionTrace

__all__ = ["ClientConnection"]


class ClientConnection(Connection):
    """The client side of one outbound connection, opened at time `now`.

    The upgrade request is queued at once: write `data_to_send()` as soon as
    the transport (TLS) is up. `host` is the server's name or IP literal (IPv6
    without brackets), `port` defaults to `Config.port` (OpenSIPS `wss_port`),
    `resource` to `Config.resource` (`wss_resource`). `key` is for tests only.
    An invalid host, port or resource raises LocalProtocolError.
    """

    __slots__ = ("_key", "_request_bytes", "_resource")

    def __init__(
        self,
        host: str,
        now: float,
        *,
        port: int | None = None,
        resource: str | None = None,
        config: Config | None = None,
        key: str | None = None,
    ) -> None:
        config = config or _DEFAULT
        try:
            host = check_host(host)
            port = check_port(config.port if port is None else port)
            resource = check_resource(resource or config.resource)
        except ValueError as exc:
            raise LocalProtocolError(str(exc)) from None
        super().__init__(config, now, client=True)
        self._key = key or base64.b64encode(os.urandom(16)).decode("ascii")
        self._resource = resource
        self._request_bytes = build_request(host, port, resource, self._key, config)
        self._out.append(self._request_bytes)

    @classmethod
    def from_uri(cls, uri: str, now: float, config: Config | None = None) -> ClientConnection:
        """A connection to `wss://host[:port][/resource]`; ValueError for an invalid URI."""
        config = config or _DEFAULT
        target = parse_ws_uri(uri, config.port, config.resource)
        return cls(target.host, now, port=target.port, resource=target.resource, config=config)

    def _receive_handshake(self, data: bytes, now: float) -> None:
        parts = self._read_head(data, now)
        if parts is None:
            return
        head, whole, rest = parts
        trace = self._trace
        if trace is not None:
            trace.reply(whole)
        config = self._config
        try:
            status, reason, headers, agreement = check_reply(head, self._key, config)
        except HttpError as exc:
            self._drop(exc.detail, now, Cause.HANDSHAKE_FAILED, exc.status or None)
            return
        if status != 101:
            self._events.append(HandshakeRejected(status, reason, headers, rest))
            self._drop(f"server answered {status} {reason}", now, Cause.HANDSHAKE_REJECTED, status)
            return
        self._handshake_deadline = None
        self._move(Trigger.OPENED)
        extension = ""
        if agreement is not None:
            self._deflate = PerMessageDeflate(agreement, True, config.deflate_window_bits)
            extension = agreement.header()
        opened = Opened(SUBPROTOCOL, self._resource, headers, self._request_bytes, whole, extension)
        self._events.append(opened)
        self._request_bytes = b""
        if trace is not None:
            trace.opened(now)
        if rest:
            self._receive_frames(rest, now)

    def attach_trace(self, trace: ConnectionTrace) -> None:
        """Report to `trace` from now on, starting with the upgrade request already queued."""
        super().attach_trace(trace)
        if self._request_bytes:
            trace.request(self._request_bytes)

    def _head_error(self, status: int, detail: str, now: float) -> None:
        self._drop(detail, now, Cause.HANDSHAKE_FAILED)

    def _handshake_timeout(self, now: float) -> None:
        self._drop("no 101 reply within handshake_timeout", now, Cause.HANDSHAKE_TIMEOUT)


_DEFAULT = Config()
