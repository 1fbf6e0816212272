"""`ServerConnection`: the server role's opening handshake (request checks, accept, reject)."""

from __future__ import annotations

from ._connection import Connection
from ._deflate import PerMessageDeflate, accept_offer
from ._handshake import SUBPROTOCOL, check_headers, check_request, render_accept, render_reject
from ._http import HttpError, render_response
from ._state import TransportAction, Trigger
from .config import Config, HttpPage
from .errors import LocalProtocolError
from .events import Cause, HandshakeRequest, Headers, Opened
from .forwarded import forwarded_client
from .proxy import ProxyPolicy

__all__ = ["ServerConnection"]

_REJECT_RESERVED = frozenset(("content-length", "connection", "transfer-encoding"))
_RESERVED_HEADERS = frozenset(
    ("upgrade", "connection", "sec-websocket-accept", "sec-websocket-protocol", "sec-websocket-extensions")
)


class ServerConnection(Connection):
    """The server side of one connection accepted by a listener at time `now`.

    The handshake deadline runs from `now`: a client that has not completed
    its request by `handshake_timeout` is dropped. With a `proxy` policy that names a
    forwarding header, a trusted peer's `Forwarded` or `X-Forwarded-For` moves
    `remote_address` to the client it names (see `sansio_wss.forwarded`) before the request
    is checked further: `set_addresses` must have told the socket's addresses.
    """

    __slots__ = ("_proxy", "_request")

    def __init__(self, now: float, config: Config | None = None, *, proxy: ProxyPolicy | None = None) -> None:
        super().__init__(config or _DEFAULT, now, client=False)
        self._request: HandshakeRequest | None = None
        self._proxy = proxy

    @property
    def request(self) -> HandshakeRequest | None:
        """The request awaiting `accept()` or `reject()`, if any."""
        return self._request

    def accept(self, now: float, extra_headers: Headers = ()) -> None:
        """Accept the pending request with a 101, adding `extra_headers` (e.g. Set-Cookie)."""
        request = self._pending("accept")
        check_headers(extra_headers, _RESERVED_HEADERS)
        config = self._config
        extension = ""
        if config.deflate:
            offers = [value for name, value in request.headers if name.lower() == "sec-websocket-extensions"]
            agreement = accept_offer(offers, config.deflate_window_bits)
            if agreement is not None:
                self._deflate = PerMessageDeflate(agreement, False, config.deflate_window_bits)
                extension = agreement.header()
        response = render_accept(request, extra_headers, extension)
        self._out.append(response)
        self._request = None
        self._handshake_deadline = None
        self._move(Trigger.OPENED)
        opened = Opened(SUBPROTOCOL, request.resource, request.headers, request.raw, response, extension)
        self._events.append(opened)
        if self._trace is not None:
            self._trace.reply(response)
            self._trace.opened(now)

    def reject(self, status: int, now: float, headers: Headers = (), body: bytes | None = None) -> None:
        """Refuse the pending request with an HTTP `status` (4xx or 5xx) and optional body."""
        self._pending("reject")
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise LocalProtocolError(f"a rejection status is 4xx or 5xx, not {status!r}")
        check_headers(headers, _REJECT_RESERVED)
        if body is not None and not isinstance(body, bytes):
            raise LocalProtocolError("a rejection body is bytes")
        self._request = None
        self._refuse(status, "rejected by the application", now, Cause.HANDSHAKE_REJECTED, headers, body)

    def _pending(self, command: str) -> HandshakeRequest:
        self._require(command)
        if self._request is None:
            raise LocalProtocolError(f"no request to {command}: wait for HandshakeRequest")
        return self._request

    def _refuse(
        self,
        status: int,
        detail: str,
        now: float,
        cause: Cause,
        headers: Headers = (),
        body: bytes | None = None,
    ) -> None:
        """Answer with an HTTP error, then linger until the client is done."""
        self._reply_and_linger(render_reject(status, detail, headers, body), status, cause, detail, now)

    def _reply_and_linger(
        self, reply: bytes, status: int, cause: Cause, detail: str, now: float, clean: bool = False
    ) -> None:
        """End without a WebSocket: write the HTTP reply, half-close, and wait (bounded by
        `close_timeout`) for the client to close, so that it reads the reply, not a reset."""
        self._out.append(reply)
        if self._trace is not None:
            self._trace.reply(reply)
        self._finish(Trigger.FAIL, 1006, "", cause, detail, now, status=status, clean=clean)
        self._close_deadline = now + self._config.close_timeout
        self._action = TransportAction.HALF_CLOSE

    def _receive_handshake(self, data: bytes, now: float) -> None:
        if self._request is not None:
            self._request = None
            self._refuse(400, "data received before the handshake completed", now, Cause.HANDSHAKE_FAILED)
            return
        parts = self._read_head(data, now)
        if parts is None:
            return
        head, whole, rest = parts
        if self._trace is not None:
            self._trace.request(whole)
        if rest:
            self._refuse(400, "data received before the handshake completed", now, Cause.HANDSHAKE_FAILED)
            return
        try:
            request = check_request(head, whole, self._config)
        except HttpError as exc:
            self._refuse(exc.status, exc.detail, now, Cause.HANDSHAKE_FAILED)
            return
        if isinstance(request, HttpPage):
            self._serve_page(request, now)
            return
        remote, local = self._remote, self._local
        if self._proxy is not None and remote is not None and local is not None:
            client = forwarded_client(request.headers, remote, self._proxy)
            if client is not None:
                self.set_addresses(client, local, proxy=self._proxy_address or remote)
        self._request = request
        if self._config.auto_accept:
            self.accept(now)
        else:
            self._events.append(request)

    def _serve_page(self, page: HttpPage, now: float) -> None:
        """Answer a plain GET with its page, then linger like a rejection (no WebSocket)."""
        headers = (
            ("Content-Type", page.content_type),
            ("Content-Length", str(len(page.body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            ("Connection", "close"),
        )
        reply = render_response(200, headers, page.body)
        detail = f"served the page {page.resource}"
        self._reply_and_linger(reply, 200, Cause.PAGE_SERVED, detail, now, clean=True)

    def _head_error(self, status: int, detail: str, now: float) -> None:
        self._refuse(status, detail, now, Cause.HANDSHAKE_FAILED)

    def _handshake_timeout(self, now: float) -> None:
        self._request = None
        self._drop("no complete handshake within handshake_timeout", now, Cause.HANDSHAKE_TIMEOUT)


_DEFAULT = Config()
