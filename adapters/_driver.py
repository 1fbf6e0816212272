"""`Driver`: one connection's TLS (an `ssl.SSLObject` over memory BIOs, or none on a plain `ws`
listener), its PROXY header if its listener wants one, and its sans-IO core, turned into what an
adapter does: write these bytes, arm this timer, half-close or close, deliver these events.

Every adapter that owns raw sockets (asyncio, blocking) runs this same object, so TLS
pumping, the TLS-handshake timeout, the send timeout and close_notify live here once.
Doing TLS over memory BIOs is also what keeps an idle asyncio connection small: the
stdlib's SSL transport holds a 256 KiB read buffer per connection.

The core connection exists from the start (its handshake timer runs from accept or
connect), but sees no bytes and writes none until the PROXY header is read and the TLS
handshake has completed.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from typing import TypeVar

from sansio_wss import (
    Cause,
    Connection,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionTrace,
    Event,
    InvalidSipMessage,
    ProxyHeader,
    ProxyHeaderReader,
    ProxyPolicy,
    SipMessageReceived,
    TransportAction,
)

from ._tls import tls_details

__all__ = ["AsyncMessages", "ConnectionView", "Driver", "Message", "TLSInfo"]

Message = SipMessageReceived | InvalidSipMessage
"""What a connection's `recv()` returns."""
_Self = TypeVar("_Self", bound="AsyncMessages")

_READ = 65536
_ABORT_CAUSES = frozenset(
    (Cause.TRANSPORT_ERROR, Cause.TLS_FAILED, Cause.TLS_HANDSHAKE_TIMEOUT, Cause.SEND_TIMEOUT)
)


class TLSInfo:
    """What TLS negotiated, once the handshake is done (for tracing and domain checks)."""

    __slots__ = ("cipher", "peer_certificate", "server_name", "version")

    def __init__(self, tls: ssl.SSLObject, server_name: str | None) -> None:
        self.version: str | None = tls.version()
        cipher = tls.cipher()
        self.cipher: str | None = cipher[0] if cipher else None
        self.peer_certificate: bytes | None = tls.getpeercert(binary_form=True)
        self.server_name = server_name


