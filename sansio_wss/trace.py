"""HEP tracing of connections and SIP messages: OpenSIPS's `trace_destination`, `trace_on`,
`trace_filter_route` and `wss_trace`, as pure objects.

A `Tracer` holds the run-time switch, the per-connection filter and the packet counters; it
turns what its connections report into HEPv3 packets and hands each one to a sink (the
adapters' `HepCollector`, or anything that takes bytes). `Tracer.attach()` ties one
`ConnectionTrace` to one core connection, which then reports its handshake, its end and
every SIP message itself. Nothing here reads a clock: packet times are the connection's
`now` plus the wall-clock offset given to `attach()`.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ConfigError
from .events import Cause, ConnectionClosed
from .hep import PROTO_NET, PROTO_SIP, HepFlow, PayloadFormat, net_payload

if TYPE_CHECKING:
    from ._connection import Connection

__all__ = [
    "ConnectionTrace",
    "TlsDetails",
    "TraceConfig",
    "TracePeer",
    "TraceStats",
    "Tracer",
    "parse_trace_mode",
]

Address = tuple[str, int]

# Causes that end a connection the way the protocol intends: its CLOSED packet says SUCCESS.
_CLEAN_CAUSES = frozenset((Cause.PEER_CLOSED, Cause.LOCAL_CLOSED, Cause.IDLE_TIMEOUT, Cause.PAGE_SERVED))
_NET, _IN, _OUT = 0, 1, 2  # a connection's three packet flows: its events, SIP in, SIP out
# What OpenSIPS writes in a set-up packet that succeeded, by direction (net/trans_trace.c).
_SET_UP = {False: ("ACCEPTED", "Connection accepted..."), True: ("CONNECTED", "Successfully connected...")}


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceConfig:
    """What the packets look like (OpenSIPS `proto_hep` parameters) and what is traced."""

    capture_id: int = 1
    """The capture agent's id in every packet (`hep_capture_id`), 0 to 2**32-1."""
    auth_key: bytes | None = None
    """An authentication key chunk for collectors that want one (OpenSIPS never sends one)."""
    payload_format: PayloadFormat = PayloadFormat.HOMER5
    """How connection events are written: the values joined with `:` (`homer5_on=1`, the
    default) or a JSON object (`homer5_on=0`)."""
    sip_messages: bool = True
    """Trace every SIP message sent and received (OpenSIPS leaves this to its `tracer`)."""
    master_key: bool = False
    """Add the TLS session's master key (as hex) to the set-up packet, when the TLS layer
    exposes it: it decrypts the session, so only for a lab. Python's `ssl` does not expose it."""

    def __post_init__(self) -> None:
        if isinstance(self.capture_id, bool) or not isinstance(self.capture_id, int):
            raise ConfigError(f"capture_id: an integer, not {self.capture_id!r}")
        if not 0 <= self.capture_id <= 0xFFFFFFFF:
            raise ConfigError(f"capture_id: 0 to 4294967295, not {self.capture_id}")
        key = self.auth_key
        if key is not None and not (isinstance(key, bytes) and len(key) <= 1024):
            raise ConfigError("auth_key: bytes, at most 1024 of them")
        if not isinstance(self.payload_format, PayloadFormat):
            raise ConfigError(f"payload_format: a PayloadFormat, not {self.payload_format!r}")


@dataclass(frozen=True, slots=True)
class TracePeer:
    """What the filter decides on (OpenSIPS `trace_filter_route`'s `$si`, `$sp`, `$socket_in`)."""

    remote: Address
    """The other end's (IP, port), whichever side opened the connection."""
    local: Address
    """Our socket's (IP, port)."""
    tls_domain: str | None
    """The name of the TLS domain serving the connection, once TLS has chosen it."""
    outbound: bool
    """True for a connection we opened."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsDetails:
    """What the TLS handshake established, for the set-up packet. Subjects and issuers are
    written as OpenSSL's X509_NAME_oneline writes them (`sansio_wss.x509`)."""

    version: str | None = None
    """Protocol version, such as `TLSv1.3`."""
    cipher: str | None = None
    """The cipher suite's name."""
    client_subject: str | None = None
    """The TLS client's certificate subject (None: it sent none)."""
    client_issuer: str | None = None
    server_subject: str | None = None
    """The TLS server's certificate subject."""
    server_issuer: str | None = None
    master_key: bytes | None = None
    """The session master key, if the TLS layer exposes it (see `TraceConfig.master_key`)."""
    domain: str | None = None
    """The name of the TLS domain that served the handshake (for the filter)."""

    def __post_init__(self) -> None:
        for name in _TLS_TEXT:
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"TlsDetails.{name}: a str or None, not {type(value).__name__}")
        if self.master_key is not None and not isinstance(self.master_key, bytes):
            raise TypeError("TlsDetails.master_key: bytes or None")


_TLS_TEXT = (
    "version",
    "cipher",
    "client_subject",
    "client_issuer",
    "server_subject",
    "server_issuer",
    "domain",
)


