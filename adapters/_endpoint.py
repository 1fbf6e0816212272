"""What every adapter's transport-level endpoint shares: destinations, reuse decisions, statistics.

The adapter does the I/O (resolving names, dialling, reading); this module decides
where a message goes and counts what happened, once for all adapters.
"""

from __future__ import annotations

import collections
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sansio_wss import (
    Cause,
    Config,
    ConnectionClosed,
    ConnectionTable,
    Event,
    Flow,
    InvalidSipMessage,
    NoRoute,
    SipMessageReceived,
    TLSDomain,
)
from sansio_wss.sip import parse_ws_uri, reachable, sip_destination

from ._tls import TLSContexts

__all__ = ["Dial", "DialPlan", "Incoming", "Router", "RouterView", "Stats"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Dial:
    """A destination that needs a connection: resolve `host`, reuse or connect to `port`."""

    host: str
    port: int
    resource: str


@dataclass(frozen=True, slots=True)
class DialPlan:
    """How to open a connection to a destination no open connection may carry a message to."""

    key: tuple[str, int, str | None]
    """(host, port, TLS client domain name): sends with the same key share one dial."""
    tls_domain: str | None
    """The name of the client domain chosen for the destination (None: the system's CAs)."""
    context: ssl.SSLContext
    config: Config
    """The config of the connection to open (the endpoint's, or what `dial_config` chose)."""


@dataclass(frozen=True, slots=True)
class Incoming(Generic[T]):
    """A received message with the flow it came over (remote and local addresses in `flow`)."""

    event: SipMessageReceived | InvalidSipMessage
    flow: Flow[T]


class Stats:
    """Counters of one endpoint, as OpenSIPS and Kamailio keep them."""

    __slots__ = (
        "accepted",
        "bytes_in",
        "bytes_out",
        "connected",
        "failed",
        "messages_in",
        "messages_out",
        "open",
    )

    def __init__(self) -> None:
        self.accepted = 0
        """Inbound connections whose handshake completed."""
        self.connected = 0
        """Outbound connections whose handshake completed."""
        self.open = 0
        """Connections open now."""
        self.failed: collections.Counter[Cause] = collections.Counter()
        """Connections that ended other than by a clean close, by cause."""
        self.messages_in = 0
        self.messages_out = 0
        self.bytes_in = 0
        """SIP bytes received (WebSocket payloads, not counting framing or TLS)."""
        self.bytes_out = 0
        """SIP bytes sent."""

    def opened(self, accepted: bool) -> None:
        """A handshake completed."""
        if accepted:
            self.accepted += 1
        else:
            self.connected += 1
        self.open += 1

    def ended(self, event: ConnectionClosed, was_open: bool) -> None:
        """A connection ended (opened or not)."""
        if was_open:
            self.open -= 1
        if not event.clean:
            self.failed[event.cause] += 1

    def received(self, event: Event) -> None:
        """Count a delivered message."""
        if isinstance(event, (SipMessageReceived, InvalidSipMessage)):
            self.messages_in += 1
            self.bytes_in += len(event.message)

    def sent(self, size: int) -> None:
        """Count a sent message of `size` bytes."""
        self.messages_out += 1
        self.bytes_out += size

    def copy(self) -> Stats:
        """A copy, to read while others count on (another thread, say)."""
        other = Stats()
        for name in self.__slots__:
            setattr(other, name, getattr(self, name))
        other.failed = collections.Counter(self.failed)
        return other

    def as_dict(self) -> dict[str, object]:
        """A snapshot, for an MI-style status command."""
        return {
            "accepted": self.accepted,
            "connected": self.connected,
            "open": self.open,
            "failed": {cause.value: n for cause, n in self.failed.items()},
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
        }


class Router(Generic[T]):
    """Where a message goes: an existing flow, or a destination to reach (reusing a connection
    by remote address and TLS domain, as OpenSIPS does); and the flow of each open connection.

    Not thread-safe: an adapter with threads calls it under one lock."""

    __slots__ = ("_default_context", "_dial_config", "_flows", "config", "contexts", "stats", "table")

    def __init__(
        self, config: Config, domains: TLSContexts, dial_config: Callable[[str, int], Config] | None = None
    ) -> None:
        self.config = config
        self.contexts = domains
        self._dial_config = dial_config
        self.table: ConnectionTable[T] = ConnectionTable()
        self.stats = Stats()
        self._default_context: ssl.SSLContext | None = None
        self._flows: dict[T, Flow[T]] = {}

    def target(self, destination: int | str | tuple[str, int]) -> Flow[T] | Dial:
        """A flow id (must be open), a `sip:`/`sips:` URI with `transport=ws(s)`, a `wss://` URI,
        or a (host, port) pair. Raises NoRoute for a gone flow, a browser's `*.invalid` host,
        or something that is not a WebSocket destination."""
        if isinstance(destination, int):
            flow = self.table.get(destination)
            if flow is None:
                raise NoRoute(f"flow {destination} is closed")
            return flow
        port_default = self.config.port
        try:
            if isinstance(destination, tuple):
                host, port, resource = destination[0], destination[1], self.config.resource
            elif destination.lower().startswith(("wss://", "ws://")):
                uri = parse_ws_uri(destination, port_default, self.config.resource)
                if not uri.secure:
                    raise NoRoute(f"{destination!r}: plain ws:// is not served by this endpoint")
                host, port, resource = uri.host, uri.port, uri.resource
            else:
                dest = sip_destination(destination, port_default)
                host, port, resource = dest.host, dest.port, self.config.resource
        except ValueError as exc:
            raise NoRoute(str(exc)) from None
        if not reachable(host):
            raise NoRoute(
                f"{host} can only be reached over the connection it opened (a browser): send to its flow"
            )
        return Dial(host, port, resource)

    def plan(self, dial: Dial, addresses: list[tuple[str, int]]) -> Flow[T] | DialPlan:
        """An open connection to one of `addresses` (what `dial.host` resolved to) that may
        carry a message for `dial.host`, or how to open one."""
        for address in addresses:
            flow = self.reuse(address, dial.host)
            if flow is not None:
                return flow
        domain, context = self.client_tls(addresses[0], dial.host)
        name = None if domain is None else domain.name
        config = self.config if self._dial_config is None else self._dial_config(dial.host, dial.port)
        return DialPlan((dial.host, dial.port, name), name, context, config)

    def opened(
        self,
        connection: T,
        remote: tuple[str, int],
        local: tuple[str, int],
        *,
        accepted: bool,
        tls_domain: str | None = None,
    ) -> Flow[T]:
        """A connection's handshake completed: give it a flow, and count it."""
        flow = self.table.add(connection, remote, local, accepted=accepted, tls_domain=tls_domain)
        self._flows[connection] = flow
        self.stats.opened(accepted)
        return flow

    def flow_of(self, connection: T) -> Flow[T] | None:
        """The flow of an open connection."""
        return self._flows.get(connection)

    def ended(self, connection: T, event: ConnectionClosed) -> Flow[T] | None:
        """A connection ended, opened or not: forget its flow, and count it."""
        flow = self._flows.pop(connection, None)
        if flow is not None:
            self.table.remove(flow.flow_id)
        self.stats.ended(event, was_open=flow is not None)
        return flow

    def reuse(self, address: tuple[str, int], host: str | None) -> Flow[T] | None:
        """An open connection to `address` that may carry a message for `host`."""
        chosen = self.contexts.client_context(address, host)
        name = None if chosen is None else chosen[0].name
        return self.table.find(address, tls_domain=name, check_domain=self.config.cert_check_on_conn_reuse)

    def client_tls(self, address: tuple[str, int], host: str) -> tuple[TLSDomain | None, ssl.SSLContext]:
        """The client domain and context to dial `address` for `host` with; without a
        matching domain, the system's CAs verify the server."""
        chosen = self.contexts.client_context(address, host)
        if chosen is not None:
            return chosen
        if self._default_context is None:
            self._default_context = ssl.create_default_context()
        return None, self._default_context


class RouterView(Generic[T]):
    """What the asyncio and trio Endpoints show of their router (the blocking one copies under
    its lock): statistics and the open flows."""

    __slots__ = ()

    _router: Router[T]

    @property
    def stats(self) -> Stats:
        """Connections accepted, connected, open, failed by cause; messages and bytes each way."""
        return self._router.stats

    @property
    def flows(self) -> ConnectionTable[T]:
        """The open connections, by flow id and remote address."""
        return self._router.table
