"""`Config`: one frozen, validated set of parameters, with OpenSIPS's names and units beside ours."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .errors import ConfigError
from .trace import Tracer

__all__ = ["Config", "HttpPage"]


@dataclass(frozen=True, slots=True)
class HttpPage:
    """A page a server answers a plain HTTP GET with (a request without `Upgrade`), such as a
    test page that opens a WebSocket back to the same listener. Ours only."""

    resource: str
    """The request target, such as `/` or `/test.html` (the query string is ignored)."""

    body: bytes
    """The whole response body."""

    content_type: str = "text/html; charset=utf-8"
    """Its `Content-Type`."""

    def __post_init__(self) -> None:
        _check_target("HttpPage.resource", self.resource)
        if not isinstance(self.body, bytes):
            raise ConfigError("HttpPage.body: bytes")
        _check_field_value("HttpPage.content_type", self.content_type)


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Parameters of one connection, or of every connection of an endpoint.

    Times are seconds (float); OpenSIPS's are milliseconds. `from_opensips()`
    converts. Fields the core does not use (`tls_handshake_timeout`,
    `send_timeout`, `cert_check_on_conn_reuse`) are read by the adapters, so one
    object carries the whole `proto_wss` configuration.
    """

    port: int = 443
    """Default port of a `wss` URI without one, and of listeners without one.
    OpenSIPS `wss_port` (integer), default 443."""

    resource: str = "/"
    """Client: the request target of our upgrade request when the URI has no path.
    OpenSIPS `wss_resource` (string), default "/"."""

    origin: str | None = None
    """Client: the `Origin` we send. None derives `https://<host>[:<port>]` from the
    destination, a valid RFC 6454 origin (OpenSIPS sends `<ip>:<port>`, which is
    not). Ours only."""

    send_origin: bool = True
    """Client: send an `Origin` at all. OpenSIPS servers (`require_origin=1`) reject
    requests without one, so the default sends it. Ours only."""

    require_origin: bool = True
    """Server: reject a request without `Origin` (403). OpenSIPS `require_origin`
    (int), default 1; OpenSIPS answers 400, we answer 403 (RFC 6455 section 4.2.2)."""

    allowed_origins: frozenset[str] | None = None
    """Server: when set, the `Origin` must be one of these, exactly (`https://host:port`,
    `null` for a file:// page, `ip:port` for OpenSIPS as a client); otherwise 403.
    None accepts any Origin. Ours only."""

    resources: frozenset[str] | None = None
    """Server: when set, the request target must be one of these, else 404. None
    accepts any path, as OpenSIPS does. Ours only."""

    auto_accept: bool = True
    """Server: accept every request that passes the checks, without a
    `HandshakeRequest` event. Off, the application calls `accept()` or `reject()`.
    Ours only: OpenSIPS always accepts."""

    max_handshake_size: int = 16384
    """Bytes of an upgrade request (server: else 431) or reply (client: else the
    handshake fails). Ours only; OpenSIPS's buffer is 65535 bytes."""

    max_message_size: int = 65536
    """Bytes of one WebSocket message, counted across its fragments; a larger one
    gets close 1009. Ours; OpenSIPS's frames stop at 65535 bytes with header."""

    max_msg_chunks: int = 4
    """How many reads (`receive_data` calls) one upgrade request, or one message
    with all its fragments, may span; more fail the connection. OpenSIPS
    `wss_max_msg_chunks` (integer), default 4."""

    handshake_timeout: float | None = 10.0
    """Seconds for the opening handshake: server, from the first byte to our 101;
    client, from `connect` to the 101. OpenSIPS `wss_handshake_timeout` (ms), default
    100 and client side only; 100 ms fails against any peer beyond about 80 ms of
    round trip, 10 s fits slow mobile links and still bounds slow-loris clients."""

    tls_handshake_timeout: float = 10.0
    """Seconds for the TLS handshake (adapters). OpenSIPS `wss_tls_handshake_timeout`
    (ms), default 100: too short for a TLS handshake over a 100 ms path, hence 10 s."""

    send_timeout: float = 10.0
    """Seconds a write may stay blocked before the peer is dropped (adapters).
    OpenSIPS `wss_send_timeout` (ms), default 100: one lost segment on a long path
    outlasts it, hence 10 s."""

    close_timeout: float = 5.0
    """Seconds to wait for the peer's part of the closing handshake. Ours only."""

    ping_interval: float | None = 30.0
    """Send a WebSocket Ping after this many seconds without receiving anything;
    None turns keepalives off. OpenSIPS sends none; Kamailio's `keepalive_timeout`
    is 180 s. 30 s keeps NAT bindings and proves the peer alive."""

    pong_timeout: float = 20.0
    """Seconds to wait for the Pong before failing the connection with 1011. Ours only."""

    idle_timeout: float | None = None
    """Close (1001) after this many seconds without a SIP message either way; None
    never. OpenSIPS's `tcp_connection_lifetime` is 120 s, but browsers stay
    registered on a silent connection for the whole registration, so ours is off."""

    cert_check_on_conn_reuse: bool = False
    """Reuse an outbound connection only if its TLS client domain is the one for the
    new destination (adapters). OpenSIPS `cert_check_on_conn_reusage` (int), 0."""

    pages: tuple[HttpPage, ...] = ()
    """Server: pages answered to a plain HTTP GET (no `Upgrade`) of their resource, 200
    with `Connection: close`; a plain GET of another path then gets 404 (without pages,
    400 as for any request that is not an upgrade). Ours only: OpenSIPS serves no pages."""

    deflate: bool = False
    """permessage-deflate (RFC 7692): a server accepts a client's offer, a client makes one.
    Ours only, off by default: OpenSIPS and Kamailio support none, and an OpenSIPS client fails
    a 101 that names an extension (a server answers with one only when offered, so never to it)."""

    deflate_window_bits: int = 12
    """Our compressor's window, 2**N bytes (9 to 15): the most we let the peer's use where RFC 7692
    lets us choose. 12 keeps a connection's compression state near 40 KB; SIP messages rarely
    refer further back than 4 KiB. Ours only."""

    tracer: Tracer | None = field(default=None, compare=False)
    """Trace every connection made with this config (OpenSIPS `trace_destination` with
    `trace_on`): the adapters attach each connection to it with its addresses. None, the
    default, traces nothing. Not part of equality: a live object, not a setting."""

    def __post_init__(self) -> None:
        _check_int("port", self.port, 1, 65535)
        _check_int("max_handshake_size", self.max_handshake_size, 256, 1 << 24)
        _check_int("max_message_size", self.max_message_size, 1, (1 << 63) - 1)
        _check_int("max_msg_chunks", self.max_msg_chunks, 1, 1 << 16)
        _check_int("deflate_window_bits", self.deflate_window_bits, 9, 15)
        _check_target("resource", self.resource)
        for name in ("handshake_timeout", "ping_interval", "idle_timeout"):
            _check_seconds(name, getattr(self, name), optional=True)
        for name in ("tls_handshake_timeout", "send_timeout", "close_timeout", "pong_timeout"):
            _check_seconds(name, getattr(self, name), optional=False)
        if self.origin is not None:
            _check_field_value("origin", self.origin)
        object.__setattr__(self, "allowed_origins", _string_set("allowed_origins", self.allowed_origins))
        for origin in self.allowed_origins or ():
            _check_field_value("allowed_origins", origin)
        object.__setattr__(self, "resources", _string_set("resources", self.resources))
        for target in self.resources or ():
            _check_target("resources", target)
        object.__setattr__(self, "pages", tuple(self.pages))
        if not all(isinstance(page, HttpPage) for page in self.pages):
            raise ConfigError("pages: HttpPage objects")
        if len({page.resource for page in self.pages}) != len(self.pages):
            raise ConfigError("pages: one page per resource")
        if self.tracer is not None and not isinstance(self.tracer, Tracer):
            raise ConfigError("tracer: a sansio_wss.Tracer")

    @classmethod
    def from_opensips(cls, params: Mapping[str, Any], **overrides: Any) -> Config:
        """Build a Config from `proto_wss` parameter names and units.

        `params` maps OpenSIPS names (`wss_port`, `wss_max_msg_chunks`,
        `wss_resource`, `wss_handshake_timeout`, `wss_tls_handshake_timeout`,
        `wss_send_timeout`, `require_origin`, `cert_check_on_conn_reusage`) to
        their values in OpenSIPS units (ms, 0/1 or yes/no). Parameters not given
        keep our defaults, not OpenSIPS's; `overrides` set our own fields.
        """
        kwargs: dict[str, Any] = {}
        for name, value in params.items():
            try:
                ours, convert = _OPENSIPS[name]
            except KeyError:
                raise ConfigError(f"unknown proto_wss parameter {name!r}") from None
            kwargs[ours] = convert(name, value)
        known = {f.name for f in fields(cls)}
        for name in overrides:
            if name not in known:
                raise ConfigError(f"unknown Config field {name!r}")
        kwargs.update(overrides)
        return cls(**kwargs)

    def replace(self, **changes: Any) -> Config:
        """A copy with `changes` applied and validated."""
        return replace(self, **changes)