@dataclass(frozen=True, slots=True)
class TraceStats:
    """A tracer's counters."""

    on: bool
    """Whether tracing is on now."""
    connections: int
    """Connections the filter let through (each decided once, at its first packet)."""
    filtered: int
    """Connections the filter kept out (a filter that raised counts here too)."""
    packets: int
    """Packets handed to the sink."""
    lost: int
    """Packets not handed over: too big for HEP (65,535 bytes), or the sink raised."""


class Tracer:
    """Tracing for any number of connections: the switch, the filter, the counters.

    `sink` receives every packet's bytes; it must not block (the adapters' `HepCollector`
    queues or drops, and counts what it drops). `filter` receives a `TracePeer` once per
    connection, at its first packet while tracing is on, and returns whether to trace it.
    `seed` makes correlation ids distinct across processes (random when None).
    """

    __slots__ = (
        "_connections",
        "_filter",
        "_filtered",
        "_ids",
        "_lost",
        "_packets",
        "config",
        "on",
        "sink",
    )

    def __init__(
        self,
        sink: Callable[[bytes], object],
        config: TraceConfig | None = None,
        *,
        filter: Callable[[TracePeer], bool] | None = None,
        on: bool = True,
        seed: int | None = None,
    ) -> None:
        self.sink = sink
        """Where packets go."""
        self.config = config or TraceConfig()
        """How packets look."""
        self.on = on
        """The run-time switch (OpenSIPS `trace_on` and `wss_trace`): switching it off stops
        every packet at once; switched on, connections already open are traced from then on."""
        self._filter = filter
        base = (random.getrandbits(32) if seed is None else seed & 0xFFFFFFFF) << 32
        self._ids = itertools.count(base + 1)
        self._connections = self._filtered = self._packets = self._lost = 0

    def set_mode(self, trace_mode: str) -> None:
        """Switch tracing as OpenSIPS's `wss_trace trace_mode=...` does (`parse_trace_mode`)."""
        self.on = parse_trace_mode(trace_mode)

    @property
    def status(self) -> str:
        """`on` or `off`, as `wss_trace` without a parameter reports it."""
        return "on" if self.on else "off"

    @property
    def stats(self) -> TraceStats:
        """The counters now."""
        return TraceStats(self.on, self._connections, self._filtered, self._packets, self._lost)

    def attach(
        self,
        conn: Connection,
        *,
        remote: Address,
        local: Address,
        now: float,
        wall: float,
        protocol: str = "WSS",
    ) -> ConnectionTrace:
        """Trace `conn` from now on: call it right after creating the connection.

        `remote` and `local` are (IP, port) of the two ends; `now` is the connection's
        clock and `wall` the wall-clock time (seconds since the epoch) at the same instant.
        """
        outbound = conn.is_client
        trace = ConnectionTrace(self, str(next(self._ids)), remote, local, outbound, protocol, wall - now)
        conn.attach_trace(trace)
        return trace

    def _admit(self, trace: ConnectionTrace) -> bool:
        if self._filter is not None:
            peer = TracePeer(trace.remote, trace.local, trace.tls_domain, trace.outbound)
            try:
                admitted = bool(self._filter(peer))
            except Exception:
                admitted = False
            if not admitted:
                self._filtered += 1
                return False
        self._connections += 1
        return True


def parse_trace_mode(trace_mode: str) -> bool:
    """`wss_trace`'s `trace_mode`: True for `on`, False for `off`, case and trailing letters
    ignored as OpenSIPS ignores them (`On`, `OFFline`); ValueError for anything else."""
    mode = trace_mode.lower()
    if mode.startswith("off"):
        return False
    if mode.startswith("on"):
        return True
    raise ValueError("trace_mode should be 'on' or 'off'")


