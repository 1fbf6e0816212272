"""The opening handshake: server-side checks and Origin policy, client request and reply checks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from ._deflate import Agreement, client_offer, read_response
from ._http import HttpError, parse_request_head, parse_response_head, render_response
from .config import Config, HttpPage
from .errors import LocalProtocolError
from .events import HandshakeRequest, Headers

__all__ = [
    "SUBPROTOCOL",
    "accept_token",
    "check_headers",
    "build_request",
    "check_reply",
    "check_request",
    "render_accept",
    "render_reject",
]

SUBPROTOCOL = "sip"
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# Request fields we read; any other field is passed through untouched.
_WANTED = frozenset(
    (
        "host",
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "origin",
        "content-length",
        "transfer-encoding",
    )
)
# Fields that must not appear more than once (RFC 9112 section 3.2, RFC 6455 section 11.3).
_SINGLE = ("host", "sec-websocket-key", "sec-websocket-version", "origin")


def accept_token(key: str) -> str:
    """The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest()).decode("ascii")


def _tokens(values: list[str]) -> list[str]:
    """Comma-separated list elements of every occurrence of one field (RFC 9110 section 5.6.1)."""
    return [item.strip(" \t") for value in values for item in value.split(",") if item.strip(" \t")]


def _collect(fields: Headers) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in fields:
        lname = name.lower()
        if lname in _WANTED:
            found.setdefault(lname, []).append(value)
    return found


def check_request(head: bytes, raw: bytes, config: Config) -> HandshakeRequest | HttpPage:
    """Check an upgrade request head against RFC 6455, RFC 7118 and our policy.

    Returns the request on success, or the page a plain GET (no `Upgrade`) asks for;
    raises HttpError with the status that answers it: 400 malformed or not a SIP
    WebSocket upgrade, 403 Origin, 404 resource, 426 version.
    """
    method, target, fields = parse_request_head(head)
    if method != "GET":
        raise HttpError(400, f"method {method} is not GET")
    found = _collect(fields)
    for name in _SINGLE:
        if len(found.get(name, ())) > 1:
            raise HttpError(400, f"more than one {name} header")
    if "transfer-encoding" in found or any(v != "0" for v in found.get("content-length", ())):
        raise HttpError(400, "an upgrade request has no body")
    hosts = found.get("host")
    if not hosts or not hosts[0]:
        raise HttpError(400, "missing Host header")
    if "upgrade" not in found and config.pages:  # a browser fetching pages (and a favicon)
        path = target.partition("?")[0]
        for page in config.pages:
            if page.resource == path:
                return page
        raise HttpError(404, f"no page {path[:80]!r}")
    if "websocket" not in [t.lower() for t in _tokens(found.get("upgrade", []))]:
        raise HttpError(400, "Upgrade header does not contain websocket")
    if "upgrade" not in [t.lower() for t in _tokens(found.get("connection", []))]:
        raise HttpError(400, "Connection header does not contain upgrade")
    keys = found.get("sec-websocket-key")
    if not keys:
        raise HttpError(400, "missing Sec-WebSocket-Key header")
    key = keys[0]
    try:
        if len(key) != 24 or len(base64.b64decode(key, validate=True)) != 16:
            raise ValueError
    except (ValueError, binascii.Error):
        raise HttpError(400, f"Sec-WebSocket-Key {key[:40]!r} does not decode to 16 bytes") from None
    versions = found.get("sec-websocket-version")
    if not versions:
        raise HttpError(400, "missing Sec-WebSocket-Version header")
    if versions[0] != "13":
        raise HttpError(426, f"Sec-WebSocket-Version {versions[0][:20]!r} is not 13")
    origins = found.get("origin")
    origin = origins[0] if origins else None
    if origin is None:
        if config.require_origin:
            raise HttpError(403, "missing Origin header")
    elif config.allowed_origins is not None and origin not in config.allowed_origins:
        raise HttpError(403, f"Origin {origin[:80]!r} is not allowed")
    subprotocols = tuple(_tokens(found.get("sec-websocket-protocol", [])))
    if SUBPROTOCOL not in subprotocols:
        raise HttpError(400, "the sip subprotocol is not offered")
    if config.resources is not None and target not in config.resources:
        raise HttpError(404, f"resource {target[:80]!r} is not served")
    return HandshakeRequest(target, hosts[0], origin, subprotocols, fields, raw)


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