def _string_set(name: str, value: object) -> frozenset[str] | None:
    """A set of strings from any iterable of them, refusing a lone string."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ConfigError(f"{name}: a set of strings, not {value!r}")
    return frozenset(value)


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name}: an integer from {low} to {high}, not {value!r}")


def _check_seconds(name: str, value: object, *, optional: bool) -> None:
    if value is None and optional:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"{name}: a positive number of seconds, not {value!r}")


def _check_field_value(name: str, value: object) -> None:
    if not isinstance(value, str) or not value or not value.isprintable() or not value.isascii():
        raise ConfigError(f"{name}: printable ASCII without line breaks, not {value!r}")


def _check_target(name: str, value: object) -> None:
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or not value.isascii()
        or not value.isprintable()
        or " " in value
    ):
        raise ConfigError(f"{name}: an origin-form request target such as '/ws', not {value!r}")


def _ms(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name}: a positive number of milliseconds, not {value!r}")
    return value / 1000.0


def _flag(name: str, value: object) -> bool:
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("1", "yes", "on", "true"):
            return True
        if word in ("0", "no", "off", "false"):
            return False
    elif isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ConfigError(f"{name}: 0/1 or yes/no, not {value!r}")


def _same(name: str, value: object) -> object:
    return value


_OPENSIPS: dict[str, tuple[str, Any]] = {
    "wss_port": ("port", _same),
    "wss_max_msg_chunks": ("max_msg_chunks", _same),
    "wss_resource": ("resource", _same),
    "wss_handshake_timeout": ("handshake_timeout", _ms),
    "wss_tls_handshake_timeout": ("tls_handshake_timeout", _ms),
    "wss_send_timeout": ("send_timeout", _ms),
    "require_origin": ("require_origin", _flag),
    "cert_check_on_conn_reusage": ("cert_check_on_conn_reuse", _flag),
}
