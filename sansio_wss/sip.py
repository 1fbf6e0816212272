"""The SIP layer of RFC 7118: one WebSocket message is one SIP message; keepalives; URI and Via helpers.

Usable alone by a framework that has its own WebSocket stack: feed each whole
WebSocket message to `receive()`, send what `frame_type()` says.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from .events import CrlfKeepalive, InvalidSipMessage, SipMessageReceived

__all__ = [
    "KEEPALIVE_PING",
    "KEEPALIVE_PONG",
    "START_LINE",
    "Destination",
    "WsUri",
    "check_host",
    "check_port",
    "check_resource",
    "check_start_line",
    "is_text",
    "parse_ws_uri",
    "reachable",
    "receive",
    "sip_destination",
    "via_transport",
]

KEEPALIVE_PING = b"\r\n\r\n"
"""RFC 5626 section 3.5.1 double-CRLF keepalive ping."""
KEEPALIVE_PONG = b"\r\n"
"""Its answer: a single CRLF, sent in the same frame type as the ping."""

START_LINE: re.Pattern[bytes] = re.compile(
    rb"(?:[!%*+\-.`'~0-9A-Za-z_]+ [^\x00-\x20\x7f]+ [Ss][Ii][Pp]/2\.0"
    rb"|[Ss][Ii][Pp]/2\.0 [1-6][0-9][0-9] [^\x00-\x08\x0a-\x1f\x7f]*)\r\n"
)
"""A SIP request line or status line with its CRLF, at the start of a message (RFC 3261 7.1, 7.2)."""


def is_text(message: bytes) -> bool:
    """RFC 7118 section 4.2: send as text when the message is valid UTF-8, else binary."""
    if message.isascii():
        return True
    try:
        message.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def check_start_line(message: bytes) -> str | None:
    """None when `message` starts with a SIP request or status line, else why not."""
    if START_LINE.match(message) is None:
        return "start line is not a SIP/2.0 request or status line"
    return None


def receive(
    message: bytes, binary: bool
) -> tuple[SipMessageReceived | InvalidSipMessage | CrlfKeepalive, bytes | None]:
    """Classify one whole WebSocket message: (event, keepalive answer to send or None).

    `\\r\\n\\r\\n` is a keepalive ping, answered with `\\r\\n` in the same frame type;
    a lone `\\r\\n` is the answer to ours. Anything else is a SIP message, or an
    `InvalidSipMessage` when its start line is garbage.
    """
    if START_LINE.match(message) is not None:
        return SipMessageReceived(message, binary), None
    if message == KEEPALIVE_PING:
        return CrlfKeepalive(True), KEEPALIVE_PONG
    if message == KEEPALIVE_PONG:
        return CrlfKeepalive(False), None
    return InvalidSipMessage(message, binary, "start line is not a SIP/2.0 request or status line"), None


def reachable(host: str) -> bool:
    """False for a host no one can connect to: a browser's random `*.invalid` Via or
    Contact host (RFC 7118 appendix B, RFC 6761). Such a peer is reached only over the
    connection it opened; an adapter fails the send instead of dialling."""
    name = host.rstrip(".").lower()
    return not (name == "invalid" or name.endswith(".invalid"))


def via_transport(secure: bool = True) -> str:
    """The Via transport token: `WSS` over TLS, `WS` otherwise (RFC 7118 section 5.2.1)."""
    return "WSS" if secure else "WS"


@dataclass(frozen=True, slots=True)
class WsUri:
    """A parsed `wss://` (or `ws://`) URI."""

    host: str
    port: int
    resource: str
    secure: bool


_HOSTNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.\-]{0,251}[A-Za-z0-9_.])?")
_RESOURCE = re.compile(r"/[!-~]*")


def check_host(host: str) -> str:
    """`host` as it goes on the wire: an IP literal (IPv6 without brackets) or an ASCII
    host name; an internationalised name is IDNA-encoded. Raises ValueError otherwise."""
    if ":" in host:
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"invalid IPv6 literal {host!r}") from None
        if address.scope_id is not None:  # anything may follow `%`, CR and LF included
            raise ValueError(f"IPv6 zone id not allowed: {host!r}")
        return str(address)
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"invalid host name {host!r}") from None
    if _HOSTNAME.fullmatch(host) is None:
        raise ValueError(f"invalid host name {host!r}")
    return host


def check_resource(resource: str) -> str:
    """`resource` if it is an origin-form request target (`/path?query`, visible ASCII),
    else ValueError."""
    if _RESOURCE.fullmatch(resource) is None or "#" in resource:
        raise ValueError(f"invalid resource {resource!r}: '/' then visible ASCII, no fragment")
    return resource


def check_port(port: int) -> int:
    """`port` if it is a TCP port number (1 to 65535), else ValueError."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"invalid port {port!r}")
    return port