class ConnectionTrace:
    """One connection's tracing: what its packets share (addresses, correlation id) and what
    its set-up packet gathers (TLS details, handshake request and reply).

    The adapter calls `tls()`; the core connection calls the other methods itself.
    """

    __slots__ = (
        "_admitted",
        "_flows",
        "_offset",
        "_pending",
        "_reply",
        "_request",
        "_tls",
        "_tracer",
        "correlation_id",
        "local",
        "outbound",
        "protocol",
        "remote",
        "tls_domain",
    )

    def __init__(
        self,
        tracer: Tracer,
        correlation_id: str,
        remote: Address,
        local: Address,
        outbound: bool,
        protocol: str,
        offset: float,
    ) -> None:
        self._tracer = tracer
        self._offset = offset  # wall-clock time minus the connection's clock
        self.correlation_id = correlation_id
        """Ties every packet of the connection together (HEP chunk 0x0011), in decimal."""
        self.remote = remote
        self.local = local
        self.outbound = outbound
        self.protocol = protocol
        """`WSS` (or `WS`), the first part of every connection event."""
        self.tls_domain: str | None = None
        self._admitted: bool | None = None
        self._pending = True  # the set-up packet is still to come
        self._tls: TlsDetails | None = None
        self._request: bytes | None = None
        self._reply: bytes | None = None
        self._flows: list[HepFlow | None] = [None, None, None]  # _NET, _IN, _OUT, made when first used

    # --------------------------------------------------------------- adapter

    def tls(self, details: TlsDetails) -> None:
        """The TLS handshake is done: its details go into the set-up packet."""
        self._tls = details
        self.tls_domain = details.domain

    # ------------------------------------------------------------------ core

    def readdress(self, remote: Address, local: Address) -> None:
        """The connection's ends became known better (a trusted proxy named the client): the
        packets not yet sent carry these."""
        self.remote, self.local = remote, local
        self._flows = [None, None, None]

    def request(self, raw: bytes) -> None:
        """The upgrade request (received by a server, sent by a client)."""
        self._request = raw

    def reply(self, raw: bytes) -> None:
        """The reply to the upgrade request (101 or an HTTP error)."""
        self._reply = raw

    def opened(self, now: float) -> None:
        """The opening handshake succeeded: the set-up packet goes out."""
        self._set_up(True, _SET_UP[self.outbound][1], now)

    def closed(self, event: ConnectionClosed, now: float) -> None:
        """The connection ended: a failed set-up packet if it never opened, then CLOSED."""
        clean = event.cause in _CLEAN_CAUSES
        if self._pending:
            self._set_up(clean, event.detail, now)
        if self._admit():
            parts = [
                ("Protocol", self.protocol),
                ("Event", "CLOSED"),
                ("Status", "SUCCESS" if clean else "FAILURE"),
                ("Message", event.detail or event.cause.value),
                ("Cause", event.cause.value),
                ("Code", str(event.code)),
            ]
            if event.reason:
                parts.append(("Reason", event.reason))
            self._net(parts, now)

    def received(self, message: bytes, now: float) -> None:
        """A SIP message arrived."""
        if self._tracer.config.sip_messages and self._admit():
            self._emit(_IN, message, now)

    def sent(self, message: bytes, now: float) -> None:
        """A SIP message was sent."""
        if self._tracer.config.sip_messages and self._admit():
            self._emit(_OUT, message, now)

    # ------------------------------------------------------------- internals

    def _admit(self) -> bool:
        """Whether to emit now: tracing is on and the filter let this connection through."""
        tracer = self._tracer
        if not tracer.on:
            return False
        if self._admitted is None:
            self._admitted = tracer._admit(self)
        return self._admitted

    def _set_up(self, success: bool, message: str, now: float) -> None:
        """The set-up packet, laid out as OpenSIPS's TLS then WS layers write theirs."""
        self._pending = False
        request, reply, tls = self._request, self._reply, self._tls
        self._request = self._reply = None
        if not self._admit():
            return
        event, done = _SET_UP[self.outbound]
        parts = [("Protocol", self.protocol)]
        if tls is not None:
            for key, value in (
                ("client-subject", tls.client_subject),
                ("client-issuer", tls.client_issuer),
                ("server-subject", tls.server_subject),
                ("server-issuer", tls.server_issuer),
            ):
                if value is not None:
                    parts.append((key, value))
            if tls.master_key is not None and self._tracer.config.master_key:
                parts.append(("master-key", tls.master_key.hex()))
            parts += [("Event", event), ("Status", "SUCCESS"), ("Message", done)]
        parts.append(("Event", event))
        if request is not None:
            parts.append(("Ws-Request", _text(request)))
        parts.append(("Status", "SUCCESS" if success else "FAILURE"))
        if reply is not None:
            parts.append(("Ws-Reply", _text(reply)))
        parts.append(("Message", message))
        if tls is not None:
            parts += [("tls-version", tls.version or ""), ("tls-cipher", tls.cipher or "")]
        self._net(parts, now)

    def _net(self, parts: list[tuple[str, str]], now: float) -> None:
        self._emit(_NET, net_payload(parts, self._tracer.config.payload_format), now)

    def _emit(self, kind: int, payload: bytes, now: float) -> None:
        """Hand one packet to the sink; never raises (what fails is counted lost)."""
        tracer = self._tracer
        try:
            flow = self._flows[kind]
            if flow is None:
                flow = self._flows[kind] = self._flow(kind)
            tracer.sink(flow.encode(now + self._offset, payload))
        except Exception:
            tracer._lost += 1
        else:
            tracer._packets += 1

    def _flow(self, kind: int) -> HepFlow:
        config = self._tracer.config
        inbound = kind != _OUT  # events and received messages go from the peer to us
        json = config.payload_format is PayloadFormat.JSON
        return HepFlow(
            source=self.remote if inbound else self.local,
            destination=self.local if inbound else self.remote,
            proto_type=PROTO_NET if kind == _NET else PROTO_SIP,
            capture_id=config.capture_id,
            correlation_id=self.correlation_id,
            extra_correlation=f'{{"net":"{self.correlation_id}"}}' if json and kind != _NET else None,
            auth_key=config.auth_key,
        )


def _text(raw: bytes) -> str:
    """HTTP bytes as text for a payload part: bytes that are not UTF-8 become `\\xHH`."""
    return raw.decode("utf-8", "backslashreplace")