def check_headers(headers: Headers, reserved: frozenset[str] = frozenset()) -> None:
    """Refuse header fields the caller wants to add that would break the reply:
    a name that is not a token, a value with CR, LF, NUL or beyond Latin-1, or a
    name in `reserved` (set by the handshake itself). Raises LocalProtocolError."""
    for name, value in headers:
        if not isinstance(name, str) or _TOKEN.fullmatch(name) is None:
            raise LocalProtocolError(f"invalid header name {name!r}")
        if not isinstance(value, str) or _VALUE.fullmatch(value) is None:
            raise LocalProtocolError(f"invalid value for header {name}: {value!r}")
        if name.lower() in reserved:
            raise LocalProtocolError(f"{name} is set by the handshake itself")


def render_accept(request: HandshakeRequest, extra_headers: Headers = (), extension: str = "") -> bytes:
    """The 101 reply that accepts `request`, with the `extension` agreed (none when empty)."""
    key = ""
    for name, value in request.headers:
        if name.lower() == "sec-websocket-key":
            key = value
            break
    headers: Headers = (
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_token(key)),
        ("Sec-WebSocket-Protocol", SUBPROTOCOL),
        *((("Sec-WebSocket-Extensions", extension),) if extension else ()),
        *extra_headers,
    )
    return render_response(101, headers)


def render_reject(status: int, detail: str, extra_headers: Headers = (), body: bytes | None = None) -> bytes:
    """A rejection reply: plain-text body, `Connection: close`, and the headers RFC 6455 asks for."""
    if body is None:
        body = (detail + "\n").encode("utf-8", "replace")
    headers: list[tuple[str, str]] = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Connection", "close"),
    ]
    if status in (400, 426):
        headers.append(("Sec-WebSocket-Version", "13"))
    if status == 426:
        headers.append(("Upgrade", "websocket"))
    headers.extend(extra_headers)
    return render_response(status, tuple(headers), body)


def _authority(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return host if port == 443 else f"{host}:{port}"


def build_request(host: str, port: int, resource: str, key: str, config: Config) -> bytes:
    """Our upgrade request: Host (IPv6 in brackets), Origin per config, `sip` subprotocol."""
    authority = _authority(host, port)
    lines = [
        f"GET {resource} HTTP/1.1",
        f"Host: {authority}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        f"Sec-WebSocket-Protocol: {SUBPROTOCOL}",
    ]
    if config.send_origin:
        lines.append(f"Origin: {config.origin or 'https://' + authority}")
    if config.deflate:
        lines.append(f"Sec-WebSocket-Extensions: {client_offer(config.deflate_window_bits)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def check_reply(head: bytes, key: str, config: Config) -> tuple[int, str, Headers, Agreement | None]:
    """Check the server's reply head to our request with `key`.

    Returns (status, reason, fields, the permessage-deflate agreement or None). For a 101,
    raises HttpError unless the reply upgrades to WebSocket with the exact accept token,
    selects `sip`, and names no extension but the one we offered, in terms we can keep.
    """
    status, reason, fields = parse_response_head(head)
    if status != 101:
        return status, reason, fields, None
    found: dict[str, list[str]] = {}
    for name, value in fields:
        found.setdefault(name.lower(), []).append(value)
    if "websocket" not in [t.lower() for t in _tokens(found.get("upgrade", []))]:
        raise HttpError(status, "101 without Upgrade: websocket")
    if "upgrade" not in [t.lower() for t in _tokens(found.get("connection", []))]:
        raise HttpError(status, "101 without Connection: upgrade")
    if found.get("sec-websocket-accept") != [accept_token(key)]:
        raise HttpError(status, "wrong Sec-WebSocket-Accept")
    if found.get("sec-websocket-protocol") != [SUBPROTOCOL]:
        raise HttpError(status, "101 does not select the sip subprotocol")
    extensions = found.get("sec-websocket-extensions")
    if extensions is None:
        return status, reason, fields, None
    if not config.deflate:
        raise HttpError(status, "101 names an extension we did not offer")
    try:
        return status, reason, fields, read_response(extensions, config.deflate_window_bits)
    except ValueError as exc:
        raise HttpError(status, str(exc)) from None