def _host_port(authority: str, default_port: int, any_port: bool = False) -> tuple[str, int]:
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise ValueError(f"unterminated IPv6 literal in {authority!r}")
        host, rest = authority[1:end], authority[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"junk after IPv6 literal in {authority!r}")
        port_text = rest[1:]
    else:
        host, _, port_text = authority.partition(":")
    if not port_text:
        return check_host(host), default_port
    if not port_text.isdigit():
        raise ValueError(f"invalid port {port_text!r}")
    port = int(port_text)
    return check_host(host), port if any_port and port == 0 else check_port(port)


def parse_ws_uri(
    uri: str, default_port: int = 443, default_resource: str = "/", *, any_port: bool = False
) -> WsUri:
    """Parse `wss://host[:port][/resource]`; the port defaults to `Config.port` (443).
    `any_port` admits port 0 (a listener's "any free port").

    Raises ValueError for another scheme, user info, an invalid host, port or
    resource, or a fragment.
    """
    scheme, sep, rest = uri.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("wss", "ws"):
        raise ValueError(f"not a ws:// or wss:// URI: {uri!r}")
    slash = rest.find("/")
    authority, resource = (rest, default_resource) if slash < 0 else (rest[:slash], rest[slash:])
    if "@" in authority:
        raise ValueError(f"user info is not allowed: {uri!r}")
    secure = scheme == "wss"
    host, port = _host_port(authority, default_port if secure else 80, any_port)
    return WsUri(host, port, check_resource(resource), secure)


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a SIP URI with a WebSocket transport sends: host, port, and TLS or not."""

    host: str
    port: int
    secure: bool


_SIP_URI = re.compile(r"(sips?):(?:[^@;?]*@)?(\[[^\]]*\]|[^:;?]+)(?::(\d+))?([^?]*)", re.IGNORECASE)


def sip_destination(uri: str, default_port: int = 443) -> Destination:
    """Where a `sip:`/`sips:` URI with `transport=ws` or `transport=wss` is sent.

    RFC 7118 defines only `transport=ws`; `transport=wss` is widely used and
    accepted. The connection is secure for `sips:` or `transport=wss`, and for
    `sip:...;transport=ws` it is plain WebSocket (port 80 by default). A secure
    destination without a port takes `default_port` (`Config.port`, OpenSIPS
    `wss_port`). Raises ValueError when the URI does not ask for a WebSocket
    transport, or names an invalid host or port.
    """
    m = _SIP_URI.fullmatch(uri.strip())
    if m is None:
        raise ValueError(f"not a SIP URI: {uri!r}")
    scheme, host, port, params = m.groups()
    transport = None
    for param in params.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "transport":
            transport = value.strip().lower()
    if transport not in ("ws", "wss"):
        raise ValueError(f"URI does not name transport=ws or transport=wss: {uri!r}")
    secure = transport == "wss" or scheme.lower() == "sips"
    if host.startswith("["):
        host = host[1:-1]
    port_number = check_port(int(port)) if port else (default_port if secure else 80)
    return Destination(check_host(host), port_number, secure)