class Driver:
    """TLS plus core for one connection; the adapter feeds bytes and time, and performs actions.

    After every call that feeds it (`start`, `receive`, `receive_eof`, `handle_timer`,
    `send`, `close`, `send_blocked`), the adapter writes `data_to_send()`, delivers
    `events()`, applies `transport_action` and arms one timer at `get_timer()`.
    """

    __slots__ = (
        "_close_notify",
        "_conn",
        "_gate",
        "_incoming",
        "_outgoing",
        "_proxy",
        "_send_deadline",
        "_send_expired",
        "_server_name",
        "_tls",
        "_tls_deadline",
        "_trace",
        "proxy_header",
        "tls_info",
    )

    def __init__(
        self,
        context: ssl.SSLContext | None,
        conn: Connection,
        now: float,
        *,
        server_hostname: str | None = None,
        proxy: ProxyPolicy | None = None,
    ) -> None:
        """`context` None: plain `ws`, no TLS. `proxy` with `proxy_protocol`: the connection
        must come from a trusted proxy and begin with a PROXY header."""
        self._conn = conn
        self._server_name = server_hostname
        self._tls: ssl.SSLObject | None = None
        self._tls_deadline: float | None = None
        if context is not None:
            self._incoming = ssl.MemoryBIO()
            self._outgoing = ssl.MemoryBIO()
            server = server_hostname is None
            self._tls = context.wrap_bio(
                self._incoming, self._outgoing, server_side=server, server_hostname=server_hostname
            )
            self._tls_deadline = now + conn.config.tls_handshake_timeout
        self._gate: ProxyHeaderReader | None = None
        if proxy is not None and proxy.proxy_protocol:
            self._gate = ProxyHeaderReader(now, proxy.header_timeout, conn.config.max_msg_chunks)
        self._proxy = proxy
        self._send_deadline: float | None = None
        self._close_notify = False
        self._send_expired = False
        self.tls_info: TLSInfo | None = None
        """Filled in once the TLS handshake is done (never on a plain connection)."""
        self.proxy_header: ProxyHeader | None = None
        """The PROXY header the connection began with, once read (its TLVs, say)."""
        self._trace: ConnectionTrace | None = None

    @property
    def connection(self) -> Connection:
        """The sans-IO core connection."""
        return self._conn

    @property
    def remote(self) -> tuple[str, int]:
        """The peer's (IP, port): the socket's, or the client's a trusted proxy named."""
        return self._conn.remote_address or ("", 0)

    @property
    def local(self) -> tuple[str, int]:
        """Our (IP, port): the socket's, or the one a PROXY header says the client connected to."""
        return self._conn.local_address or ("", 0)

    @property
    def transport_action(self) -> TransportAction:
        """What to do with the socket once `data_to_send()` is written."""
        return self._conn.transport_action

    @property
    def must_abort(self) -> bool:
        """On CLOSE: drop what is still queued for the socket instead of flushing it first,
        because the transport failed (the peer stopped reading, TLS broke, a reset)."""
        closed = self._conn.closed_event
        return self._send_expired or (closed is not None and closed.cause in _ABORT_CAUSES)

    # ------------------------------------------------------------------ inputs

    def set_addresses(self, remote: tuple[str, int], local: tuple[str, int], now: float) -> None:
        """Both ends' (IP, port) as the socket tells them: the adapter calls this once, before
        `start` (with `("", 0)` for a socket reset before it could tell). A connection that
        must begin with a PROXY header fails here when its peer is not a trusted proxy; the
        others are traced from here, if the config has a tracer."""
        self._conn.set_addresses(remote, local)
        if self._gate is None:
            self._attach_trace(now)
        elif self._proxy is not None and not self._proxy.trusts(remote[0]):
            self._refuse(f"{remote[0] or 'the peer'} is not a trusted proxy", now)

    def start(self, now: float) -> None:
        """Begin the TLS handshake (a client's ClientHello is then in `data_to_send()`)."""
        if self._tls is not None and self._conn.transport_action is TransportAction.NONE:
            self._handshake(self._tls, now)

    def receive(self, data: bytes | memoryview, now: float) -> None:
        """Bytes read from the socket (copied: the caller may reuse its buffer)."""
        if self._conn.transport_action is TransportAction.CLOSE:
            return  # ended (a refused PROXY peer, say): nothing more is read, nothing answered
        gate = self._gate
        if gate is not None:
            rest = gate.receive_data(bytes(data))
            if rest is None:
                if gate.error is not None:
                    self._refuse(gate.error, now)
                return
            self._proxied(gate, now)
            if not rest:
                return
            data = rest
        tls = self._tls
        if tls is None:
            self._conn.receive_data(data if type(data) is bytes else bytes(data), now)
            return
        self._incoming.write(data)
        if self.tls_info is None:
            self._handshake(tls, now)
            if self.tls_info is None:
                return
        chunks: list[bytes] = []
        eof = False
        while True:
            try:
                chunk = tls.read(_READ)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:  # the peer's close_notify
                eof = True
                break
            except ssl.SSLError as exc:
                self._feed(chunks, now)
                self._conn.transport_failed(now, f"TLS error: {exc.reason or exc}", Cause.TLS_FAILED)
                return
            if not chunk:
                eof = True
                break
            chunks.append(chunk)
        self._feed(chunks, now)
        if eof:
            self._conn.receive_eof(now)

    def receive_eof(self, now: float) -> None:
        """The socket reached EOF (or was reset: then call `failed`)."""
        self._conn.receive_eof(now)

    def failed(self, now: float, detail: str) -> None:
        """The socket failed (reset, refused write)."""
        self._conn.transport_failed(now, detail)

    def handle_timer(self, now: float) -> None:
        """Act on the deadlines that have passed: PROXY header, TLS handshake, send, then the core's."""
        gate = self._gate
        if gate is not None and gate.handle_timer(now):
            self._refuse(gate.error or "", now)
            return
        if self._tls_deadline is not None and now >= self._tls_deadline:
            self._conn.transport_failed(now, "TLS handshake not done in time", Cause.TLS_HANDSHAKE_TIMEOUT)
        elif self._send_deadline is not None and now >= self._send_deadline:
            # Also after CLOSE: the last bytes could not be flushed in time, so drop them.
            self._send_expired = True
            self._send_deadline = None
            self._conn.transport_failed(now, "the peer stopped reading", Cause.SEND_TIMEOUT)
        else:
            self._conn.handle_timer(now)

    def send_blocked(self, since: float | None) -> None:
        """The socket's write buffer is full since `since` (None: it drained again).

        The connection fails with `Cause.SEND_TIMEOUT` if it stays full for
        `send_timeout`. Meanwhile the adapter bounds what it queues: senders wait, and
        reading stops before the core's answers (Pongs) to a peer that does not read
        can pile up without bound, but not for so long that a peer reading slowly never
        has its Close frame read.
        """
        self._send_deadline = None if since is None else since + self._conn.config.send_timeout

    # ---------------------------------------------------------------- commands

    def send(self, message: bytes | str, now: float, binary: bool | None = None) -> None:
        """Send one SIP message (raises as `Connection.send` does)."""
        self._conn.send(message, now, binary=binary)

    def close(self, now: float, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (as `Connection.close`)."""
        self._conn.close(now, code, reason)

    # ----------------------------------------------------------------- outputs

    def events(self) -> list[Event]:
        """Events since the last call."""
        return self._conn.events()

    def data_to_send(self) -> bytes:
        """Ciphertext to write now. Once the core asks to end the transport, a TLS
        close_notify follows its last bytes (RFC 8446 section 6.1)."""
        conn = self._conn
        if self._tls is None:
            return conn.data_to_send()
        if self.tls_info is not None:
            plain = conn.data_to_send()
            if plain:
                # The core writes nothing once it has asked to end the transport, so the
                # TLS session is still open here and a memory BIO write cannot block.
                self._tls.write(plain)
            if (
                conn.transport_action is not TransportAction.NONE
                and not self._close_notify
                and not self.must_abort
            ):
                self._close_notify = True
                # unwrap() queues our close_notify, then wants the peer's: we do not wait.
                with contextlib.suppress(ssl.SSLError):
                    self._tls.unwrap()
        return self._outgoing.read()

    def get_timer(self) -> float | None:
        """The earliest deadline of TLS, send and core, or None. Once the transport is to be
        closed, only a blocked write's deadline is left: past it, `must_abort` turns true."""
        if self._conn.transport_action is TransportAction.CLOSE:
            return self._send_deadline  # flushing the last bytes is bounded too
        deadline = self._conn.get_timer()
        gate = None if self._gate is None else self._gate.get_timer()
        for extra in (gate, self._tls_deadline, self._send_deadline):
            if extra is not None and (deadline is None or extra < deadline):
                deadline = extra
        return deadline

    # --------------------------------------------------------------- internals

    def _attach_trace(self, now: float) -> None:
        conn = self._conn
        tracer = conn.config.tracer
        remote, local = conn.remote_address, conn.local_address
        if tracer is not None and self._trace is None and remote and local and remote[0] and local[0]:
            protocol = "WS" if self._tls is None else "WSS"
            self._trace = tracer.attach(
                conn, remote=remote, local=local, now=now, wall=time.time(), protocol=protocol
            )

    def _proxied(self, gate: ProxyHeaderReader, now: float) -> None:
        """The PROXY header is read: its addresses (when it names some) replace the socket's."""
        self._gate = None
        header = self.proxy_header = gate.header
        conn = self._conn
        if header is not None and header.source is not None and header.destination is not None:
            socket_peer = conn.remote_address
            conn.set_addresses(header.source, header.destination, proxy=socket_peer)
        self._attach_trace(now)

    def _refuse(self, detail: str, now: float) -> None:
        """The connection breaks its listener's PROXY policy: close it, with no reply."""
        self._gate = None
        self._attach_trace(now)
        self._conn.transport_failed(now, detail, Cause.PROXY_FAILED)

    def _handshake(self, tls: ssl.SSLObject, now: float) -> None:
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            return
        except (ssl.SSLError, ssl.CertificateError) as exc:
            reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
            self._conn.transport_failed(now, f"TLS handshake failed: {reason}", Cause.TLS_FAILED)
            return
        self._tls_deadline = None
        self.tls_info = TLSInfo(tls, self._server_name)
        if self._trace is not None:
            self._trace.tls(tls_details(tls))

    def _feed(self, chunks: list[bytes], now: float) -> None:
        # All the plaintext of one socket read goes to the core in one call: one chunk
        # for max_msg_chunks, however many TLS records it came in.
        if chunks:
            self._conn.receive_data(chunks[0] if len(chunks) == 1 else b"".join(chunks), now)


class ConnectionView:
    """What every adapter's Connection shows of itself: its end, its addresses, the proxy it
    came through and what TLS negotiated (the subclass sets `_driver`)."""

    __slots__ = ()

    _driver: Driver

    @property
    def closed(self) -> ConnectionClosed | None:
        """The terminal event, once the connection has ended."""
        return self._driver.connection.closed_event

    @property
    def remote_address(self) -> tuple[str, int]:
        """The peer's (IP, port); behind a trusted proxy, the client's it named (port 0 when
        it named none)."""
        return self._driver.remote

    @property
    def local_address(self) -> tuple[str, int]:
        """Our (IP, port): the listener's for an accepted connection (behind a PROXY-protocol
        proxy, the one the client connected to)."""
        return self._driver.local

    @property
    def proxy_address(self) -> tuple[str, int] | None:
        """The proxy's (IP, port) when `remote_address` is a client it named; else None."""
        return self._driver.connection.proxy_address

    @property
    def proxy_header(self) -> ProxyHeader | None:
        """The PROXY header the connection began with (its TLVs too), on a listener that wants one."""
        return self._driver.proxy_header

    @property
    def tls(self) -> TLSInfo | None:
        """What TLS negotiated (version, cipher, the peer's certificate), once its handshake is
        done; None on a plain `ws` connection."""
        return self._driver.tls_info


class AsyncMessages:
    """`async for message in conn:` over `recv()`, ending when the connection does (the
    asyncio and trio Connections)."""

    __slots__ = ()

    async def recv(self) -> Message:
        """The next message (the adapter's Connection implements it)."""
        raise NotImplementedError

    def __aiter__(self: _Self) -> _Self:
        return self

    async def __anext__(self) -> Message:
        try:
            return await self.recv()
        except ConnectionClosedError:
            raise StopAsyncIteration from None
